"""experiments/architecture_cost.py, architecture_comparison.py and scripts/compare_architectures.py."""

import csv
import json
import os
import subprocess
import sys

import keras

from experiments import architecture_comparison, architecture_cost
from processes import ROOT


def test_multiply_adds_by_hand_and_of_a_known_network():
    images = keras.Input((10, 10, 4))
    x = keras.layers.Conv2D(8, 3, padding="same")(images)              # 10*10 * 3*3*4 * 8 = 28,800
    x = keras.layers.DepthwiseConv2D(3, padding="valid")(x)             # 8*8 * 3*3 * 8 = 4,608
    x = keras.layers.Conv2D(6, 1, groups=2)(x)                          # 8*8 * 1*1*4 * 6 = 1,536
    x = keras.layers.GlobalAveragePooling2D()(x)
    inner = keras.Model(images, x)
    outer_in = keras.Input((10, 10, 4))
    logits = keras.layers.Dense(3)(inner(outer_in))                      # 6 * 3 = 18, through a nested model
    assert architecture_cost.multiply_adds(keras.Model(outer_in, logits)) == 28_800 + 4_608 + 1_536 + 18
    # MobileNetV2 at 224 px: the 300 M multiply-adds of its paper (Sandler et al. 2018, Table 3).
    mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    assert round(architecture_cost.multiply_adds(mobilenet) / 1e6) == 301


def test_the_cheapest_reaching_a_target_is_chosen_on_validation_never_on_the_test_fold():
    def row(arch, mmac, val_score, test_score):
        return {"arch": arch, "mmac_per_image": mmac, "val_score": val_score, "test_score": test_score,
                "parameters": 1, "train_images_per_s": 1.0, "latency_ms_batch_1": 1.0, "latency_ms_batch_64": 1.0,
                "train_steps": 1, "train_minutes": 1.0, "figures": ""}

    rows = [row("a", 500.0, 0.7, 0.5), row("b", 50.0, 0.6, 0.4),
            row("c", 5.0, 0.4, 0.9),  # Best on the test fold: not chosen.
            row("d", 1.0, None, 0.9)]  # Never validated.
    assert architecture_comparison.cheapest(rows, 0.55)["arch"] == "b"
    assert architecture_comparison.cheapest(rows, 0.9) is None
    assert "cheapest reaching a validation score of 55.0: b" in architecture_comparison.markdown(rows[:3], 0.55)


def test_two_architectures_are_compared_in_one_run(small_shards, tmp_path):
    out = tmp_path / "compare"
    command = [sys.executable, os.path.join(ROOT, "scripts", "compare_architectures.py"),
               f"--shards_dir={small_shards}", f"--output_dir={out}", "--archs=levi_hassner,mobilenetv2",
               "--weights=none", "--image_size=32", "--batch_size=4", "--train_steps=2", "--eval_every=2",
               "--checkpoint_every=2", "--log_every=1", "--val_fraction=0.3", "--shuffle_buffer=16",
               "--mixed_precision=off", "--noexport", "--histogram_every=0", "--timed_steps=2",
               "--target_score=0.0"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["arch"] for r in rows] == ["levi_hassner", "mobilenetv2"]
    for r in rows:
        assert int(r["parameters"]) > 0 and float(r["mmac_per_image"]) > 0 and float(r["train_images_per_s"]) > 0
        assert float(r["latency_ms_batch_1"]) > 0 and float(r["latency_ms_batch_64"]) > 0
        assert r["train_steps"] == "2" and 0 <= float(r["val_score"]) <= 1 and 0 <= float(r["test_score"]) <= 1
        metrics = json.loads((out / r["arch"] / "metrics.json").read_text())
        # The validation score is the one that chose the tested checkpoint; the test score is
        # the test fold's single-crop accuracy (one class head), reported beside it.
        assert float(r["val_score"]) == metrics["selection"]["score"]
        assert metrics["checkpoint"].endswith(f"best/ckpt-{metrics['selection']['step']}")
        assert float(r["test_score"]) == metrics["single_crop"]["age"]["accuracy"]
    levi, mobile = rows
    assert float(levi["mmac_per_image"]) != float(mobile["mmac_per_image"])
    assert "cheapest reaching a validation score of 0.0:" in result.stdout
    assert (out / "comparison.png").stat().st_size > 5000 and "| levi_hassner |" in (out / "comparison.md").read_text()
    one = [arg if not arg.startswith("--archs") else "--archs=levi_hassner" for arg in command]
    # The same settings: read back. Another budget: refused, naming it, not reported under the new flags.
    same = subprocess.run(one, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert same.returncode == 0 and "trained before with these settings (2 steps" in same.stderr, same.stderr[-3000:]
    other = subprocess.run([*one, "--train_steps=3"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert other.returncode == 1 and "--train_steps: 2 there, 3 now" in other.stderr and "--retrain" in other.stderr
    again = subprocess.run([*one, "--train_steps=3", "--retrain"], cwd=ROOT, capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    with open(out / "comparison.csv") as f:
        assert [r["train_steps"] for r in csv.DictReader(f)] == ["3"]
