"""A synthetic sample in UTKFace's file-name layout: exact ages, gender and race.

`<age>_<gender>_<race>_<datetime>.jpg.chip.jpg` in one folder, 200x200 upright faces
like UTKFace's aligned-and-cropped set, ages 1..90 spread as in UTKFace (many young
adults, a bump of small children), race 0..4 in UTKFace's shares. Every face is a new
person, as UTKFace has no identities. Like the real set, a few files lack the race
field (malformed names). Drawn by synthetic_face; nothing here is a photograph.
"""

import dataclasses
import functools
import os

import numpy as np

from input_pipeline import labels, parallel
from input_pipeline.progress import Progress
from input_pipeline.sources import synthetic_face

VERSION = 1
# UTKFace's race shares (of its 23,705 faces) and a coarse age histogram (years, share).
RACE_SHARES = np.array([10078, 4526, 3434, 3975, 1692], dtype=float) / 23705
AGE_BANDS = ((1, 3, 0.08), (4, 10, 0.06), (11, 17, 0.05), (18, 22, 0.07), (23, 32, 0.27), (33, 45, 0.2),
             (46, 60, 0.16), (61, 75, 0.08), (76, 90, 0.03))
NO_RACE = 3  # Files named <age>_<gender>_<datetime>.jpg.chip.jpg, as three in the real set.


@dataclasses.dataclass(frozen=True)
class _Photo:
    index: int
    person: synthetic_face.Person
    path: str


def write(root, cfg, num_workers):
    """Writes cfg.num_faces faces into `root`; returns (files, planted quirks)."""
    rng = np.random.default_rng([cfg.seed, VERSION, 7])
    bands = np.array([share for _, _, share in AGE_BANDS])
    photos, names = [], set()
    while len(photos) < cfg.num_faces:
        low, high, _ = AGE_BANDS[rng.choice(len(AGE_BANDS), p=bands / bands.sum())]
        years = int(rng.integers(low, high + 1))
        male, race = bool(rng.random() < 0.5), int(rng.choice(len(RACE_SHARES), p=RACE_SHARES))
        group = labels.ADIENCE.bin_of(years, years, "nearest")
        person = synthetic_face.make_person(rng, group, male, years, race)
        stamp = f"2017{rng.integers(10**12, 10**13)}"
        fields = [str(years), str(int(not male)), *([] if len(photos) < NO_RACE else [str(race)]), stamp]
        name = "_".join(fields) + ".jpg.chip.jpg"
        if name in names:
            continue
        names.add(name)
        photos.append(_Photo(len(photos), person, os.path.join(root, name)))
    render = functools.partial(_render, seed=cfg.seed, size=cfg.image_size)
    progress = Progress("drawing synthetic UTKFace-style faces", len(photos))
    for _ in parallel.ordered_map(render, photos, num_workers):
        progress.update()
    return len(photos), {"no_race_field": NO_RACE}


def _render(photo, seed, size):
    rng = np.random.default_rng([seed, VERSION, photo.index])
    aligned, _ = synthetic_face.draw_photo(rng, photo.person, photo.person.years, size)
    aligned.save(photo.path, format="JPEG", quality=int(rng.integers(80, 96)))
