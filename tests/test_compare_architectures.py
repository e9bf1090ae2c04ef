"""training/architecture_cost.py, architecture_comparison.py and scripts/compare_architectures.py."""

import csv
import os
import subprocess
import sys

import keras

from processes import ROOT
from training import architecture_comparison, architecture_cost


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


def test_cheapest_reaching_a_target():
    rows = [{"arch": "a", "mmac_per_image": 500.0, "accuracy": 0.7}, {"arch": "b", "mmac_per_image": 50.0,
                                                                       "accuracy": 0.6},
            {"arch": "c", "mmac_per_image": 5.0, "accuracy": 0.4}]
    assert architecture_comparison.cheapest(rows, 0.55)["arch"] == "b"
    assert architecture_comparison.cheapest(rows, 0.9) is None


def test_two_architectures_are_compared_in_one_run(small_shards, tmp_path):
    out = tmp_path / "compare"
    command = [sys.executable, os.path.join(ROOT, "scripts", "compare_architectures.py"),
               f"--shards_dir={small_shards}", f"--output_dir={out}", "--archs=levi_hassner,mobilenetv2",
               "--weights=none", "--image_size=32", "--batch_size=4", "--train_steps=2", "--eval_every=2",
               "--checkpoint_every=2", "--log_every=1", "--val_fraction=0.3", "--shuffle_buffer=16",
               "--mixed_precision=off", "--noexport", "--histogram_every=0", "--timed_steps=2",
               "--target_accuracy=0.0"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["arch"] for r in rows] == ["levi_hassner", "mobilenetv2"]
    for r in rows:
        assert int(r["parameters"]) > 0 and float(r["mmac_per_image"]) > 0 and float(r["train_images_per_s"]) > 0
        assert float(r["latency_ms_batch_1"]) > 0 and float(r["latency_ms_batch_64"]) > 0
        assert r["train_steps"] == "2" and 0 <= float(r["accuracy"]) <= 1
        assert (out / r["arch"] / "metrics.json").is_file()
    levi, mobile = rows
    assert float(levi["mmac_per_image"]) != float(mobile["mmac_per_image"])
    assert "cheapest reaching 0.0%:" in result.stdout and (out / "comparison.png").stat().st_size > 5000
    assert "| levi_hassner |" in (out / "comparison.md").read_text()
    # Run again with another budget: the finished runs are read back, with the steps they trained.
    again = subprocess.run([*command, "--train_steps=3"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and "trained before (2 steps" in again.stderr, again.stderr[-3000:]
    with open(out / "comparison.csv") as f:
        assert [r["train_steps"] for r in csv.DictReader(f)] == ["2", "2"]
