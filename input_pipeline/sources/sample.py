"""The embedded default: a synthetic sample in the exact layout of an Adience download
(and, with the same machinery, of UTKFace and of an IMFDB-style CSV: utkface_sample.py,
imfdb_sample.py).

Adience is handed out by its authors after a request form, so the project cannot ship
it. This module writes a stand-in with the same files, columns and paths: five
subject-disjoint fold files with the 12 columns, images under `aligned/` and
`faces/`, and a realistic share of the quirks of the real fold files (None ages, bare
numbers, off-grid ranges, 'u' and empty genders, exact duplicate rows, a blank last
line, a truncated image and a missing one). The faces are drawn by synthetic_face, so
age group and gender change what a face looks like. Nothing about it is real data:
SAMPLE.json and README.txt in the folder say so, and the manifest records it.

Generation is deterministic for a given SampleConfig, whatever the number of workers.
"""

import dataclasses
import functools
import json
import os
import shutil

import numpy as np
from absl import logging

from input_pipeline import labels, parallel
from input_pipeline.progress import Progress
from input_pipeline.sources import adience, imfdb_sample, synthetic_face, utkface_sample
from input_pipeline.sources.rows import NUM_FOLDS, DatasetError

GENERATOR_VERSION = 1
MARKER = "SAMPLE.json"
# Adience's age-group shares (Levi & Hassner 2015, Table 1) blended 70/30 with uniform
# so the rarest groups still have a few hundred faces in a 3,000-face sample.
_ADIENCE_SHARES = np.array([2519, 2163, 2292, 1811, 4940, 2293, 825, 869], dtype=float)
AGE_SHARES = 0.7 * _ADIENCE_SHARES / _ADIENCE_SHARES.sum() + 0.3 / len(_ADIENCE_SHARES)
# Noisy values found in the real fold files.
BARE_NUMBERS = ("35", "13", "22", "34", "23", "45", "55", "36", "57", "3", "29", "58", "2", "32",
                "56", "42", "46")
OFF_GRID = ("(27, 32)", "(25, 23)", "(38, 42)", "(38, 48)", "(8, 23)")
# Share of rows given each quirk (at least one row each).
QUIRK_SHARES = {"age_none": 0.04, "age_number": 0.015, "age_off_grid": 0.006,
                "gender_u": 0.04, "gender_empty": 0.007, "no_labels": 0.002, "duplicate": 0.008}
MIN_FACES = 50


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    num_faces: int = 3000
    image_size: int = 320  # Pixels a side of each generated photo.
    seed: int = 0

    def __post_init__(self):
        if self.num_faces < MIN_FACES or self.image_size < 32:
            raise ValueError(f"a sample needs >= {MIN_FACES} faces of >= 32 pixels: {self}")


def is_sample(data_dir):
    """True if `data_dir` holds a synthetic sample written by this module."""
    return os.path.isfile(os.path.join(data_dir, MARKER))


def ensure(sample_dir, cfg, num_workers=0, layout="adience"):
    """Generates the sample of `layout` (LAYOUTS) into `sample_dir` unless it is already
    there, complete and made with `cfg`. Returns True if it generated."""
    marker = os.path.join(sample_dir, MARKER)
    if os.path.isfile(marker):
        with open(marker) as f:
            found = json.load(f)
        if (found.get("generator_version") == GENERATOR_VERSION and found.get("config") == dataclasses.asdict(cfg)
                and found.get("layout", "adience") == layout):
            return False
        logging.info("%s was made with other settings; generating it again", sample_dir)
    generate(sample_dir, cfg, num_workers, layout)
    return True


def generate(sample_dir, cfg, num_workers=0, layout="adience"):
    """Writes the sample of `layout` into `sample_dir`, replacing it; atomic like the shard build."""
    sample_dir = os.path.abspath(sample_dir)
    if os.path.exists(sample_dir) and not is_sample(sample_dir) and (
            not os.path.isdir(sample_dir) or os.listdir(sample_dir)):
        raise DatasetError(f"{sample_dir} exists and is not a synthetic sample; choose another "
                           "--sample_dir (a sample only ever replaces an earlier sample)")
    parent, name = os.path.split(sample_dir)
    staging = os.path.join(parent, f".{name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        num_rows, planted = _layouts()[layout](staging, cfg, parallel.resolve_workers(num_workers))
        with open(os.path.join(staging, MARKER), "w") as f:
            json.dump({"synthetic": True, "layout": layout, "generator_version": GENERATOR_VERSION,
                       "config": dataclasses.asdict(cfg), "num_rows": num_rows, "planted": planted}, f, indent=2)
        with open(os.path.join(staging, "README.txt"), "w") as f:
            f.write(f"SYNTHETIC data drawn by input_pipeline/sources/sample.py in the layout of {layout}.\n"
                    "These are not photographs of people; use them to exercise the code, not to report results.\n")
        if os.path.isdir(sample_dir):
            shutil.rmtree(sample_dir)
        os.rename(staging, sample_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return planted


@dataclasses.dataclass(frozen=True)
class _Photo:
    """One face to render (picklable, for the workers)."""

    index: int
    person: synthetic_face.Person
    years: float
    paths: tuple  # (aligned, coarse), absolute.
    fault: str  # "", "truncated" or "missing".


def _write(root, cfg, num_workers):
    """The Adience layout: fold files, aligned/ and faces/."""
    rng = np.random.default_rng([cfg.seed, GENERATOR_VERSION])
    subjects = _make_subjects(rng, cfg.num_faces)
    folds = _assign_folds(subjects)
    rows, photos = [], []
    face_id = 0
    for fold, subject in zip(folds, subjects, strict=True):
        user_id, person, count = subject
        for _ in range(count):
            face_id += 1
            original = f"{rng.integers(10**10, 10**11)}_{rng.integers(16**9, 16**10):010x}_o.jpg"
            hi = labels.ADIENCE.ranges[person.age_group][1]
            years = min(person.years + rng.uniform(0, 1.5), hi + 0.99, 85)
            paths = tuple(os.path.join(root, adience.image_path(layout, user_id, face_id, original))
                          for layout in ("aligned", "faces"))
            photos.append(_Photo(len(photos), person, years, paths, ""))
            rows.append({"fold": fold, "user_id": user_id, "original_image": original,
                         "face_id": face_id, "age": labels.ADIENCE.names[person.age_group],
                         "gender": "m" if person.male else "f", "group": person.age_group,
                         "fiducials": _fiducials(rng)})
    planted = _plant_quirks(rng, rows, photos)
    num_rows = _write_fold_files(root, rows)

    render = functools.partial(_render, seed=cfg.seed, size=cfg.image_size)
    progress = Progress("drawing synthetic faces", len(photos))
    for _ in parallel.ordered_map(render, photos, num_workers):
        progress.update()
    return num_rows, planted


def _layouts():
    """{layout: write(root, cfg, num_workers) -> (rows, planted quirks)}."""
    return {"adience": _write, "utkface": utkface_sample.write, "imfdb": imfdb_sample.write}


def _make_subjects(rng, num_faces):
    """(user_id, Person, number of photos) until the photos add up to num_faces."""
    subjects, total, seen = [], 0, set()
    while total < num_faces:
        user_id = f"{rng.integers(10**7, 10**8)}@N{rng.integers(0, 8):02d}"
        if user_id in seen:
            continue
        seen.add(user_id)
        group = int(rng.choice(len(AGE_SHARES), p=AGE_SHARES))
        lo, hi = labels.ADIENCE.ranges[group]
        years = rng.uniform(lo, min(hi, 80))
        person = synthetic_face.make_person(rng, group, bool(rng.random() < 0.5), years)
        count = int(min(rng.integers(4, 26), num_faces - total))
        subjects.append((user_id, person, count))
        total += count
    return subjects


def _assign_folds(subjects):
    """Whole subjects to folds, each to the fold with the fewest photos so far."""
    sizes, folds = [0] * NUM_FOLDS, []
    for _, _, count in subjects:
        fold = sizes.index(min(sizes))
        sizes[fold] += count
        folds.append(fold)
    return folds


def _fiducials(rng):
    x, y = rng.integers(0, 1200, size=2)
    side = int(rng.integers(120, 900))
    return [int(x), int(y), side, side, int(rng.integers(-90, 91)), int(rng.integers(-40, 41)),
            int(rng.integers(20, 300))]


def _plant_quirks(rng, rows, photos):
    """Rewrites some labels as the real fold files have them; returns counts per quirk."""
    n = len(rows)
    counts = {k: max(1, round(share * n)) for k, share in QUIRK_SHARES.items()}
    order = iter(rng.permutation(n).tolist())
    chosen = {k: [next(order) for _ in range(c)] for k, c in counts.items()}
    for i in chosen["age_none"]:
        rows[i]["age"] = "None"
    for i in chosen["age_number"]:
        rows[i]["age"] = _noisy_value(rng, rows[i]["group"], BARE_NUMBERS)
    for i in chosen["age_off_grid"]:
        rows[i]["age"] = _noisy_value(rng, rows[i]["group"], OFF_GRID)
    for i in chosen["gender_u"]:
        rows[i]["gender"] = "u"
    for i in chosen["gender_empty"]:
        rows[i]["gender"] = ""
    for i in chosen["no_labels"]:
        rows[i]["age"], rows[i]["gender"] = "None", "u"
    for i in chosen["duplicate"]:
        rows[i]["duplicated"] = True
    truncated, missing = next(order), next(order)
    photos[truncated] = dataclasses.replace(photos[truncated], fault="truncated")
    photos[missing] = dataclasses.replace(photos[missing], fault="missing")
    counts.update(truncated_image=1, missing_image=1)
    return counts


def _noisy_value(rng, group, values):
    """A listed noisy value that the `nearest` policy maps to `group`, if there is one."""
    near = [v for v in values
            if labels.ADIENCE.bin_of(*labels.age_from_text(v, "nearest", bare_numbers=False), "nearest") == group]
    return str(rng.choice(near or values))


def _write_fold_files(root, rows):
    """Writes the five fold files; returns the number of rows written."""
    num_rows = 0
    for fold, name in enumerate(adience.FOLD_FILES):
        lines = ["\t".join(adience.HEADER)]
        for row in rows:
            if row["fold"] != fold:
                continue
            fields = [row["user_id"], row["original_image"], str(row["face_id"]), row["age"],
                      row["gender"], *map(str, row["fiducials"])]
            lines.extend(["\t".join(fields)] * (2 if row.get("duplicated") else 1))
        ending = "\n\n" if fold % 2 else "\n"  # Some real fold files end with a blank line.
        with open(os.path.join(root, name), "w", newline="") as f:
            f.write("\n".join(lines) + ending)
        num_rows += len(lines) - 1
    return num_rows


def _render(photo, seed, size):
    """Draws one photo and writes its aligned and coarse JPEGs (in a worker)."""
    rng = np.random.default_rng([seed, GENERATOR_VERSION, photo.index])
    images = synthetic_face.draw_photo(rng, photo.person, photo.years, size)
    quality = int(rng.integers(75, 96))
    for path, image in zip(photo.paths, images, strict=True):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if photo.fault == "missing":
            continue
        image.save(path, format="JPEG", quality=quality)
        if photo.fault == "truncated":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
