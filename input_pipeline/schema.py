"""A shard set's format: the keys of each face's tf.train.Example, and the manifest's name.

The writer (input_pipeline/writer, no TensorFlow) and the reader (input_pipeline/reader)
import these names, so the two cannot drift apart. `image/class/label` repeats the age
label under the key that generic TF classification pipelines read.
"""

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
MANIFEST = "manifest.json"
SKIPPED = "skipped.csv"

# key -> (kind, default when a record lacks it; None: required). Kinds are those of
# tf.train.Feature: "bytes" (a BytesList of one value) or "int64" (an Int64List of one).
FIELDS = {
    ENCODED: ("bytes", None),
    FORMAT: ("bytes", IMAGE_FORMAT),
    HEIGHT: ("int64", None),
    WIDTH: ("int64", None),
    FILENAME: ("bytes", b""),
    AGE: ("int64", UNKNOWN),
    GENDER: ("int64", UNKNOWN),
    CLASS: ("int64", UNKNOWN),
    SUBJECT_ID: ("bytes", b""),
    FOLD: ("int64", -1),
}


def features(*, encoded, height, width, filename, age, gender, subject_id, fold):
    """{key: value} of one face's record (labels -1 where unknown)."""
    return {ENCODED: encoded, FORMAT: IMAGE_FORMAT, HEIGHT: height, WIDTH: width,
            FILENAME: filename.encode("utf-8"), AGE: age, GENDER: gender, CLASS: age,
            SUBJECT_ID: subject_id.encode("utf-8"), FOLD: fold}
