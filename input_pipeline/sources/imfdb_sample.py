"""A synthetic sample laid out as IMFDB's "age detection of Indian actors" data.

`train.csv` with the columns `ID,Class`, `Class` one of YOUNG, MIDDLE, OLD (13-30, 31-50,
51+: --age_bins=three), and the images `Train/<ID>`: small face crops from films, of many
sizes and shapes, some grayscale, and (unlike the real set, to exercise the conversion)
some PNG and BMP files. Build it with

    python build_input.py --dataset=csv --data_dir=data/imfdb_sample/Train \\
        --csv_file=data/imfdb_sample/train.csv --csv_columns=path=ID,age=Class --age_bins=three

Drawn by synthetic_face; nothing here is a photograph.
"""

import dataclasses
import functools
import os

import numpy as np
from PIL import Image

from input_pipeline import labels, parallel
from input_pipeline.progress import Progress
from input_pipeline.sources import synthetic_face

VERSION = 1
CSV = "train.csv"
IMAGES = "Train"
COLUMNS = "path=ID,age=Class"  # --csv_columns that read it.
AGE_BINS = "three"  # --age_bins whose names its Class column holds.
CLASSES = {"YOUNG": (13, 30), "MIDDLE": (31, 50), "OLD": (51, 80)}
SHARES = (0.33, 0.54, 0.13)  # Of the real train.csv.
# Share of images of each kind; the rest are RGB JPEGs.
KINDS = {"gray_jpeg": 0.15, "png": 0.1, "gray_png": 0.03, "bmp": 0.03}


@dataclasses.dataclass(frozen=True)
class _Photo:
    index: int
    person: synthetic_face.Person
    path: str
    size: tuple  # (width, height) stored.
    kind: str


def write(root, cfg, num_workers):
    """Writes train.csv and cfg.num_faces images under Train/; returns (rows, planted kinds)."""
    rng = np.random.default_rng([cfg.seed, VERSION, 11])
    os.makedirs(os.path.join(root, IMAGES))
    lines, photos = ["ID,Class"], []
    kinds = list(KINDS) + ["jpeg"]
    kind_shares = [*KINDS.values(), 1 - sum(KINDS.values())]
    for index in range(cfg.num_faces):
        name = list(CLASSES)[rng.choice(len(CLASSES), p=SHARES)]
        low, high = CLASSES[name]
        years = int(rng.integers(low, high + 1))
        person = synthetic_face.make_person(rng, labels.ADIENCE.bin_of(years, years, "nearest"),
                                            bool(rng.random() < 0.6), years, race=3)
        kind = kinds[rng.choice(len(kinds), p=kind_shares)]
        extension = {"png": "png", "gray_png": "png", "bmp": "bmp"}.get(kind, "jpg")
        file_id = f"{index * 7 + int(rng.integers(0, 7))}.{extension}"
        height = int(rng.integers(24, 130))
        size = (max(16, int(height * rng.uniform(0.7, 1.2))), height)
        photos.append(_Photo(index, person, os.path.join(root, IMAGES, file_id), size, kind))
        lines.append(f"{file_id},{name}")
    with open(os.path.join(root, CSV), "w") as f:
        f.write("\n".join(lines) + "\n")
    render = functools.partial(_render, seed=cfg.seed, size=cfg.image_size)
    progress = Progress("drawing synthetic IMFDB-style faces", len(photos))
    for _ in parallel.ordered_map(render, photos, num_workers):
        progress.update()
    planted = {kind: sum(1 for p in photos if p.kind == kind) for kind in KINDS}
    return len(photos), planted


def _render(photo, seed, size):
    rng = np.random.default_rng([seed, VERSION, photo.index])
    aligned, _ = synthetic_face.draw_photo(rng, photo.person, photo.person.years, size)
    image = aligned.resize(photo.size, Image.Resampling.BILINEAR)
    if photo.kind.startswith("gray"):
        image = image.convert("L")
    if photo.kind in ("png", "gray_png"):
        image.save(photo.path, format="PNG")
    elif photo.kind == "bmp":
        image.save(photo.path, format="BMP")
    else:
        image.save(photo.path, format="JPEG", quality=int(rng.integers(70, 92)))
