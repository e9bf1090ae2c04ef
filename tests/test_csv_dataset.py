import pytest

from datasets import jpeg_bytes, write_file
from input_pipeline import labels
from input_pipeline.config import BuildConfig
from input_pipeline.sources import csv_file
from input_pipeline.sources.rows import DatasetError, fold_of
from input_pipeline.writer import build

CSV = """path,Age,gender,fold,subject_id
a.jpg,30,f,0,s1
b.jpg,"(25, 32)",male,1,s2
c.jpg,35,,2,s3
d.jpg,None,1,3,s4
e.jpg,,u,4,s5
f.jpg,3,M,7,s6
,30,f,0,s7
g.jpg,30,f
a.jpg,30,f,0,s1
"""


def read(tmp_path, text, policy="strict", dedup=False):
    write_file(str(tmp_path / "labels.csv"), text)
    return csv_file.read(str(tmp_path / "labels.csv"), str(tmp_path), policy, dedup)


def test_columns_labels_and_bad_rows(tmp_path):
    rows = read(tmp_path, CSV)
    faces = {f.source: f for f in rows.faces}
    assert {k: (f.path, f.fold, f.subject_id, f.age, f.gender) for k, f in faces.items()} == {
        "labels.csv:2": ("a.jpg", 0, "s1", (30, 30), 1),
        "labels.csv:3": ("b.jpg", 1, "s2", (25, 32), 0),
        "labels.csv:4": ("c.jpg", 2, "s3", (35, 35), -1),  # Years are kept whatever the policy.
        "labels.csv:5": ("d.jpg", 3, "s4", (-1, -1), 1),
        "labels.csv:10": ("a.jpg", 0, "s1", (30, 30), 1),
    }
    assert {s.source: s.reason for s in rows.skips} == {
        "labels.csv:6": "unknown_labels",
        "labels.csv:7": "malformed_row",  # fold 7.
        "labels.csv:8": "malformed_row",  # empty path.
        "labels.csv:9": "malformed_row",  # 3 fields.
    }


def test_nearest_and_dedup(tmp_path):
    rows = read(tmp_path, CSV, policy="nearest", dedup=True)
    assert {f.source: f.age for f in rows.faces}["labels.csv:4"] == (35, 35)
    assert [s.source for s in rows.skips if s.reason == "duplicate_row"] == ["labels.csv:10"]


def test_without_a_fold_column_folds_follow_the_subject(tmp_path):
    rows = read(tmp_path, "path,gender,subject_id\nx/1.jpg,f,anna\nx/2.jpg,f,anna\ny.jpg,m,\n")
    assert [f.fold for f in rows.faces] == [fold_of("anna"), fold_of("anna"), fold_of("y.jpg")]


def test_bad_bytes_are_a_row_not_a_crash(tmp_path):
    write_file(str(tmp_path / "labels.csv"), b"path,age\na.jpg,30\nb\xff.jpg,30\n")
    rows = csv_file.read(str(tmp_path / "labels.csv"), str(tmp_path))
    assert [s.reason for s in rows.skips] == ["bad_encoding"] and len(rows.faces) == 1


@pytest.mark.parametrize("header,message", [
    ("file,age", "must name a 'path' column"),
    ("path,fold", "at least one of 'age', 'gender', 'race'"),
    ("path,age,age", "named twice: age"),
])
def test_bad_headers(tmp_path, header, message):
    with pytest.raises(DatasetError, match=message):
        read(tmp_path, header + "\n")


def test_build_from_csv_with_absolute_paths(tmp_path):
    write_file(str(tmp_path / "imgs" / "a.jpg"), jpeg_bytes())
    write_file(str(tmp_path / "labels.csv"), f"path,age,gender\nimgs/a.jpg,30,f\n{tmp_path}/imgs/a.jpg,1,m\n"
                                             "imgs/missing.jpg,30,f\n")
    manifest = build.build(BuildConfig(dataset="csv", data_dir=str(tmp_path), output_dir=str(tmp_path / "o"),
                                       image_size=16, num_workers=1))
    assert manifest["num_examples"] == 2
    assert manifest["skipped"]["by_reason"] == {"missing_image": 1}


def test_the_manifest_records_the_csv_file_as_an_absolute_path(tmp_path, monkeypatch):
    """As source_dir: a model trained from another folder reads it to know its faces
    (serving/metadata.trained_on), and the rebuild command must work from anywhere."""
    write_file(str(tmp_path / "a.jpg"), jpeg_bytes())
    write_file(str(tmp_path / "faces.csv"), "path,gender\na.jpg,f\n")
    monkeypatch.chdir(tmp_path)
    manifest = build.build(BuildConfig(dataset="csv", data_dir=".", csv_file="faces.csv", output_dir="o",
                                       image_size=16, num_workers=1))
    assert manifest["flags"]["csv_file"] == str(tmp_path / "faces.csv") and manifest["source_dir"] == str(tmp_path)


def test_a_missing_csv_file_is_named(tmp_path):
    with pytest.raises(DatasetError, match="CSV file .*nope.csv does not exist"):
        csv_file.read(str(tmp_path / "nope.csv"), str(tmp_path))


def test_a_subject_in_two_folds_is_counted(tmp_path):
    write_file(str(tmp_path / "a.jpg"), jpeg_bytes())
    write_file(str(tmp_path / "labels.csv"), "path,gender,fold,subject_id\na.jpg,f,0,ann\na.jpg,f,1,ann\n")
    manifest = build.build(BuildConfig(dataset="csv", data_dir=str(tmp_path), output_dir=str(tmp_path / "o"),
                                       image_size=16, num_workers=1))
    assert manifest["subjects_in_several_folds"] == 1


def test_columns_mapped_by_flag_and_bin_names_of_the_chosen_scheme(tmp_path):
    """IMFDB's train.csv: ID,Class with YOUNG / MIDDLE / OLD."""
    text = "ID,Class\n377.jpg,MIDDLE\n17814.jpg,YOUNG\n21702.jpg,OLD\n1.jpg,ANCIENT\n"
    write_file(str(tmp_path / "train.csv"), text)
    three = labels.parse_bins("three")
    rows = csv_file.read(str(tmp_path / "train.csv"), str(tmp_path), "strict", columns=csv_file.parse_columns(
        "path=ID,age=Class"), age_bins=three)
    assert [(f.path, f.age) for f in rows.faces] == [("377.jpg", (31, 50)), ("17814.jpg", (13, 30)),
                                                     ("21702.jpg", (51, labels.MAX_YEARS))]
    assert [(s.source, s.reason) for s in rows.skips] == [("train.csv:5", "unknown_labels")]
    assert "bin name of --age_bins (young, middle, old)" in rows.skips[0].detail
    # Without the scheme the names mean nothing, and the error says how to map them.
    unmapped = csv_file.read(str(tmp_path / "train.csv"), str(tmp_path), columns={"path": "id", "age": "class"})
    assert not unmapped.faces and "bin name of --age_bins ((0, 2)," in unmapped.skips[0].detail
    with pytest.raises(DatasetError, match="--csv_columns=path=ID,age=Class"):
        csv_file.read(str(tmp_path / "train.csv"), str(tmp_path))


def test_a_race_column_with_any_names(tmp_path):
    rows = read(tmp_path, "path,race,gender\na.jpg,Latino,f\nb.jpg,East Asian,m\nc.jpg,,m\nd.jpg,Latino,\n")
    assert rows.race_classes == ("East Asian", "Latino")  # Sorted: stable whatever the row order.
    assert [(f.path, f.race) for f in rows.faces] == [("a.jpg", 1), ("b.jpg", 0), ("c.jpg", -1), ("d.jpg", 1)]


@pytest.mark.parametrize("spec,message", [
    ("path", "not <field>=<CSV column>"), ("file=ID", "not <field>=<CSV column>"), ("path=a,path=b", "mapped twice")])
def test_bad_column_maps_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        csv_file.parse_columns(spec)


def test_a_mapped_column_that_is_not_there_is_named(tmp_path):
    write_file(str(tmp_path / "train.csv"), "ID,Class\n1.jpg,YOUNG\n")
    with pytest.raises(DatasetError, match="no column 'klass'"):
        csv_file.read(str(tmp_path / "train.csv"), str(tmp_path), columns={"path": "id", "age": "klass"})


def build_actors(tmp_path, caplog, actors):
    """Builds an IMFDB-style CSV (ID,Class and, unless `actors` is None, an Actor column
    with these names, "" for none) of as many frames; returns (manifest, warnings logged, cfg)."""
    count = len(actors) if actors is not None else 10
    header = "ID,Class" if actors is None else "ID,Class,Actor"
    lines = [header] + [f"f{i}.jpg,YOUNG" + ("" if actors is None else f",{actors[i]}") for i in range(count)]
    for i in range(count):
        write_file(str(tmp_path / f"f{i}.jpg"), jpeg_bytes())
    write_file(str(tmp_path / "train.csv"), "\n".join(lines) + "\n")
    cfg = BuildConfig(dataset="csv", data_dir=str(tmp_path), csv_file=str(tmp_path / "train.csv"),
                      output_dir=str(tmp_path / "out"), age_bins="three", image_size=16, num_shards=1,
                      num_workers=1, csv_columns="path=ID,age=Class" + ("" if actors is None else ",subject_id=Actor"))
    with caplog.at_level("WARNING", logger="absl"):
        manifest = build.build(cfg)
    return manifest, caplog.text, cfg


def test_without_a_subject_column_the_build_warns_that_people_can_cross_folds(tmp_path, caplog):
    """An IMFDB-style ID,Class CSV put frames of one actor in training, validation and test."""
    from input_pipeline.writer import manifest as manifest_lib

    manifest, warnings, cfg = build_actors(tmp_path, caplog, None)
    assert "has no subject_id column" in warnings and "--csv_columns=subject_id=<column>" in warnings
    assert manifest["subject_ids"] == "per_image"
    assert "no person ids" in manifest_lib.summary(manifest, cfg.output_dir, 1.0)


def test_the_column_that_names_the_person_keeps_their_faces_in_one_fold(tmp_path, caplog):
    manifest, warnings, _ = build_actors(tmp_path, caplog, [f"actor{i % 3}" for i in range(12)])
    assert "subject_id" not in warnings and manifest["subject_ids"] == "given"
    assert manifest["subjects_in_several_folds"] == 0 and sum(f["num_subjects"] for f in manifest["folds"]) == 3


def test_faces_with_an_empty_subject_id_are_counted_and_named(tmp_path, caplog):
    manifest, warnings, _ = build_actors(tmp_path, caplog, ["", ""] + [f"actor{i % 3}" for i in range(10)])
    assert "2 of 12 faces" in warnings and "have an empty subject_id" in warnings
    assert manifest["subject_ids"] == "given" and manifest["faces_without_subject_id"] == 2
