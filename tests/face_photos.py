"""Photos with faces for the tests: drawn ones (always there) and real ones (when present).

Drawn faces come from the synthetic sample's renderer. Haar finds the face of the seeds in
HAAR_SEEDS at 200 px, MTCNN those of MTCNN_SEEDS (it was trained on real faces and finds
few drawn ones). Real faces are ../shared/realfaces_dev (UTKFace crops, non-commercial
research licence: never copied into the repository); tests using them skip without them.
"""

import csv
import os

import numpy as np
from PIL import Image

from input_pipeline.sources import synthetic_face
from processes import ROOT

HAAR_SEEDS = (1, 3, 5, 6, 7, 9, 10, 13, 17, 18)
MTCNN_SEEDS = (2, 11, 15)
TWO_FACE_SEEDS = (5, 7)  # Both found by Haar in two_faces().
REAL_FACES = os.path.normpath(os.path.join(ROOT, "..", "shared", "realfaces_dev"))
NO_REAL_FACES = f"the real-face folder {REAL_FACES} is absent (it is never part of the repository)"
UTKFACE_DEV = os.path.normpath(os.path.join(ROOT, "..", "shared", "utkface_dev"))


def utkface_dev_photo(name):
    """The path of one of ../shared/utkface_dev's photos (UTKFace's own name, without
    .jpg.chip.jpg), or None when the folder (never part of the repository) is absent."""
    path = os.path.join(UTKFACE_DEV, f"{name}.jpg.chip.jpg")
    return path if os.path.isfile(path) else None


def drawn_face(seed, size=320):
    rng = np.random.default_rng([seed, 7])
    person = synthetic_face.make_person(rng, 4, seed % 2 == 0, 28.0)
    return synthetic_face.draw_photo(rng, person, 28.0, size)[0]


def two_faces():
    canvas = Image.new("RGB", (700, 340), (200, 200, 200))
    for i, seed in enumerate(TWO_FACE_SEEDS):
        canvas.paste(drawn_face(seed), (10 + i * 360, 10))
    return canvas


def have_real_faces():
    return os.path.isfile(os.path.join(REAL_FACES, "labels.csv"))


def real_faces(count):
    """[(path, age, gender "m"/"f", race)] of the first `count` real faces (race: white,
    black, asian, indian or others)."""
    with open(os.path.join(REAL_FACES, "labels.csv")) as f:
        rows = list(csv.DictReader(f))[:count]
    return [(os.path.join(REAL_FACES, r["path"]), int(r["age"]), r["gender"], r["race"]) for r in rows]
