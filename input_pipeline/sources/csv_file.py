"""A CSV of image paths and labels -> labelled faces.

Columns (header names, any case): `path` (required; relative to the data dir, or
absolute), `age` and/or `gender` (at least one), optional `fold` (0..4) and
`subject_id`. An age is a whole number of years (binned like UTKFace) or an Adience
class string such as "(25, 32)"; a gender is m/f/male/female or 0/1 (0 male).
Without a `fold` column a face's fold is a stable hash of its subject_id (or of its
path when there is no subject_id), so folds stay subject-disjoint.
"""

import csv
import io
import os
import re

from input_pipeline import labels
from input_pipeline.sources.rows import NUM_FOLDS, DatasetError, Face, Rows, Skip, fold_of

_GENDERS = {"m": 0, "male": 0, "0": 0, "f": 1, "female": 1, "1": 1}
_SURROGATE_RE = re.compile("[\udc80-\udcff]")  # What surrogateescape makes of bad bytes.


def read(csv_file, data_dir, policy="strict", dedup=False):
    """Reads `csv_file`; image paths are taken relative to `data_dir`."""
    labels.check_policy(policy)
    if not os.path.isfile(csv_file):
        raise DatasetError(f"CSV file {csv_file} does not exist")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data dir {data_dir} does not exist or is not a folder")
    with open(csv_file, "rb") as f:
        text = f.read().decode("utf-8-sig", "surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    _check_header(header, csv_file)
    name = os.path.basename(csv_file)
    rows, seen = Rows(), set()
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        row = _parse_row(fields, header, f"{name}:{reader.line_num}", policy)
        if dedup and isinstance(row, Face):
            key = tuple(fields)
            if key in seen:
                row = Skip(row.fold, row.source, row.path, "duplicate_row", "same as an earlier row")
            seen.add(key)
        (rows.faces if isinstance(row, Face) else rows.skips).append(row)
    return rows


def _check_header(header, csv_file):
    if "path" not in header or not {"age", "gender"} & set(header):
        raise DatasetError(
            f"{csv_file}: the header must name a 'path' column and an 'age' and/or 'gender' "
            f"column; found {', '.join(header) or 'no header'}")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DatasetError(f"{csv_file}: column(s) named twice: {', '.join(repeated)}")


def _parse_row(fields, header, source, policy):
    if any(_SURROGATE_RE.search(f) for f in fields):
        return Skip(None, source, "", "bad_encoding", "the row is not valid UTF-8")
    if len(fields) != len(header):
        return Skip(None, source, "", "malformed_row",
                    f"expected {len(header)} fields, got {len(fields)}")
    row = {h: f.strip() for h, f in zip(header, fields, strict=True)}
    path = row["path"]
    if not path:
        return Skip(None, source, "", "malformed_row", "path is empty")
    subject_id = row.get("subject_id") or path
    if "fold" in row:
        if not row["fold"].isdigit() or int(row["fold"]) >= NUM_FOLDS:
            return Skip(None, source, path, "malformed_row",
                        f"fold {row['fold']!r} is not one of 0..{NUM_FOLDS - 1}")
        fold = int(row["fold"])
    else:
        fold = fold_of(subject_id)
    age_text, gender_text = row.get("age", ""), row.get("gender", "")
    if age_text.isdigit():
        age = labels.age_label_from_years(int(age_text), policy)
    else:
        age = labels.age_label_from_text(age_text, policy)
    gender = _GENDERS.get(gender_text.lower(), labels.UNKNOWN)
    if age == labels.UNKNOWN and gender == labels.UNKNOWN:
        return Skip(fold, source, path, "unknown_labels", f"age={age_text!r} gender={gender_text!r}")
    return Face(fold, source, path, subject_id, age, gender)
