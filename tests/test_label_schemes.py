"""Label schemes end to end: an IMFDB-style CSV with three age groups, the synthetic
UTKFace sample with all four heads through training, export and every prediction path,
and shard sets of the old schema."""

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import tiny, with_data
from datasets import read_all
from face_photos import NO_REAL_FACES, have_real_faces, real_faces
from input_pipeline import labels, schema
from input_pipeline.config import BuildConfig
from input_pipeline.reader.manifest import ShardsError, load_manifest
from input_pipeline.sources import imfdb_sample, sample
from input_pipeline.writer import build
from processes import ROOT
from serving import report, tflite, web
from serving.predictor import Predictor
from training.loop import train_and_evaluate

ALL_HEADS = ("age", "gender", "race", "age_years")


@pytest.fixture(scope="module")
def imfdb_shards(tmp_path_factory):
    """An IMFDB-style sample (ID,Class; PNG, BMP and grayscale images of odd sizes) built with --age_bins=three."""
    root = tmp_path_factory.mktemp("imfdb")
    sample.generate(str(root / "imfdb_sample"), sample.SampleConfig(num_faces=60, image_size=48, seed=1), 1, "imfdb")
    shards = str(root / "shards")
    build.build(BuildConfig(dataset="csv", data_dir=str(root / "imfdb_sample" / imfdb_sample.IMAGES),
                            csv_file=str(root / "imfdb_sample" / imfdb_sample.CSV), csv_columns="path=ID,age=Class",
                            age_bins="three", output_dir=shards, image_size=32, num_shards=1, num_workers=1),
                synthetic=True)
    return root, shards


def test_an_imfdb_style_csv_builds_and_trains_with_three_groups(imfdb_shards, tmp_path):
    root, shards = imfdb_shards
    marker = json.loads((root / "imfdb_sample" / sample.MARKER).read_text())
    manifest = load_manifest(shards)
    # Every image is kept: the PNG, BMP and grayscale ones are converted, and counted.
    assert manifest["num_examples"] == 60 and manifest["skipped"]["total"] == 0
    converted = manifest["converted_to_jpeg"]["by_kind"]
    assert converted.get("PNG", 0) == marker["planted"]["png"] + marker["planted"]["gray_png"]
    assert converted.get("BMP", 0) == marker["planted"]["bmp"]
    assert converted.get("JPEG L", 0) == marker["planted"]["gray_jpeg"]
    assert set(manifest["folds"][0]["age_counts"]) <= {"13-30", "31-50", "51-120", "unknown"}
    configs = tiny(shards, tmp_path / "run", train_steps=3, class_weights="balanced", histogram_every=0)
    results = train_and_evaluate(*with_data(configs, heads=("age",), age_bins="three", val_fraction=0.0))
    figures = results["single_crop"]["age"]
    assert list(figures["per_class_accuracy"]) == ["young", "middle", "old"]
    assert len(figures["confusion_matrix"]) == 3 and 0 <= figures["ece"] <= 1
    assert results["label_counts"]["test"]["age"]["unknown"] == 0
    assert (tmp_path / "run" / "confusion_age_single_crop.png").is_file()
    assert (tmp_path / "run" / "reliability_age_over_sampled.png").is_file()
    exported = json.loads((tmp_path / "run" / "export" / "metadata.json").read_text())
    assert exported["class_names"]["age"] == ["young", "middle", "old"] and not exported["age_years"]


@pytest.fixture(scope="module")
def utk_export(tmp_path_factory):
    """(shards, metrics) of a tiny model with all four heads on the synthetic UTKFace sample."""
    root = tmp_path_factory.mktemp("utk")
    sample.generate(str(root / "utk"), sample.SampleConfig(num_faces=80, image_size=48, seed=2), 1, "utkface")
    shards = str(root / "shards")
    build.build(BuildConfig(dataset="utkface", data_dir=str(root / "utk"), output_dir=shards, image_size=32,
                            num_shards=1, num_workers=1), synthetic=True)
    configs = tiny(shards, root / "run", train_steps=3, histogram_every=0)
    return shards, train_and_evaluate(*with_data(configs, heads=ALL_HEADS, age_bins="utk12", val_fraction=0.2))


def test_all_four_heads_train_and_report_every_figure(utk_export):
    shards, results = utk_export
    assert results["heads"] == list(ALL_HEADS)
    for crop in ("single_crop", "over_sampled"):
        figures = results[crop]
        assert set(figures) == set(ALL_HEADS)
        assert len(figures["age"]["confusion_matrix"]) == 12 and "one_off_accuracy" in figures["age"]
        assert list(figures["race"]["per_class_accuracy"]) == list(labels.UTKFACE_RACES)
        years = figures["age_years"]
        assert years["mae"] > 0 and 0 <= years["within_5"] <= 1 and "bin_accuracy" in years
        for head in ALL_HEADS:
            assert set(figures[head]["fairness"]) == {"gender", "race"}
        assert "ece" in figures["gender"] and "ece" not in years
    assert results["num_parameters"] > 0 and results["train_seconds"] > 0
    assert results["label_counts"]["train"]["age_years"]["unknown"] == 0  # UTKFace gives every age in years.


def test_export_and_every_prediction_path_show_every_head(utk_export, tmp_path):
    shards, results = utk_export
    export_dir = results["export_dir"]
    predictor = Predictor(export_dir, detector=None)
    face = np.full((40, 40, 3), 120, np.uint8)
    record = predictor.predict(face)[0]
    assert set(ALL_HEADS) <= set(record)
    assert list(record["race"]["probabilities"]) == list(labels.UTKFACE_RACES)
    years = record["age_years"]["years"]
    assert 0 <= years <= 100 and record["age_years"]["bin"] == labels.SCHEMES["utk12"].names[
        labels.SCHEMES["utk12"].bin_of(round(years), round(years), "nearest")]
    columns = report.columns(predictor.heads)
    assert columns[-2:] == ["age_years", "age_years_bin"] and "next_race" in columns
    path = tmp_path / "face.png"
    from PIL import Image
    Image.fromarray(face).save(path)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "predict.py"), f"--model={export_dir}",
                             "--no_detect", "--format=csv", str(path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    header, row = csv.reader(io.StringIO(result.stdout))
    assert header == columns
    assert row[columns.index("age_years")] == str(years)  # The same age through the script.


@pytest.mark.skipif(not have_real_faces(), reason=NO_REAL_FACES)
def test_real_faces_keep_years_gender_and_race_and_train_every_head(tmp_path):
    """Real UTKFace crops through a CSV with a race column: every face's years, gender and
    race come back from the shards as written, the four heads train, and a real photo gets
    every head, race by the CSV's names."""
    rows = real_faces(40)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,age,gender,race\n" + "".join(f"{p},{a},{g},{r}\n" for p, a, g, r in rows))
    shards = str(tmp_path / "shards")
    manifest = build.build(BuildConfig(dataset="csv", data_dir=str(tmp_path), csv_file=str(csv_file),
                                       output_dir=shards, image_size=32, num_shards=1, num_workers=1))
    races = manifest["race_classes"]
    assert races == sorted({race for *_, race in rows})
    stored = {}
    for record in read_all(shards, manifest):
        name = os.path.basename(record[schema.FILENAME].numpy().decode())
        stored[name] = tuple(int(record[key]) for key in (schema.AGE_LOW, schema.AGE_HIGH, schema.GENDER, schema.RACE))
    assert stored == {os.path.basename(p): (a, a, "mf".index(g), races.index(r)) for p, a, g, r in rows}
    configs = tiny(shards, tmp_path / "run", train_steps=3, histogram_every=0)
    results = train_and_evaluate(*with_data(configs, heads=ALL_HEADS, age_bins="utk12", val_fraction=0.0))
    assert all(results["label_counts"]["train"][head]["unknown"] == 0 for head in ALL_HEADS)
    record = Predictor(results["export_dir"], detector=None).predict(rows[0][0])[0]
    assert list(record["race"]["probabilities"]) == races and 0 <= record["age_years"]["years"] <= 100


def test_old_schema_shards_are_refused_with_the_command_that_rebuilds_them(small_shards, tmp_path):
    path = os.path.join(small_shards, "manifest.json")
    manifest = json.load(open(path))
    del manifest["schema_version"]
    json.dump(manifest, open(path, "w"))
    with pytest.raises(ShardsError, match=r"shard schema 1.*python build_input.py --overwrite "
                                          rf"--output_dir={small_shards} --data_dir="):
        load_manifest(small_shards)


def test_a_head_the_shards_cannot_train_is_refused(small_shards, tmp_path):
    for heads, message in ((("race",), "no race labels"), (("age_years",), "no exact ages")):
        with pytest.raises(ShardsError, match=message):
            train_and_evaluate(*with_data(tiny(small_shards, tmp_path / "x"), heads=heads))


def test_the_page_and_tflite_carry_every_head(utk_export):
    shards, results = utk_export
    predictor = Predictor(results["export_dir"], detector=None)
    app = web.make_app(predictor, max_upload_mb=1, model_name="utk")
    out = io.BytesIO()
    from PIL import Image
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(out, format="PNG")
    page = app.test_client().post("/", data={"photo": (io.BytesIO(out.getvalue()), "face.png")},
                                  content_type="multipart/form-data")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for column in ("<th>race</th>", "<th>age years</th>", "<th>age years bin</th>"):
        assert column in text
    api = app.test_client().post("/api/predict", data=out.getvalue(), content_type="image/png")
    assert set(ALL_HEADS) <= set(api.get_json()["faces"][0])
    tflite_model, names = tflite.convert(results["export_dir"])
    assert "age_years_expected" in names and "race_probabilities" in names
    agreement = tflite.agreement(results["export_dir"], tflite_model, names, list(tflite.fold_faces(shards, 0))[:4])
    assert set(agreement) == {"age", "age_years", "age_years_expected", "gender", "race"}
    assert all(same == total == 4 for same, total in agreement.values())


def test_cross_validation_compares_one_network_with_one_per_head(utk_export, tmp_path):
    shards, _ = utk_export
    cv_dir = tmp_path / "cv"
    command = [sys.executable, os.path.join(ROOT, "scripts", "cross_validate.py"), f"--shards_dir={shards}",
               f"--cv_dir={cv_dir}", "--folds=0", "--heads=gender,age_years", "--compare_heads", "--image_size=24",
               "--batch_size=4", "--train_steps=2", "--eval_every=2", "--checkpoint_every=2", "--log_every=1",
               "--val_fraction=0.2", "--shuffle_buffer=16", "--mixed_precision=off", "--noexport",
               "--histogram_every=0"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((cv_dir / "results.json").read_text())["heads_comparison"]
    assert [r["network"] for r in rows] == ["one for gender+age_years", "one per head (2 networks)"]
    joint, separate = rows
    assert set(joint["figures"]) == {"gender", "age_years"} and separate["parameters"] > joint["parameters"]
    assert all(r["train_seconds"] > 0 for r in rows)
    assert (cv_dir / "only_gender" / "fold_0" / "metrics.json").is_file()
    assert "| one per head (2 networks) |" in (cv_dir / "results.md").read_text()
    assert "| age_years | mae | over_sampled |" in (cv_dir / "results.md").read_text()
    # Each head's figure is the headline one (metrics.headline, single crop), as selection's.
    fold = json.loads((cv_dir / "fold_0" / "metrics.json").read_text())["single_crop"]
    assert joint["figures"]["gender"] == pytest.approx(100 * fold["gender"]["accuracy"])
    assert joint["figures"]["age_years"] == pytest.approx(fold["age_years"]["mae"])
