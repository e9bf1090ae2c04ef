"""What a head's outputs mean, read the same way in training, evaluation and the export."""

import tensorflow as tf


def expected_years(probabilities):
    """(B,) expected age of age_years' (B, YEARS) probabilities over 0, 1, ... years (DEX),
    in the probabilities' dtype (a NumPy array is read as a tensor of its dtype)."""
    probabilities = tf.convert_to_tensor(probabilities)
    return tf.reduce_sum(probabilities * tf.range(probabilities.shape[-1], dtype=probabilities.dtype), axis=-1)
