"""The loss of each head, with unknown labels masked out; class weights and head weights."""

import numpy as np
import tensorflow as tf

from input_pipeline import labels
from input_pipeline.reader.manifest import split_counts

# age_years learns a distribution over 0..100 years: the target is a Gaussian of this
# many years around the true age rather than a single year (label distribution
# learning, Gao et al. 2017), so a guess a year off is not as wrong as one forty years
# off. The prediction is the expected value (Rothe et al., DEX, 2015).
YEARS_SIGMA = 2.0


def masked_cross_entropy(labels_, logits, num_classes, labelled, label_smoothing=0.0, class_weights=None):
    """Summed cross-entropy of the examples whose label is known (>= 0), divided by
    `labelled`, the number of examples with a label in the whole batch (every replica's),
    so that summing over replicas gives the mean over the labelled examples (0 when none is).

    `labels_` (B,) int, -1 unknown; `logits` (B, C) float32; `class_weights` (C,) or None.
    """
    known = labels_ >= 0
    safe = tf.where(known, labels_, 0)
    targets = tf.one_hot(safe, num_classes)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    per_example = -tf.reduce_sum(targets * tf.nn.log_softmax(logits), axis=-1)
    weights = tf.cast(known, tf.float32)
    if class_weights is not None:
        weights *= tf.gather(tf.constant(class_weights, tf.float32), safe)
    return tf.reduce_sum(per_example * weights) / tf.maximum(tf.cast(labelled, tf.float32), 1.0)


def years_targets(years):
    """(B, YEARS) float32: a Gaussian of YEARS_SIGMA around each age, summing to 1."""
    grid = tf.range(labels.YEARS, dtype=tf.float32)
    weights = tf.exp(-tf.square(grid[None, :] - tf.cast(years, tf.float32)[:, None]) / (2 * YEARS_SIGMA ** 2))
    return weights / tf.reduce_sum(weights, axis=-1, keepdims=True)


def masked_years_loss(years, logits, labelled):
    """Cross-entropy of the age_years head against years_targets, over the examples whose
    exact age is known, divided by `labelled` (as masked_cross_entropy). `years` (B,) int,
    -1 unknown."""
    known = years >= 0
    per_example = -tf.reduce_sum(years_targets(tf.maximum(years, 0)) * tf.nn.log_softmax(logits), axis=-1)
    return tf.reduce_sum(per_example * tf.cast(known, tf.float32)) / tf.maximum(tf.cast(labelled, tf.float32), 1.0)


def head_loss(head, labels_, logits, labelled, label_smoothing=0.0, class_weights=None):
    """The masked loss of one head (logits (B, outputs) float32), `labelled` the number
    of faces of the whole batch with this head's label."""
    if head == "age_years":
        return masked_years_loss(labels_, logits, labelled)
    return masked_cross_entropy(labels_, logits, logits.shape[-1], labelled, label_smoothing, class_weights)


class Objective:
    """A run's training loss: the sum over `heads` of each head's weight (`head_weights`,
    1 when not named) times its masked loss (head_loss, with `label_smoothing` and the
    head's `class_weights`). Called in the train step on one replica's batch: `labels_`
    and `logits` {head: (B, ...)}, `labelled` (heads,) the faces of the whole batch with
    each head's label."""

    def __init__(self, heads, class_weights=None, head_weights=None, label_smoothing=0.0):
        self.heads, self.label_smoothing = tuple(heads), label_smoothing
        self.class_weights, self.head_weights = class_weights or {}, head_weights or {}

    def __call__(self, labels_, logits, labelled):
        loss = 0.0
        for i, head in enumerate(self.heads):
            loss += self.head_weights.get(head, 1.0) * head_loss(
                head, labels_[head], tf.cast(logits[head], tf.float32), labelled[i], self.label_smoothing,
                self.class_weights.get(head))
        return loss


def parse_head_weights(items, heads):
    """{head: weight} of --head_weights ["age=1", "gender=0.5"]; heads not named weigh 1."""
    weights = dict.fromkeys(heads, 1.0)
    for item in items:
        head, sep, value = (x.strip() for x in item.partition("="))
        if not sep or head not in heads:
            raise ValueError(f"--head_weights: {item!r} is not <head>=<weight> for a head among {', '.join(heads)}")
        try:
            weights[head] = float(value)
        except ValueError:
            raise ValueError(f"--head_weights: {value!r} of {head} is not a number") from None
        if weights[head] < 0:
            raise ValueError(f"--head_weights: {head}'s weight {value} is negative")
    return weights


def balanced_class_weights(manifest, test_fold, class_names, age_bins, policy):
    """N / (C * n_c) per classification head over the training folds (0 for a class with
    no examples); the age head counts the chosen bins."""
    weights = {}
    for head, names in class_names.items():
        counts = split_counts(manifest, test_fold, f"{head}_counts")[0]
        if head == "age":
            counts = labels.bin_counts(counts, age_bins, policy)
        n = np.array([counts.get(name, 0) for name in names], dtype=np.float64)
        weights[head] = np.where(n > 0, n.sum() / (len(names) * np.maximum(n, 1)), 0.0).tolist()
    return weights
