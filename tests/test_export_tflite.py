import json
import os
import subprocess
import sys

import pytest

from configs import tiny
from processes import ROOT
from serving import tflite
from training.loop import train_and_evaluate


@pytest.fixture
def exported(small_shards, tmp_path):
    metrics = train_and_evaluate(*tiny(small_shards, tmp_path / "run", task="age_gender", train_steps=3,
                                               eval_every=3, checkpoint_every=3, histogram_every=0))
    return metrics["export_dir"]


def test_tflite_agrees_with_the_saved_model(exported, small_shards):
    tflite_model, output_names = tflite.convert(exported)
    assert output_names == ["age_probabilities", "gender_probabilities"]
    faces = list(tflite.fold_faces(small_shards, 0))
    result = tflite.agreement(exported, tflite_model, output_names, faces)
    assert set(result) == {"age", "gender"}
    for same, total in result.values():
        assert total == len(faces) == 6 and same / total >= 0.99
    metadata = json.load(open(os.path.join(exported, "metadata.json")))
    assert metadata["class_names"]["gender"] == ["m", "f"] and metadata["crop_size"] == 24


def test_command_line(exported, small_shards):
    script = os.path.join(ROOT, "scripts", "export_tflite.py")
    result = subprocess.run([sys.executable, script, f"--saved_model={exported}", f"--shards_dir={small_shards}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(os.path.join(exported, "model.tflite"))
    sidecar = json.load(open(os.path.join(exported, "model.tflite.json")))
    assert sidecar["outputs"] == {"output_0": "age_probabilities", "output_1": "gender_probabilities"}
    assert "age: same predicted class for 6/6 faces of fold 0 (100.0%)" in result.stdout


def test_a_mixed_precision_model_exports_in_float32(small_shards, tmp_path):
    """Trained in bfloat16, exported in float32: TFLite has no bfloat16 convolutions."""
    metrics = train_and_evaluate(*tiny(small_shards, tmp_path / "run", train_steps=2, histogram_every=0,
                                               mixed_precision="mixed_bfloat16"))
    tflite_model, names = tflite.convert(metrics["export_dir"])
    faces = list(tflite.fold_faces(small_shards, 0))
    same, total = tflite.agreement(metrics["export_dir"], tflite_model, names, faces)["age"]
    assert same == total == 6
