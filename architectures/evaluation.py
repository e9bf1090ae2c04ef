"""Evaluation figures from predicted probabilities (NumPy, run eagerly once per evaluation).

Age uses the Adience figures: *exact* accuracy and *one-off* accuracy, where a prediction
one age group away from the truth also counts (Levi & Hassner 2015, Sec. 4.2). One-off
is about adjacent groups, not the top-2 predictions.
"""

import numpy as np


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
