"""UTKFace file names -> labelled faces.

UTKFace (Zhang et al., CVPR 2017) keeps its labels in the file names:
`<age>_<gender>_<race>_<datetime>.jpg.chip.jpg` for the aligned-and-cropped set,
`<age>_<gender>_<race>_<datetime>.jpg` for the in-the-wild one; gender 0 is male and
1 female, as in this project's schema; race 0..4 is White, Black, Asian, Indian, Others.
Ages are exact years. The data set has no identities, so each image is its own subject
and its fold is a stable hash of its file name.
"""

import os
import re

from input_pipeline import labels
from input_pipeline.sources.rows import SUBJECT_PER_IMAGE, DatasetError, Face, Rows, Skip, fold_of

_NAME_RE = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)\.jpg(\.chip\.jpg)?$", re.IGNORECASE)
_IMAGE_EXTENSIONS = (".jpg", ".jpeg")


def read(data_dir):
    """Reads every .jpg under `data_dir` (recursively, in sorted order)."""
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data dir {data_dir} does not exist or is not a folder")
    rows = Rows(race_classes=labels.UTKFACE_RACES, subject_ids=SUBJECT_PER_IMAGE)
    for path in _image_files(data_dir):
        name = os.path.basename(path)
        row = _parse_name(name, path)
        (rows.faces if isinstance(row, Face) else rows.skips).append(row)
    rows.without_subject = len(rows.faces)
    if not rows.faces:
        raise DatasetError(
            f"{data_dir} is not a UTKFace folder: no file named "
            f"<age>_<gender>_<race>_<datetime>.jpg[.chip.jpg] among {rows.num_read} .jpg files")
    return rows


def _image_files(data_dir):
    for root, dirs, files in os.walk(data_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(_IMAGE_EXTENSIONS):
                yield os.path.relpath(os.path.join(root, name), data_dir).replace(os.sep, "/")


def _parse_name(name, path):
    fold = fold_of(name)
    match = _NAME_RE.match(name)
    if not match:
        return Skip(fold, path, path, "malformed_name",
                    "expected <age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]")
    years, gender, race = (int(match.group(i)) for i in (1, 2, 3))
    if gender not in (0, 1):
        return Skip(fold, path, path, "malformed_name", f"gender {gender} is neither 0 nor 1")
    if years > labels.MAX_YEARS:
        return Skip(fold, path, path, "malformed_name", f"age {years} is over {labels.MAX_YEARS}")
    if race >= len(labels.UTKFACE_RACES):
        return Skip(fold, path, path, "malformed_name", f"race {race} is not one of 0..{len(labels.UTKFACE_RACES) - 1}")
    return Face(fold, path, path, name.split(".")[0], labels.age_from_years(years), gender, race)
