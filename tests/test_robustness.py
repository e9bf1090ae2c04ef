"""experiments/degradations.py and the robustness study (scripts/robustness.py)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiments import degradations
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
    assert first["family"] == "resolution" and first["found"] == "" and first["age_shift_bins"] == "0.0"
    assert {"unsure", "age_exact", "age_one_off", "gender_accuracy"} <= set(first)
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
