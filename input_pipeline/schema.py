"""The tf.train.Example schema of a face: one module for the writer and the reader.

`image/class/label` repeats the age label under the key that generic TF
classification pipelines read.
"""

import tensorflow as tf

from input_pipeline.labels import UNKNOWN

ENCODED = "image/encoded"
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
FILENAME = "image/filename"
AGE = "image/age/label"
GENDER = "image/gender/label"
CLASS = "image/class/label"
SUBJECT_ID = "image/subject_id"
FOLD = "image/fold"

IMAGE_FORMAT = b"jpeg"

FEATURES = {
    ENCODED: tf.io.FixedLenFeature([], tf.string),
    FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=IMAGE_FORMAT),
    HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    WIDTH: tf.io.FixedLenFeature([], tf.int64),
    FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    AGE: tf.io.FixedLenFeature([], tf.int64, default_value=UNKNOWN),
    GENDER: tf.io.FixedLenFeature([], tf.int64, default_value=UNKNOWN),
    CLASS: tf.io.FixedLenFeature([], tf.int64, default_value=UNKNOWN),
    SUBJECT_ID: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    FOLD: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def make_example(*, encoded, height, width, filename, age, gender, subject_id, fold):
    """A serialized tf.train.Example for one face (labels: -1 where unknown)."""
    feature = {
        ENCODED: _bytes(encoded),
        FORMAT: _bytes(IMAGE_FORMAT),
        HEIGHT: _int64(height),
        WIDTH: _int64(width),
        FILENAME: _bytes(filename.encode("utf-8")),
        AGE: _int64(age),
        GENDER: _int64(gender),
        CLASS: _int64(age),
        SUBJECT_ID: _bytes(subject_id.encode("utf-8")),
        FOLD: _int64(fold),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # Features is a protobuf map, serialized in hash order unless asked otherwise:
    # deterministic=True sorts the keys, so shards are byte-identical across runs.
    return example.SerializeToString(deterministic=True)


def parse_example(serialized):
    """Parses one serialized Example (a scalar string tensor) into a dict of tensors."""
    return tf.io.parse_single_example(serialized, FEATURES)
