"""experiments/degradations.py and the robustness study (scripts/robustness.py)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiments import degradations, robustness
from face_photos import drawn_face
from processes import ROOT


@pytest.mark.parametrize("family", list(degradations.FAMILIES))
def test_severity_0_is_the_identity_and_every_severity_is_seeded(family):
    photo = drawn_face(3, size=64)
    assert degradations.severities(family)[0] == 0
    assert np.array_equal(np.asarray(degradations.apply(photo, family, 0)), np.asarray(photo))
    for severity in degradations.severities(family)[1:]:
        out = degradations.apply(photo, family, severity, seed=7)
        again = degradations.apply(photo, family, severity, seed=7)
        assert out.mode == "RGB" and np.array_equal(np.asarray(out), np.asarray(again))
        if family != "face_share":
            assert out.size == photo.size
        else:  # The photo covers `severity` of the scene's area.
            assert abs(photo.width * photo.height / (out.width * out.height) - severity) < 0.02
        if not (family == "resolution" and severity >= max(photo.size)):  # Not enlarged: left alone.
            assert out.size != photo.size or not np.array_equal(np.asarray(out), np.asarray(photo)), (family, severity)


@pytest.mark.parametrize("family,severity", [("face_share", 0.25), ("face_share", 0.01), ("face_share", 0),
                                             ("resolution", 32), ("filter", "sepia")])
def test_placement_says_where_the_photo_is_in_the_degraded_picture(family, severity):
    photo = drawn_face(2, size=60)
    out = degradations.apply(photo, family, severity, seed=3)
    width, height, (x, y, w, h) = degradations.placement(family, photo.size, severity)
    assert out.size == (width, height) and (w, h) == photo.size
    if family == "face_share":
        assert np.array_equal(np.asarray(out.crop((x, y, x + w, y + h))), np.asarray(photo))


def test_a_face_share_scene_is_capped_and_the_photo_shrunk_to_fit():
    photo = drawn_face(2, size=500)
    out = degradations.apply(photo, "face_share", 0.01, seed=3)
    width, height, (x, y, w, h) = degradations.placement("face_share", photo.size, 0.01)
    assert out.size == (width, height) and max(out.size) <= degradations.MAX_SCENE_SIDE
    assert abs(w * h / (width * height) - 0.01) < 0.001 and w < 500


def test_a_face_found_outside_the_pasted_photo_is_not_counted():
    """In face_share, the first face of a scene is not necessarily the photo's: a detection
    in the background would have been scored against the photo's labels."""
    from serving.predictor import Result

    photos = [robustness.Photo(f"p{i}.jpg", np.zeros((40, 40, 3), np.uint8), ((25, 32), 0, "")) for i in range(2)]

    class Detecting:  # Answers as a Predictor with a detector would: a box per face, largest first.
        def predict_many(self, items, workers):
            for name, pixels in items:
                assert pixels.shape == (80, 80, 3)  # A share of 0.25: the scene is twice the side.
                background = {"box": [0, 0, 30, 30], "status": "ok"}
                inside = {"box": [22, 22, 36, 36], "status": "ok"}
                yield Result(name, [background, inside] if name == "p0.jpg" else [background], "", None)

    faces, areas = robustness.predict(Detecting(), photos, "face_share", 0.25, seed=0)
    assert list(faces) == ["p0.jpg"] and faces["p0.jpg"]["box"] == [22, 22, 36, 36]
    assert areas == {"p0.jpg": 36 * 36 / (80 * 80)}


def test_a_figure_over_too_few_faces_is_left_out_and_the_count_is_shown():
    """face_share on the demo found 2 of 20 faces at one share and printed age_exact 100.0."""
    from input_pipeline import labels
    from serving import report

    heads = report.Heads({"gender": ["m", "f"]}, None)
    photos = [robustness.Photo(f"p{i}.jpg", np.zeros((8, 8, 3), np.uint8), ((30, 30), i % 2, ""))
              for i in range(robustness.MIN_SCORED + 1)]
    faces = {p.name: report.record(p.name, 0, (0, 0, 8, 8), {"gender": np.array([0.9, 0.1])}, heads)
             for p in photos}
    few = dict(list(faces.items())[:robustness.MIN_SCORED - 1])
    row = robustness.row_of("face_share", 0.25, (few, {}), faces, photos, heads, labels.ADIENCE)
    assert row["scored"] == robustness.MIN_SCORED - 1 and row["gender_accuracy"] is None
    row = robustness.row_of("face_share", 0.25, (faces, {}), faces, photos, heads, labels.ADIENCE)
    assert row["scored"] == len(photos) and row["gender_accuracy"] == (len(photos) + 1) // 2 / len(photos)
    assert row["changed"] == 0.0
    moved = {**faces, "p0.jpg": report.record("p0.jpg", 0, (0, 0, 8, 8), {"gender": np.array([0.2, 0.8])}, heads)}
    row = robustness.row_of("face_share", 0.25, (moved, {}), faces, photos, heads, labels.ADIENCE)
    assert row["changed"] == 1 / len(photos)  # p0 answers f, not m, against the same photo's clean record.


def test_limits_say_too_few_faces_and_an_empty_family_draws_no_plot(tmp_path):
    from experiments import robustness_report

    rows = [{"family": "jpeg", "severity": s, "photos": 12, "scored": 0, "age_exact": None}
            for s in ("none", 95, 75)]
    rows += [{"family": "resolution", "severity": s, "photos": 12, "scored": 12, "age_exact": v}
             for s, v in (("none", 0.5), (128, 0.49), (96, None), (64, 0.5))]
    assert robustness.limits(rows)["age_exact"] == {"jpeg": "too few faces", "resolution": 128}  # No claim past 96.
    text = robustness_report.write(str(tmp_path), rows, "hand-made rows")
    assert "| age_exact | 128 | too few faces |" in text
    assert not (tmp_path / "robustness_jpeg.png").exists() and (tmp_path / "robustness_resolution.png").is_file()


def test_an_age_years_model_has_no_changed_share_but_its_shift():
    from input_pipeline import labels
    from serving import report

    heads = report.Heads({}, labels.ADIENCE)
    photos = [robustness.Photo(f"p{i}.jpg", np.zeros((8, 8, 3), np.uint8), ((30, 30), -1, "")) for i in range(12)]
    clean = {p.name: report.record(p.name, 0, (0, 0, 8, 8), {"age_years": 30.0}, heads) for p in photos}
    older = {p.name: report.record(p.name, 0, (0, 0, 8, 8), {"age_years": 60.0}, heads) for p in photos}
    row = robustness.row_of("blur", 4, (older, {}), clean, photos, heads, labels.ADIENCE)
    assert row["changed"] is None and row["age_years_shift_years"] == 30.0 and row["age_years_mae"] == 30.0


def test_harsher_severities_change_the_photo_more():
    photo = np.asarray(drawn_face(4, size=96), dtype=np.float32)
    for family in ("resolution", "jpeg", "blur", "noise", "contrast"):
        errors = [np.abs(np.asarray(degradations.apply(Image.fromarray(photo.astype(np.uint8)), family, s),
                                    np.float32) - photo).mean() for s in degradations.severities(family)[1:]]
        assert errors[-1] > errors[0], (family, errors)


def test_the_study_writes_its_table_plots_and_limits(exported_model, small_shards, tmp_path):
    out = tmp_path / "study"
    command = [sys.executable, os.path.join(ROOT, "scripts", "robustness.py"), f"--model={exported_model}",
               f"--shards_dir={small_shards}", "--test_fold=0", "--families=resolution,jpeg,flip,filter",
               "--min_confidence=0.9", f"--output_dir={out}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "robustness.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["severity"] for r in rows if r["family"] == "jpeg"] == ["none", "95", "75", "50", "30", "15", "5"]
    first = rows[0]
    assert first["family"] == "resolution" and first["found"] == "" and "face_area" not in first  # No detection.
    assert first["age_shift_bins"] == "0.0"
    assert {"unsure", "age_unsure", "gender_unsure", "age_exact", "age_one_off", "gender_accuracy"} <= set(first)
    for r in rows:  # A face is unsure when any head is; the photos as they are change no answer.
        assert float(r["unsure"]) >= max(float(r["age_unsure"]), float(r["gender_unsure"]))
        assert r["severity"] != "none" or float(r["changed"]) == 0.0
        assert int(r["scored"]) == int(first["scored"]) > 0 and int(r["scored"]) <= int(r["photos"])
    assert all(0.0 <= float(r["changed"]) <= 1.0 for r in rows)
    # Severity 0 is the same photos in every family: the same figures.
    clean = {r["family"]: (r["age_exact"], r["gender_accuracy"], r["unsure"]) for r in rows
             if r["severity"] == "none"}
    assert len(set(clean.values())) == 1
    for family in ("resolution", "jpeg", "flip", "filter"):
        assert (out / f"robustness_{family}.png").is_file()
    text = (out / "robustness.md").read_text()
    assert "## Limits" in text and "| age_exact |" in text and text in result.stdout


def test_a_bad_family_or_no_photos_is_a_usage_error(exported_model):
    script = os.path.join(ROOT, "scripts", "robustness.py")
    for args, message in ((["--families=sharpen", "--shards_dir=x"], "unknown ['sharpen']"),
                          ([], "either --shards_dir")):
        result = subprocess.run([sys.executable, script, f"--model={exported_model}", *args], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-1000:]
