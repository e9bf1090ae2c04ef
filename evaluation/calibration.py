"""Calibration of a class head's probabilities: the expected calibration error (ECE,
Guo et al. 2017: the confidence of the top class against its accuracy, in 15 equal-width
confidence bins, weighted by the share of faces in each) and the bins a reliability
diagram draws (training/plots.py). The ECE of no faces is None, never 0.
"""

import numpy as np

ECE_BINS = 15


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


def figures(probabilities, labels, task):
    """{head: {"ece", "reliability"}} of each class head of `task` over one pass's
    predictions (metrics.predict_all's pair); age_years has a distribution over years,
    judged by its error (metrics.summarize_years), and no entry here."""
    out = {}
    for head in task.class_names:
        if head in task.sizes:
            known = labels[head] >= 0
            ece, reliability = calibration(probabilities[head][known], labels[head][known])
            out[head] = {"ece": ece, "reliability": reliability}
    return out
