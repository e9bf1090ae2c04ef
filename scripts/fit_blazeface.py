"""Measures the constants that move BlazeFace's landmarks to where MTCNN puts them
(input_pipeline/faces/blazeface.py: EYE_DROP, EYE_SPREAD, MOUTH_REACH, BOX_GROWTH), so that
the canonical crop frames a face alike whichever of the two detectors ran.

    python scripts/fit_blazeface.py                  # 400 faces of ../shared/utkface_dev
    python scripts/fit_blazeface.py --photos=1000 --photos_dir=path/to/faces

Both detectors run as the build runs them (faces.detect), BlazeFace with its correction
turned off, on a seeded sample of the folder's photos of one face; on the photos where both
find one face, it prints each constant as the median over those faces (and the 10-90%
range). The constants in blazeface.py come from this script on utkface_dev, the faces the
real-face model trains on, so that realfaces_dev, where the figures are measured, stays
unseen (scripts/bench_detect.py shows the framing on it).
"""

import glob
import os

import numpy as np
from absl import app, flags

from input_pipeline import faces, photo
from input_pipeline.faces import blazeface

flags.DEFINE_string("photos_dir", "../shared/utkface_dev", "Photos of one face each (JPEG or PNG).")
flags.DEFINE_integer("photos", 400, "Photos to measure, a seeded sample of the folder's.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the sample.")
FLAGS = flags.FLAGS

UNCORRECTED = {"EYE_DROP": 0.0, "EYE_SPREAD": 1.0, "MOUTH_REACH": 1.0, "BOX_GROWTH": 1.0}


def offsets(blaze, mtcnn):
    """(eye drop / size, eye spread ratio, mouth reach ratio, box side ratio) of one face's
    uncorrected BlazeFace detection against MTCNN's; landmarks in MTCNN's order (image-left
    eye, image-right eye, nose, and BlazeFace's mouth centre twice for the two corners)."""
    b, m = blaze.landmarks, mtcnn.landmarks
    b_eyes, m_eyes = (b[0] + b[1]) / 2, (m[0] + m[1]) / 2
    across = (b[1] - b[0]) / 2
    down = np.array([-across[1], across[0]]) / max(np.hypot(*across), 1e-6)  # Towards the chin.
    size = max(2 * np.hypot(*across), np.hypot(*(b[3] - b_eyes)))  # As blazeface.calibrate measures it.
    return (float((b_eyes - m_eyes) @ down / size),
            float(np.hypot(*(b[1] - b[0])) / np.hypot(*(m[1] - m[0]))),
            float(np.hypot(*(b[3] - b_eyes)) / np.hypot(*((m[3] + m[4]) / 2 - m_eyes))),
            float(blaze.side / mtcnn.side))


def main(argv):
    del argv
    paths = sorted(p for p in glob.glob(os.path.join(FLAGS.photos_dir, "*"))
                   if p.lower().endswith((".jpg", ".jpeg", ".png")))
    if not paths:
        raise app.UsageError(f"no photos in {FLAGS.photos_dir!r}")
    chosen = np.random.default_rng(FLAGS.seed).choice(len(paths), min(FLAGS.photos, len(paths)), replace=False)
    for name, value in UNCORRECTED.items():
        setattr(blazeface, name, value)
    rows, missed = [], 0
    for index in sorted(chosen):
        with open(paths[index], "rb") as f:
            pixels = np.asarray(photo.decode(f.read()))
        found = [faces.detect(pixels, faces.CropSpec(detector=d))[0] for d in ("blazeface", "mtcnn")]
        if any(len(f) != 1 for f in found):
            missed += 1
            continue
        rows.append(offsets(*(f[0] for f in found)))
    if not rows:
        raise app.UsageError("no photo where both detectors find one face")
    rows = np.array(rows)
    median, low, high = (np.percentile(rows, q, axis=0) for q in (50, 10, 90))
    print(f"{len(rows)} faces of {len(chosen)} from {FLAGS.photos_dir} ({missed} without one face from each)")
    names = ("EYE_DROP", "EYE_SPREAD", "MOUTH_REACH", "BOX side ratio (BOX_GROWTH = 1 / it)")
    for name, m, lo, hi in zip(names, median, low, high, strict=True):
        print(f"{name}: {m:.3f} (10-90%: {lo:.3f} ... {hi:.3f})")
    print(f"BOX_GROWTH = 1 / {median[3]:.3f}")


if __name__ == "__main__":
    app.run(main)
