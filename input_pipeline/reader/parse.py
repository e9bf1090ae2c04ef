"""Serialized tf.train.Example -> tensors. Pure tensor functions."""

import tensorflow as tf

from input_pipeline import schema

_DTYPES = {"bytes": tf.string, "int64": tf.int64}
# schema.FIELDS as tf.io's parsing spec.
FEATURES = {key: tf.io.FixedLenFeature([], _DTYPES[kind], default_value=default)
            for key, (kind, default) in schema.FIELDS.items()}
# What training and evaluation read of a record; the rest is for people and tools.
_TRAINING_FEATURES = {key: FEATURES[key] for key in (schema.ENCODED, schema.AGE_LOW, schema.AGE_HIGH, schema.GENDER,
                                                     schema.RACE, schema.SUBJECT_ID)}


def parse_example(serialized):
    """One serialized Example (a scalar string tensor) -> {key: tensor} of every field."""
    return tf.io.parse_single_example(serialized, FEATURES)


def parse(serialized):
    """A batch of serialized records -> their encoded images, labels as stored and subjects.

    Vectorised: one parse_example call for the whole batch; the JPEGs stay encoded.
    """
    example = tf.io.parse_example(serialized, _TRAINING_FEATURES)
    return {
        "encoded": example[schema.ENCODED],
        "age_low": tf.cast(example[schema.AGE_LOW], tf.int32),
        "age_high": tf.cast(example[schema.AGE_HIGH], tf.int32),
        "gender": tf.cast(example[schema.GENDER], tf.int32),
        "race": tf.cast(example[schema.RACE], tf.int32),
        "subject_id": example[schema.SUBJECT_ID],
    }
