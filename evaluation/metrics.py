"""Accuracy figures of a pass over a dataset (NumPy, run eagerly once per evaluation),
and the headline score. Calibration and the fairness breakdown are evaluation/calibration.py
and evaluation/fairness.py.

Per head:
* class heads (age bins, gender, race): exact accuracy, per-class accuracy, the
  confusion matrix and, for age, *one-off* accuracy, where a prediction in an adjacent
  bin also counts (Levi & Hassner 2015, Sec. 4.2; adjacent bins, not the top-2).
* age_years: the mean absolute error of the expected age in years, the share within
  5 years, and the accuracy of the bin the expected age falls in.

A figure of no faces is None, never 0: an empty validation split must not look like a
model that is always wrong (and so be beaten by anything), nor a head without labels
like one that adds 0 to every run's score. `score` is the headline figure: the one
number that chooses the best checkpoint, ranks tuning trials and the architecture
comparison, and heads the cross-validation table.
"""

import numpy as np

from architectures.heads import expected_years

CALIBRATED = "calibrated/"  # A predict function's key for a head's temperature-scaled probabilities.


def confusion_matrix(labels, predictions, num_classes):
    """counts[true, predicted]."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def exact_accuracy(labels, predictions):
    return float(np.mean(labels == predictions)) if len(labels) else None


def one_off_accuracy(labels, predictions):
    return float(np.mean(np.abs(labels - predictions) <= 1)) if len(labels) else None


def per_class_accuracy(matrix):
    totals = matrix.sum(axis=1)
    return [float(matrix[i, i] / totals[i]) if totals[i] else None for i in range(len(matrix))]


def mean_absolute_error(years, predicted):
    return float(np.mean(np.abs(predicted - years))) if len(years) else None


def within(years, predicted, limit=5):
    """Share of predictions at most `limit` years from the truth."""
    return float(np.mean(np.abs(predicted - years) <= limit)) if len(years) else None


def summarize(probabilities, labels, class_names, one_off):
    """Figures of one class head: `probabilities` (N, C) and `labels` (N,) with -1 unknown."""
    known = labels >= 0
    labels, probabilities = labels[known], probabilities[known]
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, len(class_names))
    figures = {
        "num_examples": int(known.sum()),
        "accuracy": exact_accuracy(labels, predictions),
        "per_class_accuracy": dict(zip(class_names, per_class_accuracy(matrix), strict=True)),
        "confusion_matrix": matrix.tolist(),
    }
    if one_off:
        figures["one_off_accuracy"] = one_off_accuracy(labels, predictions)
    return figures


def summarize_years(probabilities, years, age_bins, bin_labels):
    """Figures of age_years: `years` (N,) exact ages, -1 unknown; `bin_labels` (N,) the
    age bin of each face (-1 unknown), to score the bin of the expected age."""
    predicted = np.asarray(expected_years(probabilities))
    known = years >= 0
    binned = np.array([age_bins.bin_of_years(p) for p in predicted], dtype=np.int64)
    has_bin = bin_labels >= 0
    return {
        "num_examples": int(known.sum()),
        "mae": mean_absolute_error(years[known], predicted[known]),
        "within_5": within(years[known], predicted[known]),
        "bin_accuracy": exact_accuracy(bin_labels[has_bin], binned[has_bin]),
        "bin_examples": int(has_bin.sum()),
    }


def served(probabilities, head):
    """A head's probabilities as the export serves them: temperature-scaled (CALIBRATED)
    when the pass scaled them. Over 10 crops the mean of the scaled crops can rank the
    classes otherwise than the mean of the raw ones; over one crop it never does."""
    return probabilities.get(CALIBRATED + head, probabilities[head])


def figures(probabilities, labels, task):
    """{head: summarize / summarize_years} of one pass's predictions (predict_all's pair),
    as served (served()), with the heads, class names and age bins of `task`
    (training.task.Task)."""
    out = {}
    for head in task.sizes:
        if head == "age_years":
            out[head] = summarize_years(probabilities[head], labels[head], task.bins, labels["age"])
        else:
            out[head] = summarize(served(probabilities, head), labels[head], task.class_names[head],
                                  one_off=head == "age")
    return out


def predict_all(predict, heads, eval_dataset):
    """({head: (N, outputs) probabilities}, {name: (N,) labels, -1 unknown} of every
    labels.HEADS) over one pass of `eval_dataset`, `predict` from steps.make_predict_step.
    Any other output of `predict` (the temperature-scaled probabilities,
    calibration.CALIBRATED + head) is kept under its key too."""
    probabilities = {head: [] for head in heads}
    labels = {}
    for images, batch_labels in eval_dataset:
        for key, value in predict(images).items():
            probabilities.setdefault(key, []).append(value.numpy())
        for name, value in batch_labels.items():
            labels.setdefault(name, []).append(value.numpy())
    if not labels:  # An empty pass.
        labels = {name: [np.zeros((0,), np.int32)] for name in ("age", "age_years", "gender", "race")}
    return ({head: np.concatenate(p) if p else np.zeros((0, heads[head])) for head, p in probabilities.items()},
            {name: np.concatenate(y) for name, y in labels.items()})


def headline(head, figures):
    """The figure a head is judged by: exact accuracy, or for age_years minus the MAE in
    tens of years (higher is better either way); None when the head saw no faces."""
    if head == "age_years":
        return None if figures["mae"] is None else -figures["mae"] / 10
    return figures["accuracy"]


def score(figures):
    """THE headline figure of a pass ({head: figures}, an Evaluation's): the mean of
    headline() over the heads that saw faces; None when none did. Computed on the
    validation split it picks the best checkpoint, ranks tuning trials and the
    architecture comparison; on the test fold's single crop it is what they report, and
    what cross-validation tabulates."""
    values = [value for head, f in figures.items() if (value := headline(head, f)) is not None]
    return float(np.mean(values)) if values else None


def recorded_score(results, crop="single_crop"):
    """The score metrics.json's "score" records for a test `crop` (its evaluator's
    Evaluation.score); for a metrics.json written before it recorded scores, the score of
    its figures, which is the same number."""
    if "untested" in results:
        raise ValueError(f"no test figures: {results['untested']}")
    return results["score"][crop] if "score" in results else score(results[crop])


def describe(head, figures):
    """"age 54.3%" or "age_years MAE 6.1": a head's figures in a log line."""
    if figures["num_examples"] == 0:
        return f"{head}: no labelled faces"
    if head == "age_years":
        return f"{head} MAE {figures['mae']:.1f} ({100 * figures['within_5']:.0f}% within 5)"
    return f"{head} {100 * figures['accuracy']:.1f}%"
