"""The classification loss of one head, with unknown labels masked out, and its class weights."""

import numpy as np
import tensorflow as tf

from input_pipeline.labels import CLASS_NAMES


def masked_cross_entropy(labels, logits, num_classes, global_batch_size, label_smoothing=0.0,
                         class_weights=None):
    """Summed cross-entropy of the examples whose label is known (>= 0), divided by the
    global batch size, so that summing over replicas gives the batch mean.

    `labels` (B,) int, -1 unknown; `logits` (B, C) float32; `class_weights` (C,) or None.
    """
    known = labels >= 0
    safe = tf.where(known, labels, 0)
    targets = tf.one_hot(safe, num_classes)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    per_example = -tf.reduce_sum(targets * tf.nn.log_softmax(logits), axis=-1)
    weights = tf.cast(known, tf.float32)
    if class_weights is not None:
        weights *= tf.gather(tf.constant(class_weights, tf.float32), safe)
    return tf.reduce_sum(per_example * weights) / global_batch_size


def balanced_class_weights(manifest, test_fold, heads):
    """N / (C * n_c) per head over the training folds (0 for a class with no examples)."""
    weights = {}
    for task, num_classes in heads.items():
        key = f"{task}_counts"
        counts = np.zeros(num_classes)
        for fold in manifest["folds"]:
            if fold["fold"] != test_fold:
                counts += [fold[key][name] for name in CLASS_NAMES[task]]
        weights[task] = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0).tolist()
    return weights
