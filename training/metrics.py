"""Evaluation figures of a pass over a dataset (NumPy, run eagerly once per evaluation).

Age uses the Adience figures: *exact* accuracy and *one-off* accuracy, where a prediction
one age group away from the truth also counts (Levi & Hassner 2015, Sec. 4.2). One-off
is about adjacent groups, not the top-2 predictions.
"""

import numpy as np

from input_pipeline.labels import CLASS_NAMES


def confusion_matrix(labels, predictions, num_classes):
    """counts[true, predicted]."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def exact_accuracy(labels, predictions):
    return float(np.mean(labels == predictions)) if len(labels) else 0.0


def one_off_accuracy(labels, predictions):
    return float(np.mean(np.abs(labels - predictions) <= 1)) if len(labels) else 0.0


def per_class_accuracy(matrix):
    totals = matrix.sum(axis=1)
    return [float(matrix[i, i] / totals[i]) if totals[i] else None for i in range(len(matrix))]


def summarize(probabilities, labels, class_names, one_off):
    """Figures of one head: `probabilities` (N, C) and `labels` (N,) with -1 unknown."""
    known = labels >= 0
    labels, predictions = labels[known], probabilities[known].argmax(axis=1)
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


def predict_all(predict, heads, eval_dataset):
    """({head: (N, C) probabilities}, {head: (N,) labels, -1 unknown}) over one pass of
    `eval_dataset`, with `predict` from steps.make_predict_step."""
    probabilities = {task: [] for task in heads}
    labels = {task: [] for task in heads}
    for images, batch_labels in eval_dataset:
        batch_probabilities = predict(images)
        for task in heads:
            probabilities[task].append(batch_probabilities[task].numpy())
            labels[task].append(batch_labels[task].numpy())
    return ({task: np.concatenate(p) if p else np.zeros((0, heads[task])) for task, p in probabilities.items()},
            {task: np.concatenate(y) if y else np.zeros((0,), np.int32) for task, y in labels.items()})


def evaluate(predict, heads, eval_dataset):
    """Per-head figures (summarize) over one pass of `eval_dataset`."""
    probabilities, labels = predict_all(predict, heads, eval_dataset)
    return {task: summarize(probabilities[task], labels[task], CLASS_NAMES[task], one_off=task == "age")
            for task in heads}
