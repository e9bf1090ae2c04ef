"""What a dataset adapter returns: faces to encode, and rows it could not use."""

import dataclasses
import zlib

NUM_FOLDS = 5

# Every reason a row can be left out, as written to skipped.csv and the manifest.
SKIP_REASONS = {
    "malformed_row": "a row whose fields cannot be read (count, face_id, fold, path)",
    "bad_encoding": "a row that is not valid UTF-8",
    "malformed_name": "a UTKFace file name not of the form <age>_<gender>_<race>_<datetime>.jpg",
    "unknown_labels": "no label (age, gender, race) is known under the label policy",
    "duplicate_row": "an exact repeat of an earlier row (only with --dedup)",
    "missing_image": "the image file does not exist",
    "unreadable_image": "the image file cannot be read (permissions, a folder, I/O error)",
    "empty_image": "the image file has zero bytes",
    "not_an_image": "the file is not an image Pillow can identify",
    "truncated_image": "a JPEG whose data ends early",
    "corrupt_image": "a JPEG that fails to decode",
    "image_too_large": "more pixels than Pillow's decompression-bomb limit",
    "no_face": "--face_crop=detect found no face in the image",
    "face_too_small": "--face_crop=detect found only faces under --min_face_size pixels",
    "several_faces": "--face_crop=detect found several faces of similar size where one is expected",
}


class DatasetError(Exception):
    """The input as a whole cannot be used (not the dataset asked for, no usable rows)."""


@dataclasses.dataclass(frozen=True)
class Face:
    """One face to write: where its image is and what it is labelled."""

    fold: int
    source: str  # Where the row came from, e.g. "fold_0_data.txt:17", for messages.
    path: str  # The image, relative to the data dir (or absolute, from a CSV).
    subject_id: str
    age: tuple  # (low, high) years as the source gives them; (-1, -1) unknown.
    gender: int  # 0 m, 1 f, or labels.UNKNOWN.
    race: int = -1  # An index into Rows.race_classes, or labels.UNKNOWN.

    @property
    def unlabelled(self):
        return self.age[0] < 0 and self.gender < 0 and self.race < 0


@dataclasses.dataclass(frozen=True)
class Skip:
    """One row that is not written, and why."""

    fold: int | None  # None where the row is too broken to tell.
    source: str
    path: str
    reason: str
    detail: str

    def __post_init__(self):
        if self.reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {self.reason!r}")


# Rows.subject_ids: who is in each image is known (Adience's user_id, a CSV's subject
# column), or not (UTKFace, a CSV without one), so that each image counts as its own person.
SUBJECTS_GIVEN, SUBJECT_PER_IMAGE = "given", "per_image"


@dataclasses.dataclass
class Rows:
    """An adapter's result, in source order."""

    faces: list[Face] = dataclasses.field(default_factory=list)
    skips: list[Skip] = dataclasses.field(default_factory=list)
    race_classes: tuple = ()  # The names of Face.race's indices; () when the source has no race.
    subject_ids: str = SUBJECTS_GIVEN  # Or SUBJECT_PER_IMAGE: folds and validation cannot keep people apart.
    without_subject: int = 0  # Faces that count as their own person: no subject given for them.

    @property
    def num_read(self):
        return len(self.faces) + len(self.skips)


def fold_of(key):
    """A fold 0..4 that depends only on `key`: stable across runs, machines and row order."""
    return zlib.crc32(key.encode("utf-8")) % NUM_FOLDS
