"""Evaluation figures of a pass over a dataset (NumPy, run eagerly once per evaluation).

Per head:
* class heads (age bins, gender, race): exact accuracy, per-class accuracy, the
  confusion matrix and, for age, *one-off* accuracy, where a prediction in an adjacent
  bin also counts (Levi & Hassner 2015, Sec. 4.2; adjacent bins, not the top-2). And
  calibration: the expected calibration error (ECE, Guo et al. 2017: the confidence of
  the top class against its accuracy, in 15 equal-width confidence bins, weighted by
  the share of faces in each) with the bins for a reliability diagram.
* age_years: the mean absolute error of the expected age in years, the share within
  5 years, and the accuracy of the bin the expected age falls in.
* every head: a fairness breakdown, the head's accuracy (or MAE) per gender and per
  race group among the faces whose group is known, and the gap between the best and the
  worst group.

A figure of no faces is None, never 0: an empty validation split must not look like a
model that is always wrong (and so be beaten by anything), nor a head without labels
like one that adds 0 to every run's score. `score` is the headline figure: the one
number that chooses the best checkpoint, ranks tuning trials and the architecture
comparison, and heads the cross-validation table.
"""

import numpy as np

from architectures.heads import expected_years

ECE_BINS = 15


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


def calibration(probabilities, labels, num_bins=ECE_BINS):
    """(ECE, reliability bins): the bins are [{"low", "high", "count", "confidence",
    "accuracy"}] over equal-width bins of top-class confidence; empty bins have count 0.
    The ECE of no faces is None."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)  # (low, high]
    bins, ece = [], 0.0
    for b in range(num_bins):
        members = index == b
        count = int(members.sum())
        entry = {"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
                 "confidence": float(confidence[members].mean()) if count else None,
                 "accuracy": float(correct[members].mean()) if count else None}
        if count:
            ece += count / len(labels) * abs(entry["accuracy"] - entry["confidence"])
        bins.append(entry)
    return (float(ece) if len(labels) else None), bins


def fairness(score, groups, group_names, higher_is_better=True):
    """{"groups": {name: {"num_examples", "value"}}, "gap", "best", "worst"} of a score
    per group: `score(mask)` is the figure over the faces in `mask`; `groups` (N,) ints,
    -1 unknown. The gap is between the best and worst groups that have faces; None when
    fewer than two have."""
    per_group = {}
    for index, name in enumerate(group_names):
        members = groups == index
        if members.any():
            per_group[name] = {"num_examples": int(members.sum()), "value": score(members)}
    if len(per_group) < 2:
        return {"groups": per_group, "gap": None, "best": None, "worst": None}
    ranked = sorted(per_group, key=lambda name: per_group[name]["value"], reverse=higher_is_better)
    return {"groups": per_group, "gap": abs(per_group[ranked[0]]["value"] - per_group[ranked[-1]]["value"]),
            "best": ranked[0], "worst": ranked[-1]}


def summarize(probabilities, labels, class_names, one_off):
    """Figures of one class head: `probabilities` (N, C) and `labels` (N,) with -1 unknown."""
    known = labels >= 0
    labels, probabilities = labels[known], probabilities[known]
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, len(class_names))
    ece, reliability = calibration(probabilities, labels)
    figures = {
        "num_examples": int(known.sum()),
        "accuracy": exact_accuracy(labels, predictions),
        "per_class_accuracy": dict(zip(class_names, per_class_accuracy(matrix), strict=True)),
        "confusion_matrix": matrix.tolist(),
        "ece": ece,
        "reliability": reliability,
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


def breakdown(head, probabilities, labels, group_names):
    """{"gender": fairness(...), "race": fairness(...)} of one head, for the attributes
    with known groups; `labels` has every head's labels (-1 unknown)."""
    target = labels[head]
    if head == "age_years":
        predicted = np.asarray(expected_years(probabilities))

        def score(mask):
            return mean_absolute_error(target[mask], predicted[mask])
    else:
        predictions = probabilities.argmax(axis=1)

        def score(mask):
            return exact_accuracy(target[mask], predictions[mask])
    out = {}
    for attribute in ("gender", "race"):
        groups = np.where(target >= 0, labels[attribute], -1)
        if (groups >= 0).any() and group_names.get(attribute):
            out[attribute] = fairness(score, groups, group_names[attribute], higher_is_better=head != "age_years")
    return out


def predict_all(predict, heads, eval_dataset):
    """({head: (N, outputs) probabilities}, {name: (N,) labels, -1 unknown} of every
    labels.HEADS) over one pass of `eval_dataset`, `predict` from steps.make_predict_step."""
    probabilities = {head: [] for head in heads}
    labels = {}
    for images, batch_labels in eval_dataset:
        batch_probabilities = predict(images)
        for head in heads:
            probabilities[head].append(batch_probabilities[head].numpy())
        for name, value in batch_labels.items():
            labels.setdefault(name, []).append(value.numpy())
    return ({head: np.concatenate(p) if p else np.zeros((0, heads[head])) for head, p in probabilities.items()},
            {name: np.concatenate(y) for name, y in labels.items()})


def evaluate(predict, heads, eval_dataset, class_names, age_bins):
    """Per-head figures over one pass of `eval_dataset`: summarize / summarize_years,
    with each head's "fairness" breakdown. `class_names` {head: names} of the class heads
    (and of gender and race for the breakdown, when known)."""
    probabilities, labels = predict_all(predict, heads, eval_dataset)
    if not labels:  # An empty pass.
        labels = {name: np.zeros((0,), np.int32) for name in ("age", "age_years", "gender", "race")}
    figures = {}
    for head in heads:
        if head == "age_years":
            figures[head] = summarize_years(probabilities[head], labels[head], age_bins, labels["age"])
        else:
            figures[head] = summarize(probabilities[head], labels[head], class_names[head], one_off=head == "age")
        figures[head]["fairness"] = breakdown(head, probabilities[head], labels, class_names)
    return figures


def headline(head, figures):
    """The figure a head is judged by: exact accuracy, or for age_years minus the MAE in
    tens of years (higher is better either way); None when the head saw no faces."""
    if head == "age_years":
        return None if figures["mae"] is None else -figures["mae"] / 10
    return figures["accuracy"]


def score(figures):
    """THE headline figure of a pass ({head: figures} of evaluate()): the mean of
    headline() over the heads that saw faces; None when none did. Computed on the
    validation split it picks the best checkpoint, ranks tuning trials and the
    architecture comparison; on the test fold's single crop it is what they report, and
    what cross-validation tabulates."""
    values = [value for head, f in figures.items() if (value := headline(head, f)) is not None]
    return float(np.mean(values)) if values else None


def describe(head, figures):
    """"age 54.3%" or "age_years MAE 6.1": a head's figures in a log line."""
    if figures["num_examples"] == 0:
        return f"{head}: no labelled faces"
    if head == "age_years":
        return f"{head} MAE {figures['mae']:.1f} ({100 * figures['within_5']:.0f}% within 5)"
    return f"{head} {100 * figures['accuracy']:.1f}%"
