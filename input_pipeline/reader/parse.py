"""Serialized tf.train.Example -> tensors. Pure tensor functions."""

import tensorflow as tf

from input_pipeline import schema

_DTYPES = {"bytes": tf.string, "int64": tf.int64}
# schema.FIELDS as tf.io's parsing spec.
FEATURES = {key: tf.io.FixedLenFeature([], _DTYPES[kind], default_value=default)
            for key, (kind, default) in schema.FIELDS.items()}
# What training and evaluation read of a record; the rest is for people and tools.
_TRAINING_FEATURES = {key: FEATURES[key] for key in (schema.ENCODED, schema.AGE, schema.GENDER, schema.SUBJECT_ID)}


def parse_example(serialized):
    """One serialized Example (a scalar string tensor) -> {key: tensor} of every field."""
    return tf.io.parse_single_example(serialized, FEATURES)


def parse(serialized):
    """A batch of serialized records -> their encoded images, labels and subjects.

    Vectorised: one parse_example call for the whole batch; the JPEGs stay encoded.
    """
    example = tf.io.parse_example(serialized, _TRAINING_FEATURES)
    return {
        "encoded": example[schema.ENCODED],
        "age": tf.cast(example[schema.AGE], tf.int32),
        "gender": tf.cast(example[schema.GENDER], tf.int32),
        "subject_id": example[schema.SUBJECT_ID],
    }
