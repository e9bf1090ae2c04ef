"""Calibration of a class head's probabilities: the expected calibration error (ECE,
Guo et al. 2017: the confidence of the top class against its accuracy, in 15 equal-width
confidence bins, weighted by the share of faces in each), the bins a reliability diagram
draws (training/plots.py), the negative log-likelihood (NLL), and temperature scaling.

Temperature scaling (Guo et al. 2017) divides a head's logits by one number T fitted on
the validation split to minimise the NLL: T > 1 softens an over-confident head. It never
changes which class is predicted. A predict function that applies it returns the scaled
probabilities under CALIBRATED + head beside the raw ones, and the figures here give
both. A figure of no faces is None, never 0.
"""

import numpy as np

from evaluation import metrics

ECE_BINS = 15
CALIBRATED = metrics.CALIBRATED
T_RANGE = (0.05, 20.0)  # The temperatures fit_temperature searches.
# Probabilities are clipped here before a log: a float32 softmax keeps a class's probability
# down to a logit gap of ~87 (TensorFlow flushes smaller ones to 0, read here as a gap of
# 103), so log p is the log-softmax of the logits for any head short of that. A higher floor
# (1e-12 caps log p at -27.6) makes a very confident wrong answer look less wrong than it is
# and biased the fitted temperature low.
_TINY = float(np.finfo(np.float32).smallest_subnormal)


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


def nll(probabilities, labels):
    """The mean negative log-likelihood of `labels` (N,) under `probabilities` (N, C);
    None of no faces."""
    if not len(labels):
        return None
    return float(-np.mean(np.log(np.maximum(probabilities[np.arange(len(labels)), labels], _TINY))))


def scaled(probabilities, temperature):
    """softmax(log p / T): the probabilities the logits divided by `temperature` give (log p
    is the logits up to a constant per face, which the softmax removes)."""
    logits = np.log(np.maximum(np.asarray(probabilities, np.float64), _TINY)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probabilities, labels, low=T_RANGE[0], high=T_RANGE[1]):
    """The temperature in [low, high] that minimises the NLL of scaled(probabilities, T)
    on `labels` (N,), all known: a grid over log T, then a golden-section search around
    its best point. None when there are no faces."""
    if not len(labels):
        return None

    def loss(log_t):
        return nll(scaled(probabilities, np.exp(log_t)), labels)

    grid = np.linspace(np.log(low), np.log(high), 41)
    best = int(np.argmin([loss(g) for g in grid]))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if loss(c) < loss(d):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def at_edge(temperature):
    """True when a fitted temperature sits at an end of T_RANGE (at most 0.06, at least 19):
    the search ran out of room, as it does on a validation set the model gets all right or
    all wrong."""
    return not T_RANGE[0] * 1.2 < temperature < T_RANGE[1] * 0.95


def fit(predict, eval_dataset, task):
    """({head: temperature}, {head: labelled faces}) of each class head of `task`, fitted
    on one pass of `predict` over `eval_dataset` (the validation split, single crop); the
    temperature is None for a head without a labelled face there."""
    probabilities, labels = metrics.predict_all(predict, task.sizes, eval_dataset)
    temperatures, counts = {}, {}
    for head in task.class_names:
        known = labels[head] >= 0
        temperatures[head] = fit_temperature(probabilities[head][known], labels[head][known])
        counts[head] = int(known.sum())
    return temperatures, counts


def figures(probabilities, labels, task):
    """{head: {"ece", "nll", "reliability"}} of each class head of `task` over one pass's
    predictions (metrics.predict_all's pair), and when the pass was temperature-scaled
    (CALIBRATED keys) also "ece_calibrated", "nll_calibrated", "reliability_calibrated".
    age_years has a distribution over years, judged by its error
    (metrics.summarize_years), and no entry here."""
    out = {}
    for head in task.class_names:
        known = labels[head] >= 0
        y = labels[head][known]
        ece, reliability = calibration(probabilities[head][known], y)
        out[head] = {"ece": ece, "nll": nll(probabilities[head][known], y), "reliability": reliability}
        if CALIBRATED + head in probabilities:
            calibrated = probabilities[CALIBRATED + head][known]
            ece, reliability = calibration(calibrated, y)
            out[head].update(ece_calibrated=ece, nll_calibrated=nll(calibrated, y), reliability_calibrated=reliability)
    return out
