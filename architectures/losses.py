"""The classification loss of one head, with unknown labels masked out."""

import tensorflow as tf


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
