"""Serialized tf.train.Example -> (uint8 image, labels). Pure tensor functions."""

import tensorflow as tf

from input_pipeline import schema


# What training and evaluation read of a record; the rest is for people and tools.
_FEATURES = {key: schema.FEATURES[key] for key in (schema.ENCODED, schema.AGE, schema.GENDER, schema.SUBJECT_ID)}


def parse(serialized):
    """A batch of serialized records -> their encoded images, labels and subjects.

    Vectorised: one parse_example call for the whole batch; the JPEGs stay encoded.
    """
    example = tf.io.parse_example(serialized, _FEATURES)
    return {
        "encoded": example[schema.ENCODED],
        "age": tf.cast(example[schema.AGE], tf.int32),
        "gender": tf.cast(example[schema.GENDER], tf.int32),
        "subject_id": example[schema.SUBJECT_ID],
    }


def decode_image(encoded):
    """JPEG bytes -> (H, W, 3) uint8 (grayscale JPEGs come out as RGB)."""
    return tf.io.decode_jpeg(encoded, channels=3)


def in_validation(subject_id, val_fraction):
    """True for a stable `val_fraction` of subjects (a hash of the subject id), so the
    validation split never shares a person with training."""
    bucket = tf.strings.to_hash_bucket_fast(subject_id, 10_000)
    return bucket < int(round(val_fraction * 10_000))
