"""experiments/ablation.py and scripts/ablate.py: each variant its own run, scored on the
test fold and on labelled photos through the Predictor, and a rerun reads it back."""

import json
import os
import subprocess
import sys

import pytest

from configs import tiny
from experiments import ablation
from face_photos import drawn_face
from input_pipeline.reader.manifest import ShardsError
from processes import ROOT


def labelled_photos(folder):
    os.makedirs(folder, exist_ok=True)
    lines = ["path,age,gender"]
    for i, seed in enumerate((1, 3, 5, 7)):
        drawn_face(seed, 200).save(os.path.join(folder, f"p{i}.jpg"))
        lines.append(f"p{i}.jpg,{10 + 20 * i},{'mf'[i % 2]}")
    with open(os.path.join(folder, "labels.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return sorted(os.path.join(folder, f"p{i}.jpg") for i in range(4)), os.path.join(folder, "labels.csv")


def test_a_variant_changes_only_its_fields():
    configs = tiny("shards", "runs/x", arch="compact", ema_decay=0.9, flip_test=True)
    data, model, train = ablation.variant_configs(configs, "no_geometry", "out")
    assert (data.scale_jitter, data.rotation, data.shift) == (0.0, 0.0, 0.0) and train.model_dir == "out/no_geometry"
    assert (model, train.ema_decay) == (configs[1], 0.9)
    data, model, train = ablation.variant_configs(configs, "levi_hassner", "out")
    assert (model.arch, model.dropout, data) == ("levi_hassner", 0.5, configs[0])
    assert ablation.variant_configs(configs, "no_flip_test", "out")[2].flip_test is False
    assert ablation.changes_nothing(configs, "no_geometry") and not ablation.changes_nothing(configs, "no_ema")
    assert not ablation.changes_nothing(configs, "recipe")
    rows = ablation.merge([{"variant": "mixup", "n": 1}, {"variant": "recipe", "n": 1}], {"variant": "mixup", "n": 2})
    assert rows == [{"variant": "recipe", "n": 1}, {"variant": "mixup", "n": 2}]
    figures = {"photos": 4, "with_face": 3, "gender": {"accuracy": 0.5},
               "by_age": {"adults": {"gender": {"accuracy": 0.75}, "age_years": {"mae": 6.5}}}}
    line = ablation.table([{"variant": "x", "what": "|a| b", "train_minutes": 2.0, "test": {}, "photos": figures}])
    assert line.splitlines()[2] == "| x | \\|a\\| b | 2.0 |  |  | 75.0% | 50.0% | 75.0% | 6.50 |  |  |"


def test_the_command_scores_each_variant_on_the_photos_and_reads_a_finished_run_back(small_shards, tmp_path):
    photos, labels_csv = labelled_photos(str(tmp_path / "photos"))
    out = tmp_path / "ablation"
    command = [sys.executable, "scripts/ablate.py", f"--shards_dir={small_shards}", "--arch=compact",
               "--image_size=24", "--batch_size=4", "--train_steps=2", "--log_every=1", "--eval_every=2",
               "--checkpoint_every=2", "--histogram_every=0", "--mixed_precision=off", "--ema_decay=0.9",
               "--heads=age,gender", "--variants=recipe,no_ema", f"--photos={tmp_path / 'photos'}",
               f"--labels={labels_csv}", f"--output_dir={out}", "--adult_age=30"]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = json.loads((out / "ablation.json").read_text())
    assert [r["variant"] for r in rows] == ["recipe", "no_ema"]
    for row in rows:
        assert row["photos"]["photos"] == 4 and 0 <= row["photos"]["with_face"] <= 4
        assert set(row["photos"]["by_age"]) == {"adult_age", "adults", "children"}
        assert row["photos"]["by_age"]["children"]["photos"] == 1  # Age 10; 30, 50, 70 are adults.
        assert "gender" in row["test"] and (out / row["variant"] / "photo_predictions.csv").exists()
    assert "| recipe | the configuration as given |" in (out / "ablation.md").read_text()
    assert json.loads((out / "no_ema" / "metrics.json").read_text())["weights"] == "as trained"
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "resumed from" in again.stderr, again.stderr[-3000:]
    other = subprocess.run([*command[:-4], "--variants=recipe", "--label_smoothing=0.2",
                            f"--photos={tmp_path / 'photos'}", f"--labels={labels_csv}", f"--output_dir={out}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert other.returncode != 0 and "label_smoothing" in other.stderr, other.stderr[-2000:]
    # The rows of variants not run again are kept.
    assert [r["variant"] for r in json.loads((out / "ablation.json").read_text())] == ["recipe", "no_ema"]
    noop = subprocess.run([*command[:-4], "--variants=no_geometry", f"--photos={tmp_path / 'photos'}",
                           f"--labels={labels_csv}", f"--output_dir={out}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert noop.returncode != 0 and "no_geometry change nothing" in noop.stderr, noop.stderr[-2000:]


def test_without_variants_named_every_one_that_changes_something_runs(small_shards):
    configs = tiny(small_shards, task="age_gender", arch="compact")  # No mixup, no age balance, no age_years.
    everything = ablation.selected(configs, [], "out")
    assert "mixup" in everything and "age_balance" in everything
    assert "no_age_balance" not in everything  # Changes nothing here.
    assert "years_l1" not in everything  # Needs the age_years head.
    assert everything == [name for name in ablation.VARIANTS
                          if not ablation.changes_nothing(configs, name) and name != "years_l1"]
    assert ablation.selected(configs, ["seed", "mixup"], "out") == ["seed", "mixup"]
    with pytest.raises(ValueError, match="no_age_balance change nothing"):
        ablation.selected(configs, ["recipe", "no_age_balance"], "out")


def test_a_variant_the_heads_cannot_train_is_refused_before_any_trains(small_shards):
    configs = tiny(small_shards, task="age_gender", arch="compact")
    ablation.check(configs, ["recipe", "seed", "no_ema"], "out")
    with pytest.raises(ShardsError, match="variant years_l1: --years_l1 .* needs age_years"):
        ablation.check(configs, ["recipe", "years_l1"], "out")
