"""Serialized tf.train.Example -> (uint8 image, labels). Pure tensor functions."""

import tensorflow as tf

from input_pipeline import schema


def parse(serialized):
    """The record's encoded image, labels and subject, without decoding the JPEG."""
    example = schema.parse_example(serialized)
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
