import json
import os
import subprocess
import sys

import numpy as np
import pytest

import configs
from experiments import cross_validation, plots
from input_pipeline import labels
from processes import ROOT


def tiny(shards):
    return configs.tiny(shards, train_steps=2, log_every=1, checkpoint_every=1, histogram_every=0, export=False)


def test_finished_folds_are_skipped_and_an_interrupted_one_resumes(small_shards, tmp_path, caplog):
    data, model_cfg, train = tiny(small_shards)
    cv_dir = str(tmp_path / "cv")
    for fold in (0, 1):
        cross_validation.run_fold(data, model_cfg, train, fold, cv_dir)
    done = os.path.join(cv_dir, "fold_0", "metrics.json")
    before = os.path.getmtime(done)
    # Fold 1 "interrupted" after its checkpoints: no metrics.json yet.
    os.remove(os.path.join(cv_dir, "fold_1", "metrics.json"))
    with caplog.at_level("INFO", logger="absl"):
        metrics = {k: cross_validation.run_fold(data, model_cfg, train, k, cv_dir) for k in (0, 1)}
    assert os.path.getmtime(done) == before and "fold 0: done already" in caplog.text
    assert "fold_1/checkpoints/ckpt-2 at step 2" in caplog.text  # Resumed, not retrained.
    assert metrics[1]["test_fold"] == 1 and os.path.isfile(os.path.join(cv_dir, "fold_1", "metrics.json"))


def test_summary_table_and_figure(tmp_path):
    per_fold = {0: {("age", "exact", "over_sampled"): 40.0, ("age", "one_off", "over_sampled"): 80.0},
                1: {("age", "exact", "over_sampled"): 50.0, ("age", "one_off", "over_sampled"): 90.0}}
    rows = cross_validation.summarize(per_fold)
    exact = next(r for r in rows if r["measure"] == "exact")
    assert exact["mean"] == 45.0 and round(exact["std"], 3) == 7.071 and exact["paper"] == 50.7
    table = cross_validation.markdown(rows, [0, 1], synthetic=True)
    assert "| age | exact | over_sampled | 40.0 | 50.0 | 45.0 ± 7.1 | 50.7 |" in table and "SYNTHETIC" in table
    # One fold has no spread; Levi & Hassner's age figures are for Adience's 8 groups only.
    one = cross_validation.summarize({0: per_fold[0]}, labels.parse_bins("utk12"))
    assert all(r["std"] is None and r["paper"] is None for r in one)
    assert "| age | exact | over_sampled | 40.0 | 40.0 |  |" in cross_validation.markdown(one, [0], synthetic=True)
    matrix = [[1 if i == j else 0 for j in range(8)] for i in range(8)]
    metrics = {k: {"over_sampled": {"age": {"confusion_matrix": matrix}}} for k in (0, 1)}
    path = str(tmp_path / "results.png")
    plots.cross_validation_figure(metrics, rows, ["0", "1"], "age", [f"g{i}" for i in range(8)], path)
    assert os.path.getsize(path) > 1000
    # A fold without faces of the head has no figure: no bar, where it used to draw one at 0.
    empty = [dict(r, per_fold={**r["per_fold"], "1": None}) for r in rows]
    zero = [dict(r, per_fold={**r["per_fold"], "1": 0.0}) for r in rows]
    shown, at_zero = (np.asarray(plots.bars_image(r, ["0", "1"], "age")) for r in (empty, zero))
    assert (shown != at_zero).any() and not (shown == (60, 90, 200)).all(axis=-1)[:, 140:].any()


def test_command_line_writes_the_results(small_shards, tmp_path):
    cv_dir = tmp_path / "cv"
    command = [sys.executable, os.path.join(ROOT, "scripts", "cross_validate.py"), f"--shards_dir={small_shards}",
               f"--cv_dir={cv_dir}", "--folds=0,3", "--image_size=24", "--batch_size=4", "--train_steps=2",
               "--log_every=1", "--eval_every=2", "--checkpoint_every=2", "--val_fraction=0.3",
               "--shuffle_buffer=16", "--mixed_precision=off", "--noexport", "--histogram_every=0"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((cv_dir / "results.json").read_text())
    assert saved["folds"] == [0, 3] and {r["crop"] for r in saved["results"]} == {"single_crop", "over_sampled"}
    assert "mean ± std" in (cv_dir / "results.md").read_text() and (cv_dir / "results.png").is_file()
    # The headline score first: metrics.score of each fold's single crop, times 100.
    score = saved["results"][0]
    assert (score["task"], score["measure"], score["crop"]) == ("all heads", "score", "single_crop")
    fold_3 = json.loads((cv_dir / "fold_3" / "metrics.json").read_text())
    assert score["per_fold"]["3"] == pytest.approx(100 * fold_3["single_crop"]["age"]["accuracy"])
    assert "mean ± std" in result.stdout
