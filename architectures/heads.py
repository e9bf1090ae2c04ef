"""What a head's outputs mean, read the same way in training, evaluation and the export."""

import tensorflow as tf


def expected_years(probabilities):
    """(B,) expected age of age_years' (B, YEARS) probabilities over 0, 1, ... years (DEX),
    in the probabilities' dtype (a NumPy array is read as a tensor of its dtype)."""
    probabilities = tf.convert_to_tensor(probabilities)
    return tf.reduce_sum(probabilities * tf.range(probabilities.shape[-1], dtype=probabilities.dtype), axis=-1)


def logits_of(model, images, flip=False):
    """{head: float32 logits} of float32 images (B, S, S, 3); with `flip` (test-time
    augmentation) the mean of each face's logits and its mirror's, from one batch of 2B.
    Averaging logits rather than probabilities keeps the result a model's logits: the
    temperature fitted on it (evaluation/calibration.py) is then exactly the export's."""
    if not flip:
        return {head: tf.cast(x, tf.float32) for head, x in model(images, training=False).items()}
    both = model(tf.concat([images, tf.reverse(images, axis=[2])], axis=0), training=False)
    return {head: tf.reduce_mean(tf.reshape(tf.cast(x, tf.float32), [2, -1, x.shape[-1]]), axis=0)
            for head, x in both.items()}


def probabilities_of(logits, temperature=1.0, offset=None, calibrate=True):
    """A head's probabilities, softmax((logits + T * offset) / T), calibrated by its
    temperature T (fitted on the logits as trained); with `calibrate` False the same
    logits before the temperature, softmax(logits + T * offset). The offset (C,)
    (training/age_prior.py: the training faces' age prior taken out) is scaled by T so
    that the calibrated probabilities are softmax(logits / T + offset), the prior taken
    out at its own strength whatever T, and the temperature never changes the predicted
    class. Evaluation and the export both compute it here."""
    if offset is not None:
        logits = logits + temperature * tf.constant(offset, tf.float32)
    return tf.nn.softmax(logits / temperature if calibrate else logits)
