import os

import pytest

from datasets import HEADER_LINE, row, write_adience, write_file
from input_pipeline import labels
from input_pipeline.sources import adience
from input_pipeline.sources.rows import DatasetError, Face, Skip

# One fold file that copies every quirk of the real ones.
QUIRKY = [
    row("u1@N01", 1, "(25, 32)", "f"),
    row("u1@N01", 2, "None", "m"),                      # 3: no age, gender only
    row("u1@N01", 3, "35", "f"),                        # 4: bare number
    row("u1@N01", 4, "(27, 32)", "m"),                  # 5: off-grid range
    row("u1@N01", 5, "(8, 12)", "u"),                   # 6: unknown gender
    row("u1@N01", 6, "(8, 12)", ""),                    # 7: empty gender
    row("u1@N01", 7, "None", "u"),                      # 8: nothing known
    row("u1@N01", 8, "(48, 53)", "m"),                  # 9
    row("u1@N01", 8, "(48, 53)", "m"),                  # 10: exact duplicate of 9
    "u1@N01\t100_abc_o.jpg\t9\t(0, 2)\tf",              # 11: 5 fields
    row("u1@N01", "x9", "(0, 2)", "f"),                 # 12: face_id not a number
    row("", 10, "(0, 2)", "f"),                         # 13: no user_id
    row("u1@N01", 11, "(60, 100)", "f") + "\r",         # 14: CRLF line ending
    row("u1@N01", 12, "(15, 20)", "m") + "\t\t",        # 15: trailing tabs
]


def read_quirky(tmp_path, policy="strict", dedup=False, layout="aligned"):
    root = write_adience(str(tmp_path), {2: QUIRKY}, layout=layout)
    with open(os.path.join(root, "fold_2_data.txt"), "ab") as f:
        f.write(b"u1@N01\t100_abc_o.jpg\t13\t(0, 2)\t\xff\xfem\t1\t2\t3\t4\t5\t6\t7\n\n")  # 16: not UTF-8
    return adience.read(root, layout, policy, dedup)


def test_fold_rows_and_every_quirk(tmp_path):
    rows = read_quirky(tmp_path)
    faces = {f.source: f for f in rows.faces}
    skips = {s.source: s for s in rows.skips}
    assert rows.num_read == 15  # Header and blank last lines are not rows.
    unknown = (-1, -1)
    assert (faces["fold_2_data.txt:2"].age, faces["fold_2_data.txt:2"].gender) == ((25, 32), 1)
    assert (faces["fold_2_data.txt:3"].age, faces["fold_2_data.txt:3"].gender) == (unknown, 0)
    assert (faces["fold_2_data.txt:4"].age, faces["fold_2_data.txt:4"].gender) == (unknown, 1)  # Strict: noise.
    assert (faces["fold_2_data.txt:5"].age, faces["fold_2_data.txt:5"].gender) == (unknown, 0)
    assert (faces["fold_2_data.txt:6"].age, faces["fold_2_data.txt:6"].gender) == ((8, 12), -1)
    assert (faces["fold_2_data.txt:7"].age, faces["fold_2_data.txt:7"].gender) == ((8, 12), -1)
    assert faces["fold_2_data.txt:9"] == Face(
        2, "fold_2_data.txt:9", "aligned/u1@N01/landmark_aligned_face.8.100_abc_o.jpg", "u1@N01", (48, 53), 0)
    assert faces["fold_2_data.txt:10"].path == faces["fold_2_data.txt:9"].path  # Kept by default.
    assert faces["fold_2_data.txt:14"].age == (60, 100)
    assert faces["fold_2_data.txt:15"].age == (15, 20)
    assert all(f.race == labels.UNKNOWN for f in rows.faces) and rows.race_classes == ()
    assert {k: s.reason for k, s in skips.items()} == {
        "fold_2_data.txt:8": "unknown_labels",
        "fold_2_data.txt:11": "malformed_row",
        "fold_2_data.txt:12": "malformed_row",
        "fold_2_data.txt:13": "malformed_row",
        "fold_2_data.txt:16": "bad_encoding",
    }
    assert "got 5" in skips["fold_2_data.txt:11"].detail
    assert "face_id" in skips["fold_2_data.txt:12"].detail
    assert skips["fold_2_data.txt:8"].detail == "age='None' gender='u'"
    assert all(s.fold == 2 for s in rows.skips)


def test_nearest_policy_labels_the_noisy_rows(tmp_path):
    faces = {f.source: f for f in read_quirky(tmp_path, policy="nearest").faces}
    assert faces["fold_2_data.txt:4"].age == (35, 35)  # "35": years; Adience's bins put it in (25, 32).
    assert faces["fold_2_data.txt:5"].age == (27, 32)  # Off-grid, kept as it is.
    assert faces["fold_2_data.txt:3"].age == (-1, -1)  # "None" stays unknown.


def test_dedup_drops_exact_duplicates_and_says_so(tmp_path):
    rows = read_quirky(tmp_path, dedup=True)
    duplicates = [s for s in rows.skips if s.reason == "duplicate_row"]
    assert [s.source for s in duplicates] == ["fold_2_data.txt:10"]
    assert duplicates[0].path.endswith("landmark_aligned_face.8.100_abc_o.jpg")


def test_coarse_layout_paths(tmp_path):
    rows = read_quirky(tmp_path, layout="faces")
    assert rows.faces[0].path == "faces/u1@N01/coarse_tilt_aligned_face.1.100_abc_o.jpg"


def test_a_folder_without_fold_files_is_not_adience(tmp_path):
    write_file(str(tmp_path / "x" / "a.jpg"), b"")
    with pytest.raises(DatasetError, match="not an Adience folder.*--dataset=utkface"):
        adience.read(str(tmp_path / "x"))


def test_a_missing_fold_file_is_named(small_adience):
    os.remove(os.path.join(small_adience, "fold_3_data.txt"))
    with pytest.raises(DatasetError, match="missing fold file\\(s\\) fold_3_data.txt"):
        adience.read(small_adience)


def test_a_wrong_header_is_shown(small_adience):
    path = os.path.join(small_adience, "fold_1_data.txt")
    write_file(path, "user,original_image,face_id\n")
    with pytest.raises(DatasetError, match="fold_1_data.txt: the first line is not the Adience header"):
        adience.read(small_adience)


def test_a_missing_image_folder_suggests_the_other_layout(tmp_path):
    root = write_adience(str(tmp_path), {0: [row("u@N0", 1, "(0, 2)", "m")]}, layout="faces")
    with pytest.raises(DatasetError, match="no aligned/ folder.*--image_layout=faces"):
        adience.read(root, "aligned")


def test_a_missing_data_dir(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        adience.read(str(tmp_path / "nope"))


def test_header_only_fold_files_read_as_no_rows(tmp_path):
    rows = adience.read(write_adience(str(tmp_path), {}))
    assert rows.faces == [] and rows.skips == []


def test_skip_refuses_an_unknown_reason():
    with pytest.raises(ValueError):
        Skip(0, "x", "y", "bad_luck", "")
    assert HEADER_LINE.count("\t") == 11
