"""Adience fold files -> labelled faces.

Format of the benchmark as distributed by its authors: `fold_<k>_data.txt`, k = 0..4,
tab-separated with a header row, one row per face; folds are subject-disjoint. Images
live at `aligned/<user_id>/landmark_aligned_face.<face_id>.<original_image>` (the
in-plane aligned set the paper uses) or, for the coarse set,
`faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<original_image>`.
"""

import os

from input_pipeline import labels
from input_pipeline.sources.rows import NUM_FOLDS, DatasetError, Face, Rows, Skip

FOLD_FILES = tuple(f"fold_{k}_data.txt" for k in range(NUM_FOLDS))
HEADER = ("user_id", "original_image", "face_id", "age", "gender", "x", "y", "dx", "dy",
          "tilt_ang", "fiducial_yaw_angle", "fiducial_score")
# --image_layout -> (folder, file-name prefix).
LAYOUTS = {
    "aligned": ("aligned", "landmark_aligned_face"),
    "faces": ("faces", "coarse_tilt_aligned_face"),
}


def image_path(layout, user_id, face_id, original_image):
    """Path of a face's image relative to the data dir."""
    folder, prefix = LAYOUTS[layout]
    return f"{folder}/{user_id}/{prefix}.{face_id}.{original_image}"


def check_dir(data_dir, layout):
    """Raises DatasetError unless `data_dir` holds the five fold files and the layout's folder."""
    if layout not in LAYOUTS:
        raise DatasetError(f"--image_layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data dir {data_dir} does not exist or is not a folder")
    missing = [f for f in FOLD_FILES if not os.path.isfile(os.path.join(data_dir, f))]
    if len(missing) == NUM_FOLDS:
        raise DatasetError(
            f"{data_dir} is not an Adience folder: it has none of the fold files "
            f"{FOLD_FILES[0]} ... {FOLD_FILES[-1]}. For UTKFace or a CSV pass "
            "--dataset=utkface or --dataset=csv.")
    if missing:
        raise DatasetError(f"{data_dir}: missing fold file(s) {', '.join(missing)}")
    folder = LAYOUTS[layout][0]
    if not os.path.isdir(os.path.join(data_dir, folder)):
        found = [name for name, (f, _) in LAYOUTS.items()
                 if os.path.isdir(os.path.join(data_dir, f))]
        hint = f"; it has {found[0]}/: pass --image_layout={found[0]}" if found else ""
        raise DatasetError(f"{data_dir} has no {folder}/ folder for --image_layout={layout}{hint}")
    for name in FOLD_FILES:
        path = os.path.join(data_dir, name)
        with open(path, "rb") as f:
            first = f.readline().decode("utf-8", "replace").rstrip("\r\n")
        if tuple(field.strip() for field in first.split("\t")) != HEADER:
            raise DatasetError(
                f"{path}: the first line is not the Adience header.\n"
                f"  expected: {' '.join(HEADER)} (tab-separated)\n  found:    {first[:200]!r}")


def read(data_dir, layout="aligned", policy="strict", dedup=False):
    """Reads the five fold files of an Adience download into faces and skipped rows.

    Raises DatasetError (before anything is written) when the folder is not Adience.
    Duplicate rows are kept, as in the paper's lists, unless `dedup`.
    """
    labels.check_policy(policy)
    check_dir(data_dir, layout)
    rows = Rows()
    seen = set()
    for fold, name in enumerate(FOLD_FILES):
        with open(os.path.join(data_dir, name), "rb") as f:
            lines = f.read().split(b"\n")
        for number, raw in enumerate(lines[1:], start=2):
            raw = raw.rstrip(b"\r")
            if not raw.strip():
                continue  # Real fold files end with a blank line.
            row = _parse_row(raw, fold, f"{name}:{number}", layout, policy)
            if dedup and isinstance(row, Face):
                if raw in seen:
                    row = Skip(fold, row.source, row.path, "duplicate_row", "same as an earlier row")
                seen.add(raw)
            (rows.faces if isinstance(row, Face) else rows.skips).append(row)
    return rows


def _parse_row(raw, fold, source, layout, policy):
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Skip(fold, source, "", "bad_encoding", f"byte {e.start}: {raw[e.start:e.start + 4]!r}")
    fields = line.split("\t")
    while len(fields) > len(HEADER) and not fields[-1].strip():
        fields.pop()  # Tolerate trailing tabs.
    if len(fields) != len(HEADER):
        return Skip(fold, source, "", "malformed_row",
                    f"expected {len(HEADER)} tab-separated fields, got {len(fields)}")
    user_id, original_image, face_id, age_text, gender_text = (f.strip() for f in fields[:5])
    problem = _bad_path_part(user_id, "user_id") or _bad_path_part(original_image, "original_image")
    if not problem and not face_id.isdigit():
        problem = f"face_id {face_id!r} is not a whole number"
    if problem:
        return Skip(fold, source, "", "malformed_row", problem)
    path = image_path(layout, user_id, face_id, original_image)
    # A bare number in a fold file ("35") is noise to the paper's protocol; `nearest` reads it as years.
    face = Face(fold, source, path, user_id, labels.age_from_text(age_text, policy, bare_numbers=False),
                labels.gender_label(gender_text))
    if face.unlabelled:
        return Skip(fold, source, path, "unknown_labels", f"age={age_text!r} gender={gender_text!r}")
    return face


def _bad_path_part(value, name):
    if not value:
        return f"{name} is empty"
    if "/" in value or "\\" in value or value in (".", ".."):
        return f"{name} {value!r} is not a plain name"
    return ""
