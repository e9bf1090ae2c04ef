import json
import os
import subprocess
import sys

import numpy as np
import pytest

from input_pipeline import labels
from input_pipeline.sources import adience, sample, synthetic_face
from input_pipeline.sources.rows import DatasetError
from input_pipeline.writer import encode as images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = sample.SampleConfig(num_faces=80, image_size=48, seed=3)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("s") / "adience_sample")
    sample.generate(root, SMALL, num_workers=1)
    return root


def tree(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                files[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return files


def test_the_layout_is_adiences(sample_dir):
    marker = json.load(open(os.path.join(sample_dir, sample.MARKER)))
    assert marker["synthetic"] is True and sample.is_sample(sample_dir)
    rows = 0
    for k, name in enumerate(adience.FOLD_FILES):
        text = open(os.path.join(sample_dir, name)).read()
        lines = text.split("\n")
        assert lines[0].split("\t") == list(adience.HEADER)
        body = [line for line in lines[1:] if line]
        assert all(len(line.split("\t")) == 12 for line in body)
        assert text.endswith("\n\n") == (k % 2 == 1)  # Blank last line in some files, as in the real ones.
        rows += len(body)
    assert rows == marker["num_rows"] == SMALL.num_faces + marker["planted"]["duplicate"]
    read = adience.read(sample_dir)
    assert read.num_read == rows
    for face in read.faces[:5]:
        for layout in adience.LAYOUTS:
            user, image = face.path.split("/")[1:]
            face_id, original = image.split(".", 2)[1:]
            assert os.path.isfile(os.path.join(sample_dir, adience.image_path(layout, user, face_id, original)))


def test_the_real_quirks_are_planted(sample_dir):
    ages, genders, lines = set(), set(), []
    for name in adience.FOLD_FILES:
        body = open(os.path.join(sample_dir, name)).read().split("\n")[1:]
        lines += [line for line in body if line]
    for line in lines:
        fields = line.split("\t")
        ages.add(fields[3])
        genders.add(fields[4])
    assert "None" in ages and genders == {"m", "f", "u", ""}
    assert ages & set(sample.BARE_NUMBERS) and ages & set(sample.OFF_GRID)
    assert len(lines) > len(set(lines))  # Exact duplicate rows.
    results = [images.encode_face(os.path.join(sample_dir, f.path), 0, 95)
               for f in adience.read(sample_dir).faces]
    reasons = sorted(r.reason for r in results if isinstance(r, images.Failed))
    assert reasons == ["missing_image", "truncated_image"]


def test_folds_are_subject_disjoint_and_balanced(sample_dir):
    faces = adience.read(sample_dir).faces
    folds_of = {}
    for face in faces:
        folds_of.setdefault(face.subject_id, set()).add(face.fold)
    assert all(len(folds) == 1 for folds in folds_of.values())
    sizes = np.bincount([f.fold for f in faces], minlength=5)
    assert sizes.min() > 0


def test_generation_is_deterministic_whatever_the_workers(sample_dir, tmp_path):
    again = str(tmp_path / "again")
    sample.generate(again, SMALL, num_workers=2)
    assert tree(again) == tree(sample_dir)


def test_ensure_reuses_a_complete_sample_and_redoes_a_changed_one(tmp_path):
    root = str(tmp_path / "s")
    cfg = sample.SampleConfig(num_faces=50, image_size=32)
    assert sample.ensure(root, cfg, num_workers=1) is True
    assert sample.ensure(root, cfg, num_workers=1) is False
    assert sample.ensure(root, sample.SampleConfig(num_faces=50, image_size=32, seed=9), num_workers=1) is True
    assert json.load(open(os.path.join(root, sample.MARKER)))["config"]["seed"] == 9
    assert sorted(os.listdir(tmp_path)) == ["s"]  # No staging folder left.


def test_a_folder_that_is_not_a_sample_is_never_replaced(tmp_path):
    precious = tmp_path / "my_adience"
    precious.mkdir()
    (precious / "fold_0_data.txt").write_text("real data")
    with pytest.raises(DatasetError, match="is not a synthetic sample"):
        sample.ensure(str(precious), sample.SampleConfig(num_faces=50, image_size=32), num_workers=1)
    assert (precious / "fold_0_data.txt").read_text() == "real data"
    assert sorted(os.listdir(tmp_path)) == ["my_adience"]


def render(group, male, seed=7):
    rng = np.random.default_rng(seed)
    lo, hi = labels.ADIENCE.ranges[group]
    years = (lo + min(hi, 80)) / 2
    person = synthetic_face.make_person(np.random.default_rng(1), group, male, years)
    return np.asarray(synthetic_face.draw_photo(rng, person, years, 96)[0], dtype=np.float32)


def test_age_and_gender_change_the_face():
    """Same subject traits and photo randomness, other label: the face itself differs."""
    baseline = render(4, True)
    noise = np.abs(render(4, True, seed=8) - baseline).mean()  # Another photo of the same person.
    assert np.abs(render(4, False) - baseline).mean() > 0.4 * noise
    assert np.abs(render(7, True) - baseline).mean() > 0.4 * noise
    assert np.abs(render(0, True) - baseline).mean() > 0.4 * noise


def test_build_input_without_flags_uses_the_sample(tmp_path):
    out = tmp_path / "shards"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "build_input.py"), f"--sample_dir={tmp_path / 'sample'}",
         f"--output_dir={out}", "--sample_faces=60", "--sample_image_size=40", "--image_size=32",
         "--num_workers=1"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC" in result.stderr and "SYNTHETIC" in result.stdout
    manifest = json.load(open(out / "manifest.json"))
    assert manifest["synthetic"] is True and manifest["image_size"] == 32
    by_reason = manifest["skipped"]["by_reason"]
    assert by_reason["missing_image"] == 1 and by_reason["truncated_image"] == 1
    assert by_reason["unknown_labels"] >= 1
    assert manifest["num_examples"] == manifest["num_rows_read"] - manifest["skipped"]["total"]
