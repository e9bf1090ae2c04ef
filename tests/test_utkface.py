import os
import zlib

import pytest

from datasets import jpeg_bytes, write_file
from input_pipeline import labels
from input_pipeline.config import BuildConfig
from input_pipeline.sources import utkface
from input_pipeline.sources.rows import DatasetError
from input_pipeline.writer import build

NAMES = {  # path: (age as (low, high), gender, race).
    "1_0_0_20161219140623097.jpg.chip.jpg": ((1, 1), 0, 0),
    "26_1_2_20170116174525125.jpg.chip.jpg": ((26, 26), 1, 2),
    "14_1_3_20170104222041325.jpg.chip.jpg": ((14, 14), 1, 3),
    "part2/61_0_1_20170109142408075.jpg": ((61, 61), 0, 1),  # The in-the-wild naming, in a subfolder.
}
MALFORMED = {
    "39_1_20170116174525125.jpg.chip.jpg": "expected",  # No race field (as in the real set).
    "30_2_0_20170116174525125.jpg.chip.jpg": "gender 2",
    "130_0_0_20170116174525125.jpg.chip.jpg": "age 130",
    "30_0_5_20170116174525125.jpg.chip.jpg": "race 5",
    "selfie.jpg": "expected",
}


@pytest.fixture
def utk_dir(tmp_path):
    root = tmp_path / "UTKFace"
    for name in [*NAMES, *MALFORMED]:
        write_file(str(root / name), jpeg_bytes())
    write_file(str(root / "README.txt"), "not an image")
    write_file(str(root / ".hidden.jpg"), "")
    return str(root)


def test_labels_from_file_names(utk_dir):
    rows = utkface.read(utk_dir)
    assert {f.path: (f.age, f.gender, f.race) for f in rows.faces} == NAMES
    assert rows.race_classes == ("White", "Black", "Asian", "Indian", "Others")
    skips = {s.path: s for s in rows.skips}
    assert set(skips) == set(MALFORMED)
    for name, detail in MALFORMED.items():
        assert skips[name].reason == "malformed_name" and detail in skips[name].detail
    face = next(f for f in rows.faces if f.path.startswith("part2"))
    assert face.subject_id == "61_0_1_20170109142408075"


def test_adience_bins_of_exact_ages():
    assert labels.ADIENCE.bin_of(14, 14, "strict") == -1  # 14 lies between (8, 12) and (15, 20)...
    assert labels.ADIENCE.bin_of(14, 14, "nearest") == 3  # ... 1 from (15, 20), 2 from (8, 12).


def test_folds_are_a_stable_hash_of_the_name(utk_dir):
    for face in utkface.read(utk_dir).faces:
        name = os.path.basename(face.path)
        assert face.fold == zlib.crc32(name.encode()) % 5


def test_a_folder_without_utkface_names_is_refused(tmp_path):
    write_file(str(tmp_path / "x" / "photo.jpg"), jpeg_bytes())
    with pytest.raises(DatasetError, match="not a UTKFace folder"):
        utkface.read(str(tmp_path / "x"))


def test_build_from_utkface(utk_dir, tmp_path):
    manifest = build.build(BuildConfig(dataset="utkface", data_dir=utk_dir, output_dir=str(tmp_path / "o"),
                                       image_size=16, num_workers=1))
    assert manifest["dataset"] == "utkface" and manifest["num_examples"] == 4
    assert manifest["skipped"]["by_reason"] == {"malformed_name": 5}
    assert sum(f["age_counts"]["unknown"] for f in manifest["folds"]) == 0  # Every age is exact years.
    assert sum(f["age_counts"].get("14", 0) for f in manifest["folds"]) == 1
    assert manifest["race_classes"] == ["White", "Black", "Asian", "Indian", "Others"]
    assert sum(f["race_counts"]["Indian"] for f in manifest["folds"]) == 1
