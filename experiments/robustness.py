"""The robustness study: how an exported model's figures change when its photos are
degraded in controlled ways (experiments/degradations.py), on a labelled set of photos.

Every (family, severity) is one pass of the Predictor over every photo, degraded first.
The photos are faces already (a test fold's stored faces, or a folder of face photos), so
each is taken as one face, except for the face_share family, which places the face in a
larger scene and is face-detected (`detector`). A row per (family, severity):

    found          share of photos in which a face was found inside the pasted photo and
                   classified (face_share only: the other families take each photo as
                   the face; a detection in the background is not counted)
    face_area      the mean share of the scene's area the found face's box covers: the
                   face's real share of the picture (face_share only; the photo around
                   the face makes it smaller than the severity)
    unsure         share of faces with at least one class head's answer marked unsure
                   (under the Predictor's min_confidence; None without one)
    <head>_unsure  the same for each class head with a threshold, when there are several (a
                   two-class head is never under 0.5)
    scored         faces found and classified (the shares below are over them); <head>_n
                   the labelled faces behind a head's figure, when fewer
    changed        share of faces whose answer (a class head's label) differs from the same
                   photo's undegraded: the paired view of a change, far less noisy than
                   two accuracies compared; <head>_changed per head, when there are several
    <figures>      score.score's figures of each head: gender_accuracy, race_accuracy,
                   age_exact, age_one_off, age_years_mae (None over fewer than
                   MIN_SCORED labelled faces)
    age_shift_bins, age_years_shift_years
                   the mean change of the predicted age group (in bins) or age (in years)
                   against the same photo undegraded: what a filter does to the age

A figure is None when no photo with that label had a face found, or too few.
"""

import dataclasses
import os
import time

import numpy as np
from absl import logging
from PIL import Image

from experiments import degradations
from input_pipeline import labels, photo
from input_pipeline.sources import csv_file
from serving import report, score

FIGURES = (("age", "exact", "age_exact"), ("age", "one_off", "age_one_off"), ("gender", "accuracy", "gender_accuracy"),
           ("race", "accuracy", "race_accuracy"), ("age_years", "mae", "age_years_mae"))
SHIFTS = ("age_shift_bins", "age_years_shift_years")
MIN_SCORED = 10  # A head's figure over fewer labelled faces is left out (None).


@dataclasses.dataclass(frozen=True)
class Photo:
    name: str  # Unique in the set: how predictions are matched to labels.
    pixels: np.ndarray  # uint8 (H, W, 3).
    truth: tuple  # score.read_truth's (age (low, high), gender 0/1/-1, race name or "").


def photos_from_folder(photos_dir, labels_csv, columns, bins, limit=0):
    """The labelled photos of a labels CSV (score_predictions.py's format) found in `photos_dir`,
    decoded as prediction decodes them (input_pipeline.photo: upright by their EXIF
    orientation, transparency on white). Labels without a photo and photos that cannot be
    read are left out and counted in a warning, naming the first few."""
    truth = score.read_truth(labels_csv, csv_file.parse_columns(columns), bins)
    found = {}
    for root, _, files in os.walk(photos_dir):
        for name in files:
            if name in truth and name not in found:
                found[name] = os.path.join(root, name)
    if not found:
        raise ValueError(f"no photo named in {labels_csv} is in {photos_dir}")
    if len(found) < len(truth):
        missing = sorted(set(truth) - set(found))
        logging.warning("%d of %d labelled photos are not in %s, left out: %s", len(missing), len(truth),
                        photos_dir, ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    photos, broken = [], []
    for name in sorted(found)[:limit or None]:
        try:
            with open(found[name], "rb") as f:
                photos.append(Photo(name, np.asarray(photo.decode(f.read())), truth[name]))
        except (OSError, photo.PhotoError) as e:
            broken.append(f"{found[name]}: {e}")
    if broken:
        logging.warning("%d photos cannot be read, left out: %s", len(broken), "; ".join(broken[:5]))
    if not photos:
        raise ValueError(f"none of the labelled photos in {photos_dir} can be read")
    return photos


def photos_from_shards(shards_dir, test_fold, limit=0):
    """The stored faces of a shard set's test fold, with their labels."""
    import tensorflow as tf

    from input_pipeline import preprocess
    from input_pipeline.reader import parse
    from input_pipeline.reader.manifest import load_folds

    manifest, _, test_files = load_folds(shards_dir, test_fold)
    races = [r.lower() for r in manifest.get("race_classes", [])]
    photos = []
    for batch in tf.data.TFRecordDataset(test_files).batch(64).map(parse.parse):
        for i in range(len(batch["encoded"])):
            race = int(batch["race"][i])
            truth = ((int(batch["age_low"][i]), int(batch["age_high"][i])), int(batch["gender"][i]),
                     races[race] if 0 <= race < len(races) else "")
            photos.append(Photo(f"face_{len(photos):05d}.jpg", preprocess.decode_jpeg(batch["encoded"][i]).numpy(),
                                truth))
            if limit and len(photos) >= limit:
                return photos
    return photos


def predict(predictor, photos, family, severity, seed):
    """({photo name: record of its face}, {photo name: the face box's share of the scene})
    of the photos degraded at (family, severity). Without detection the photo is the face;
    with it (face_share), the largest face found whose centre is inside the pasted photo."""
    # A generator: each photo is degraded as the predictor reads ahead (a batch and a few
    # more), so a study of large scenes (face_share) never holds them all.
    items = ((p.name, np.asarray(degradations.apply(Image.fromarray(p.pixels), family, severity, seed + i)))
             for i, p in enumerate(photos))
    sizes = {p.name: (p.pixels.shape[1], p.pixels.shape[0]) for p in photos}
    faces, areas = {}, {}
    for result in predictor.predict_many(items, workers=2):
        width, height, (x, y, w, h) = degradations.placement(family, sizes[result.input], severity)
        for rec in result.records:
            bx, by, bw, bh = rec["box"]
            inside = x <= bx + bw / 2 <= x + w and y <= by + bh / 2 <= y + h
            if rec["status"] == "ok" and inside:
                faces[result.input], areas[result.input] = rec, bw * bh / (width * height)
                break
    return faces, areas


def row_of(family, severity, predicted, clean, photos, heads, bins):
    """One row of the table: the figures of `predicted` (predict's pair) against the labels
    and against `clean` (the undegraded photos' records); severity 0 reads "none"."""
    faces, areas = predicted
    truth = {p.name: p.truth for p in photos}
    figures = score.score({name: report.flatten(rec, heads) for name, rec in faces.items()}, truth, bins)
    detects = degradations.FAMILIES[family][2]
    row = {"family": family, "severity": "none" if severity == 0 else severity, "photos": len(photos),
           "found": len(faces) / max(len(photos), 1) if detects else None,  # Without detection: every photo.
           "face_area": float(np.mean(list(areas.values()))) if detects and areas else None}
    first = next(iter(faces.values()), {})  # A classified face's record has every class head.
    asked = [h for h in heads.class_names if first and first[h]["unsure"] is not None]  # None: no threshold.
    if asked:
        _shares(row, "unsure", [{h: rec[h]["unsure"] for h in asked} for rec in faces.values()])
    row["scored"] = len(faces)
    for head in heads.names:  # A head scored on fewer faces (labels missing) says so.
        if figures.get(head, {}).get("n", len(faces)) != len(faces):
            row[f"{head}_n"] = figures[head]["n"]
    for head, key, column in FIGURES:
        if head in heads.names:
            enough = figures.get(head, {}).get("n", 0) >= MIN_SCORED
            row[column] = figures[head][key] if enough else None
    both = [name for name in faces if name in clean]
    # Paired with the same photos undegraded: far less noisy than two independent samples.
    _shares(row, "changed", [{h: faces[n][h]["label"] != clean[n][h]["label"] for h in heads.class_names}
                             for n in both])  # age_years alone: None, see its shift.
    if "age" in heads.class_names:
        names = heads.class_names["age"]
        shifts = [names.index(faces[n]["age"]["label"]) - names.index(clean[n]["age"]["label"]) for n in both]
        row["age_shift_bins"] = float(np.mean(shifts)) if shifts else None
    if heads.years_bins:
        shifts = [faces[n]["age_years"]["years"] - clean[n]["age_years"]["years"] for n in both]
        row["age_years_shift_years"] = float(np.mean(shifts)) if shifts else None
    return row


def _shares(row, name, per_face):
    """row[name]: the share of faces with a flag set in any head, of per_face's {head:
    flag} (None with no face or no head); with several heads, also row["<head>_<name>"],
    each head's share."""
    if not per_face or not per_face[0]:
        row[name] = None
        return
    row[name] = float(np.mean([any(flags.values()) for flags in per_face]))
    if len(per_face[0]) > 1:  # With one head, the share is that head's.
        row.update({f"{h}_{name}": float(np.mean([flags[h] for flags in per_face])) for h in per_face[0]})


def run(predictor, detecting, photos, families, seed=0, detect_limit=0):
    """The rows of every (family, severity), severity 0 (the photos as they are) first in
    each family; `detecting` is the Predictor with a face detector (face_share), or None
    to leave that family out; a family with detection runs on the first `detect_limit`
    photos only (0: all), as detecting faces in large scenes is the study's slowest part."""
    heads, bins = predictor.heads, labels.AgeBins.from_dict(predictor.metadata.age_bins)
    clean = {}  # {detects: the photos' predictions as they are}, made at a family's severity 0.
    rows, start = [], time.monotonic()
    total = sum(len(degradations.severities(f)) for f in families)
    for family in families:
        detect = degradations.FAMILIES[family][2]
        if detect and detecting is None:
            logging.warning("%s needs face detection: left out (no detector)", family)
            continue
        chosen, subset = (detecting, photos[:detect_limit or None]) if detect else (predictor, photos)
        for severity in degradations.severities(family):
            if severity == 0 and detect not in clean:
                clean[detect] = predict(chosen, subset, family, 0, seed)
            predicted = clean[detect] if severity == 0 else predict(chosen, subset, family, severity, seed)
            rows.append(row_of(family, severity, predicted, clean[detect][0], subset, heads, bins))
            logging.info("robustness %d/%d: %s %s, %d photos, %.0f s", len(rows), total, family, severity,
                         len(subset), time.monotonic() - start)
    return rows


def columns(rows):
    """The CSV's columns, in order, of the figures the rows have."""
    per_head = list(dict.fromkeys(c for r in rows for c in r if c.endswith(("_n", "_changed", "_unsure"))))
    optional = ["scored", *(c for c in per_head if c.endswith("_n")), "changed",
                *(c for c in per_head if c.endswith("_changed")), "unsure", *(c for c in per_head if c.endswith("_unsure")),
                *figure_columns(rows), *SHIFTS]
    area = ["face_area"] if any(r.get("face_area") is not None for r in rows) else []  # Only with face_share.
    return ["family", "severity", "photos", "found", *area, *(c for c in optional if any(c in r for r in rows))]


def figure_columns(rows):
    """The head figures (FIGURES' columns) the rows have."""
    return [c for _, _, c in FIGURES if any(c in r for r in rows)]


def limits(rows, tolerance=0.02, mae_tolerance=1.0):
    """{figure column: {"resolution": smallest face side, "jpeg": lowest quality}} at which
    the figure stays within `tolerance` (2 points; 1 year for MAE) of the clean photos."""
    out = {}
    for column in figure_columns(rows):
        out[column] = {}
        for family in ("resolution", "jpeg"):
            family_rows = [r for r in rows if r["family"] == family]
            if not family_rows or family_rows[0]["severity"] != "none":
                continue
            if family_rows[0].get(column) is None:
                out[column][family] = "too few faces"
                continue
            clean, kept = family_rows[0][column], None
            for r in family_rows[1:]:  # Severities run from mild to harsh.
                if r.get(column) is None:  # Too few faces here: no claim beyond.
                    break
                worse = (r[column] - clean) if column.endswith("mae") else (clean - r[column])
                if worse > (mae_tolerance if column.endswith("mae") else tolerance):
                    break
                kept = r["severity"]
            out[column][family] = kept
    return out
