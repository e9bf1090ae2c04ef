"""A shard set's format: the keys of each face's tf.train.Example, and the manifest's name.

The writer (input_pipeline/writer, no TensorFlow) and the reader (input_pipeline/reader)
import these names, so the two cannot drift apart. Labels are kept as the source gives
them (input_pipeline/labels.py): the age as a range of years (low == high for an exact
age), gender 0 m / 1 f, race an index into the manifest's race_classes; -1 is unknown.
Age bins are chosen when a model trains, not here.

Schema 2 (this one) replaced schema 1's Adience age group `image/age/label` (and its copy
`image/class/label`); the manifest's `schema_version` says which a shard set has.
"""

from input_pipeline.labels import UNKNOWN

ENCODED = "image/encoded"
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
FILENAME = "image/filename"
AGE_LOW = "image/age/low"
AGE_HIGH = "image/age/high"
GENDER = "image/gender/label"
RACE = "image/race/label"
SUBJECT_ID = "image/subject_id"
FOLD = "image/fold"

SCHEMA_VERSION = 2
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
    AGE_LOW: ("int64", UNKNOWN),
    AGE_HIGH: ("int64", UNKNOWN),
    GENDER: ("int64", UNKNOWN),
    RACE: ("int64", UNKNOWN),
    SUBJECT_ID: ("bytes", b""),
    FOLD: ("int64", -1),
}


def features(*, encoded, height, width, filename, age, gender, race, subject_id, fold):
    """{key: value} of one face's record; `age` is (low, high) years; -1 where unknown."""
    return {ENCODED: encoded, FORMAT: IMAGE_FORMAT, HEIGHT: height, WIDTH: width,
            FILENAME: filename.encode("utf-8"), AGE_LOW: age[0], AGE_HIGH: age[1], GENDER: gender, RACE: race,
            SUBJECT_ID: subject_id.encode("utf-8"), FOLD: fold}
