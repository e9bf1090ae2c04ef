"""A CSV of image paths and labels -> labelled faces.

Columns (header names, any case): `path` (required; relative to the data dir, or
absolute), at least one of `age`, `gender` and `race`, and optional `fold` (0..4) and
`subject_id`. Other header names map onto these with --csv_columns, e.g.
`path=ID,age=Class` for IMFDB's `train.csv`. An age is whole years, an Adience range
such as "(25, 32)", a range "13-30" / "51+" or a bin name of --age_bins ("YOUNG" with
--age_bins=three); a gender is m/f/male/female or 0/1 (0 male); a race is any name, and
the manifest lists the names found (sorted) as race_classes. Without a `fold` column a
face's fold is a stable hash of its subject_id, so the folds, and the validation split
drawn by subject, keep each person on one side. Without a subject_id column every image
counts as its own person: frames of one actor can be in training, validation and test at
once, and the figures come out higher than on people the model never saw. build() warns
and the manifest says so (subject_ids "per_image"); --csv_columns=subject_id=<column>
names the column that says who is in each image.
"""

import csv
import dataclasses
import io
import os
import re

from input_pipeline import labels
from input_pipeline.sources.rows import (NUM_FOLDS, SUBJECT_PER_IMAGE, SUBJECTS_GIVEN, DatasetError, Face, Rows, Skip,
                                         fold_of)

FIELDS = ("path", "age", "gender", "race", "fold", "subject_id")
_LABELS = ("age", "gender", "race")
_GENDERS = {"m": 0, "male": 0, "0": 0, "f": 1, "female": 1, "1": 1}
_SURROGATE_RE = re.compile("[\udc80-\udcff]")  # What surrogateescape makes of bad bytes.


def parse_columns(spec):
    """{field: CSV header name} of --csv_columns "path=ID,age=Class" (names matched in any case)."""
    columns = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        field, sep, header = (x.strip() for x in item.partition("="))
        if not sep or not header or field not in FIELDS:
            raise ValueError(f"--csv_columns: {item!r} is not <field>=<CSV column> with a field among "
                             f"{', '.join(FIELDS)}")
        if field in columns:
            raise ValueError(f"--csv_columns: {field} is mapped twice")
        columns[field] = header.lower()
    return columns


def read(csv_file, data_dir, policy="strict", dedup=False, columns=None, age_bins=labels.ADIENCE):
    """Reads `csv_file`; image paths are taken relative to `data_dir`. `columns` maps
    fields to other header names (parse_columns); bin names in the age column are those
    of `age_bins`."""
    labels.check_policy(policy)
    if not os.path.isfile(csv_file):
        raise DatasetError(f"CSV file {csv_file} does not exist")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data dir {data_dir} does not exist or is not a folder")
    with open(csv_file, "rb") as f:
        text = f.read().decode("utf-8-sig", "surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    where = find_columns(header, csv_file, columns or {})
    name = os.path.basename(csv_file)
    rows, seen, faces, races = Rows(), set(), [], []
    rows.subject_ids = SUBJECTS_GIVEN if "subject_id" in where else SUBJECT_PER_IMAGE
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        row = _parse_row(fields, header, where, f"{name}:{reader.line_num}", policy, age_bins)
        if isinstance(row, Skip):
            rows.skips.append(row)
            continue
        face, race = row
        if dedup and tuple(fields) in seen:
            rows.skips.append(Skip(face.fold, face.source, face.path, "duplicate_row", "same as an earlier row"))
            continue
        seen.add(tuple(fields))
        faces.append(face)
        races.append(race)
    # Race names become indices into the sorted names found, which the manifest lists.
    rows.without_subject = sum(face.subject_id == face.path for face in faces)  # No subject_id, or an empty one.
    rows.race_classes = tuple(sorted(set(races) - {""}))
    rows.faces = [dataclasses.replace(face, race=rows.race_classes.index(race) if race else labels.UNKNOWN)
                  for face, race in zip(faces, races, strict=True)]
    return rows


def gender_of(text):
    """0 (male) or 1 (female) of a CSV's m/f/male/female/0/1, in any case; else labels.UNKNOWN."""
    return _GENDERS.get(text.strip().lower(), labels.UNKNOWN)


def fold_of_row(row):
    """The fold of a row {field: text}: its fold column (None when that is not one of
    0..4), else a stable hash of its subject_id (folds keep people apart), or of its path
    when it has none (each image its own person)."""
    if "fold" in row:
        return int(row["fold"]) if row["fold"].isdigit() and int(row["fold"]) < NUM_FOLDS else None
    return fold_of(row.get("subject_id") or row["path"])


def find_columns(header, csv_file, columns):
    """{field: index in the header}; DatasetError naming what is missing or repeated."""
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DatasetError(f"{csv_file}: column(s) named twice: {', '.join(repeated)}")
    wanted = {field: columns.get(field, field) for field in FIELDS}
    missing = [f"{name!r} (--csv_columns={field}=...)" for field, name in wanted.items()
               if field in columns and name not in header]
    where = {field: header.index(name) for field, name in wanted.items() if name in header}
    if missing or "path" not in where or not set(_LABELS) & set(where):
        problem = f"no column {', '.join(missing)}" if missing else (
            "the header must name a 'path' column and at least one of 'age', 'gender', 'race'")
        raise DatasetError(f"{csv_file}: {problem}; found {', '.join(header) or 'no header'}. Map other "
                           "names with --csv_columns, e.g. --csv_columns=path=ID,age=Class")
    return where


def _parse_row(fields, header, where, source, policy, age_bins):
    """(Face, race name) of a usable row, else a Skip."""
    if any(_SURROGATE_RE.search(f) for f in fields):
        return Skip(None, source, "", "bad_encoding", "the row is not valid UTF-8")
    if len(fields) != len(header):
        return Skip(None, source, "", "malformed_row", f"expected {len(header)} fields, got {len(fields)}")
    row = {field: fields[i].strip() for field, i in where.items()}
    path = row["path"]
    if not path:
        return Skip(None, source, "", "malformed_row", "path is empty")
    subject_id = row.get("subject_id") or path
    fold = fold_of_row(row)
    if fold is None:
        return Skip(None, source, path, "malformed_row", f"fold {row['fold']!r} is not one of 0..{NUM_FOLDS - 1}")
    age_text, gender_text, race = row.get("age", ""), row.get("gender", ""), row.get("race", "")
    age = labels.age_from_text(age_text, policy, age_bins)
    gender = gender_of(gender_text)
    if age[0] < 0 and gender < 0 and not race:
        detail = f"age={age_text!r} gender={gender_text!r} race={race!r}"
        if age_text:
            detail += (f"; an age is years, a range (under strict one of the bins) or a bin name of --age_bins "
                       f"({', '.join(age_bins.names)})")
        return Skip(fold, source, path, "unknown_labels", detail)
    return Face(fold, source, path, subject_id, age, gender), race
