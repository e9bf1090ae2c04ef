import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import architectures
from architectures.config import ModelConfig
from configs import tiny
from evaluation import metrics as evaluation_metrics
from input_pipeline import preprocess
from processes import ROOT, model_command
from training import losses, optim, steps
from training.config import RunError, TrainConfig
from training.loop import train_and_evaluate


def rates(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_the_papers_step_schedule():
    cfg = TrainConfig(schedule="step", decay_steps=10_000, decay_rate=0.1)
    schedule = optim.make_schedule(cfg, 1e-3, total_steps=50_000)
    np.testing.assert_allclose(rates(schedule, [0, 9_999, 10_000, 25_000, 49_999]),
                               [1e-3, 1e-3, 1e-4, 1e-5, 1e-7], rtol=1e-5)


def test_warm_up_then_cosine_or_constant():
    cosine = optim.make_schedule(TrainConfig(schedule="cosine", warmup_steps=100), 1e-3, 1100)
    np.testing.assert_allclose(rates(cosine, [0, 50, 100, 600, 1100]), [0, 5e-4, 1e-3, 5e-4, 0], atol=1e-9)
    constant = optim.make_schedule(TrainConfig(schedule="constant", warmup_steps=10), 1e-3, 1000)
    np.testing.assert_allclose(rates(constant, [0, 5, 10, 999]), [0, 5e-4, 1e-3, 1e-3], rtol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_few_steps_on_separable_data_lower_the_loss(jit_compile):
    keras.utils.set_random_seed(0)  # Some initialisations of Levi-Hassner stall at first.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=64).astype(np.int32)
    images = rng.uniform(0, 60, size=(64, 32, 32, 3)).astype(np.float32)
    images[labels == 1, :16] += 150  # Class 1: bright top half (survives the random flips).
    data = tf.data.Dataset.from_tensor_slices((images, {"age": labels, "gender": labels})).repeat().batch(16)
    strategy = tf.distribute.get_strategy()
    model = architectures.build(ModelConfig(dropout=0.0), {"gender": 2}, 32)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    totals = steps.StepTotals({"gender": 2})
    step = steps.make_train_step(model, optimizer, strategy, losses.Objective({"gender": 2}),
                                 preprocess.augmentation(32), totals=totals, jit_compile=jit_compile)
    iterator = iter(data)
    history, counts = [], np.zeros(3)
    for i in range(40):
        loss, count, _ = step(iterator, tf.constant(i, tf.int64))
        history.append(float(loss))
        counts += count["gender"].numpy()
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:5]), history
    # The on-device totals hold what the 40 steps returned; a read zeroes them.
    read = totals.read()
    assert read["steps"] == 40 and read["first_nonfinite"] == 0 and read["stops"] == 0
    assert read["loss"] == pytest.approx(sum(history), rel=1e-5)
    np.testing.assert_allclose(read["counts"]["gender"], counts)
    assert counts[2] == 40 * 16
    assert totals.read()["steps"] == 0


def test_training_writes_metrics_checkpoints_summaries_and_an_export(small_shards, tmp_path):
    metrics = train_and_evaluate(*tiny(small_shards, tmp_path / "run"))
    run = tmp_path / "run"
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["single_crop"]["age"]["num_examples"] == 6
    # Each test evaluator's score, the one the drivers read, is the score of its figures.
    for crop in ("single_crop", "over_sampled"):
        assert saved["score"][crop] == evaluation_metrics.score(saved[crop]) is not None
    assert set(saved["over_sampled"]["age"]) >= {"accuracy", "one_off_accuracy", "confusion_matrix",
                                                 "per_class_accuracy"}
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["train_steps"] == 4 and config["resolved"]["replicas"] == 1
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-4")
    assert tf.train.latest_checkpoint(str(run / "best"))

    tags = set()
    for folder in ("train", "val", "test"):
        for name in os.listdir(run / folder):
            for event in tf.compat.v1.train.summary_iterator(str(run / folder / name)):
                tags |= {v.tag for v in event.summary.value}
    assert (run / "confusion_age_over_sampled.png").is_file()
    assert (run / "confusion_age_single_crop.png").is_file()
    for tag in ("loss", "age/accuracy", "age/one_off_accuracy", "learning_rate", "images_per_second",
                "val/age/accuracy",
                "val/age/one_off_accuracy", "val/age/confusion_matrix", "test_over_sampled/age/accuracy",
                "_hparams_/session_start_info"):
        assert tag in tags, tag
    assert any(t.startswith("input") for t in tags) and any("kernel" in t for t in tags)

    exported = tf.saved_model.load(metrics["export_dir"])
    from datasets import jpeg_bytes
    out = exported.signatures["serving_default"](tf.constant([jpeg_bytes(size=(50, 40))]))
    np.testing.assert_allclose(out["age_probabilities"].numpy().sum(), 1.0, rtol=1e-5)
    assert out["age_classes"].numpy()[0][4] == b"(25, 32)"


def test_two_heads_train_together(small_shards, tmp_path):
    metrics = train_and_evaluate(*tiny(small_shards, tmp_path / "run", task="age_gender", train_steps=2,
                                               export=False))
    assert set(metrics["single_crop"]) == {"age", "gender"}
    assert "one_off_accuracy" in metrics["single_crop"]["age"]
    assert "one_off_accuracy" not in metrics["single_crop"]["gender"]


def test_resume_continues_at_the_saved_step(small_shards, tmp_path, kill_after_checkpoint):
    data, model_cfg, cfg = tiny(small_shards, tmp_path / "run", train_steps=6)
    kill_after_checkpoint(4)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(data, model_cfg, cfg)
    train_and_evaluate(data, model_cfg, cfg)
    reader = tf.train.load_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 6
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 6  # 4 + 2: it resumed.
    names = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    assert "ckpt-6.index" in names and "ckpt-4.index" in names


@pytest.mark.parametrize("read_every", [2, 5])
def test_a_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(small_shards, tmp_path, monkeypatch,
                                                                       kill_after_checkpoint, read_every):
    data, model_cfg, cfg = tiny(small_shards, tmp_path / "run", train_steps=8, eval_every=5)
    kill_after_checkpoint(2)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(data, model_cfg, cfg)
    real = losses.head_loss
    monkeypatch.setattr(losses, "head_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    # The loss is read back from the device every `read_every` steps only (logs, validations
    # and checkpoints); the error still names step 3, the first bad one, and saves nothing.
    more = dataclasses.replace(cfg, log_every=read_every, checkpoint_every=read_every, histogram_every=0)
    with pytest.raises(FloatingPointError, match="loss is nan at step 3"):
        train_and_evaluate(data, model_cfg, more)
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-2")


def test_transfer_learning_trains_the_head_then_fine_tunes(small_shards, tmp_path, caplog):
    data_cfg, model_cfg, cfg = tiny(small_shards, tmp_path / "run", arch="mobilenetv2", image_size=32, head_steps=2,
                                    fine_tune_layers=4, export=False)
    weights = str(tmp_path / "backbone.weights.h5")  # Pre-trained weights, as a file (no download here).
    architectures.build(model_cfg, {"age": 8}, 32).get_layer("backbone").save_weights(weights)
    with caplog.at_level("INFO", logger="absl"):
        train_and_evaluate(data_cfg, dataclasses.replace(model_cfg, weights=weights), cfg)
    assert f"starting from the {weights} backbone weights" in caplog.text
    assert "step 3: fine-tuning the top 4 backbone layers" in caplog.text
    reader = tf.train.load_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert reader.get_tensor("fine_tune_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 2


def run_cli(shards, model_dir, *flags):
    command = model_command(shards, model_dir, "--train_steps=3", "--eval_every=3", "--checkpoint_every=3",
                            "--noexport", *flags)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(open(os.path.join(model_dir, "config.json")).read()), result


def test_mirrored_strategy_over_two_logical_cpus(small_shards, tmp_path):
    config, result = run_cli(small_shards, tmp_path / "m", "--distribution=mirrored", "--cpu_devices=2")
    assert config["resolved"]["replicas"] == 2 and config["resolved"]["strategy"] == "MirroredStrategy"
    assert "step 3/3" in result.stderr and "test fold 0" in result.stdout


def test_mixed_bfloat16_runs_steps(small_shards, tmp_path):
    config, result = run_cli(small_shards, tmp_path / "b", "--mixed_precision=mixed_bfloat16")
    assert config["resolved"]["precision"] == "mixed_bfloat16"
    assert "step 3/3" in result.stderr


def test_original_size_shards_are_resized_before_batching(small_adience, tmp_path, monkeypatch):
    from input_pipeline.config import BuildConfig
    from input_pipeline.writer import build

    shards = str(tmp_path / "raw")
    build.build(BuildConfig(data_dir=small_adience, output_dir=shards, image_size=0, num_shards=1, num_workers=1))
    data, model_cfg, cfg = tiny(shards, tmp_path / "run", train_steps=2, export=False)
    train_and_evaluate(data, model_cfg, cfg)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["resize"] == 256
    # The architecture comparison's speed measurement resizes them too (real Adience faces
    # differ in size, and it stopped on its first batch).
    from experiments import architecture_cost
    from input_pipeline.reader import dataset

    resized, make = [], dataset.make_train_dataset
    monkeypatch.setattr(dataset, "make_train_dataset", lambda cfg, *a: resized.append(cfg.resize) or make(cfg, *a))
    images_per_second, _ = architecture_cost.training_speed(data, model_cfg, cfg, timed_steps=1, warmup=1)
    assert images_per_second > 0 and resized == [256]


def test_mixed_float16_uses_loss_scaling(small_shards, tmp_path):
    """The GPU path (float16 with Keras 3's LossScaleOptimizer), run on the CPU."""
    config, _ = run_cli(small_shards, tmp_path / "h", "--mixed_precision=mixed_float16")
    assert config["resolved"]["precision"] == "mixed_float16"
    tags = set()
    for name in os.listdir(tmp_path / "h" / "train"):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "h" / "train" / name)):
            tags |= {v.tag for v in event.summary.value}
    assert "loss_scale" in tags


def test_without_validation_the_final_weights_are_tested_and_said_to_be(small_shards, tmp_path):
    """An empty validation split scored 0.0, beat -inf, was saved as the best checkpoint and
    never beaten: the test figures and the export came from step 2 of 8."""
    data, model_cfg, cfg = tiny(small_shards, tmp_path / "run", train_steps=8, export=False)
    metrics = train_and_evaluate(dataclasses.replace(data, val_fraction=0.0), model_cfg, cfg)
    assert metrics["checkpoint"] == "final"
    assert metrics["selection"]["by"].startswith("none: no validation split (--val_fraction=0)")
    assert not tf.train.latest_checkpoint(str(tmp_path / "run" / "best"))
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["checkpoint"] == "final" and saved["single_crop"]["age"]["num_examples"] == 6


def test_without_a_test_fold_every_fold_trains_and_no_test_figure_is_written(small_shards, tmp_path, capsys):
    """--test_fold=-1 (a final model): the faces of all five folds train, nothing is scored on
    them as if unseen, and model.py says where to score the model instead."""
    from input_pipeline.reader.manifest import load_folds
    from training.report import print_table

    manifest, train_files, test_files = load_folds(small_shards, -1)
    assert test_files == [] and len(train_files) == sum(len(f["files"]) for f in manifest["folds"])
    with pytest.raises(ValueError, match="or -1 for none"):
        load_folds(small_shards, 5)
    data, model_cfg, cfg = tiny(small_shards, tmp_path / "run", train_steps=2, export=False)
    metrics = train_and_evaluate(dataclasses.replace(data, test_fold=-1), model_cfg, cfg)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "untested" in saved and "single_crop" not in saved and "over_sampled" not in saved
    assert saved["score"] == {} and not list((tmp_path / "run").glob("confusion_*.png"))
    assert saved["label_counts"]["test"]["age"] == {"known": 0, "unknown": 0}
    trained = saved["label_counts"]["train"]["age"]
    assert trained["known"] + trained["unknown"] == manifest["num_examples"] == sum(
        f["num_examples"] for f in manifest["folds"])
    assert not (tmp_path / "run" / "test").exists()  # No empty TensorBoard run.
    with pytest.raises(ValueError, match="no test figures"):
        evaluation_metrics.recorded_score(saved)
    print_table(metrics, -1, str(tmp_path / "run"))  # --noexport: no export to score.
    printed = capsys.readouterr().out
    assert printed.startswith("no test fold") and "score_predictions.py" not in printed and "test fold -1" not in printed
    print_table({**metrics, "export_dir": "e"}, -1, str(tmp_path / "run"))
    assert f"--model={tmp_path / 'run'}/export --predictions" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--test_fold=-1"):
        data.__class__(test_fold=-1).require_test_fold("ablate.py")
    with pytest.raises(RunError, match="nothing would score"):
        train_and_evaluate(dataclasses.replace(data, test_fold=-1, val_fraction=0.0), model_cfg,
                           dataclasses.replace(cfg, model_dir=str(tmp_path / "unscored")))
    assert not (tmp_path / "unscored").exists()


def test_the_best_validation_step_is_recorded(small_shards, tmp_path):
    metrics = train_and_evaluate(*tiny(small_shards, tmp_path / "run", train_steps=4, export=False))
    selection = metrics["selection"]
    assert selection["step"] in (2, 4) and metrics["checkpoint"].endswith(f"best/ckpt-{selection['step']}")
    assert 0 <= selection["score"] <= 1


def test_the_seed_alone_fixes_the_initial_weights(small_shards, tmp_path):
    """--seed seeded the weights only with --deterministic: tuning trials, comparison
    entries and CV folds each started from another initialisation."""
    def initial_weights(name):
        # A learning rate of 0: the weights saved after a step are the initial ones.
        data, model_cfg, cfg = tiny(small_shards, tmp_path / name, train_steps=1, learning_rate=0.0,
                                    checkpoint_every=1, export=False, histogram_every=0)
        train_and_evaluate(dataclasses.replace(data, seed=3), model_cfg, cfg)
        reader = tf.train.load_checkpoint(str(tmp_path / name / "checkpoints"))
        return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
                if key.startswith("optimizer/_trainable_variables/")}  # The model's weights.

    first, second = initial_weights("a"), initial_weights("b")
    assert first and first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_a_batch_the_replicas_cannot_split_and_a_missing_gpu_are_said_at_the_start(small_shards, tmp_path):
    command = model_command(small_shards, tmp_path / "run", "--distribution=mirrored", "--cpu_devices=3",
                            "--expect_gpu", "--train_steps=2")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "no GPU found, though --expect_gpu" in result.stderr and "pip install -e '.[gpu]'" in result.stderr
    assert ("--batch_size=4 does not split evenly over the 3 replicas of this MirroredStrategy: choose a multiple "
            "of 3") in result.stderr
    assert not (tmp_path / "run").exists()  # Refused before anything was written.


def test_a_run_meant_for_a_gpu_that_finds_none_says_so():
    from training import runtime

    assert not tf.config.list_physical_devices("GPU")  # This machine: the CPU only.
    assert runtime.accelerator_warning(False, "auto", 1) == ""
    assert "--expect_gpu" in runtime.accelerator_warning(True, "auto", 1)
    assert "--distribution=mirrored" in runtime.accelerator_warning(False, "mirrored", 1)
    assert runtime.accelerator_warning(False, "mirrored", 2) == ""  # Logical CPUs: the deliberate stand-in.


def test_missing_shards_leave_no_model_dir_behind(tmp_path):
    result = subprocess.run(model_command(str(tmp_path / "nowhere"), tmp_path / "run"), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "build the shards first" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags,hint", [
    (["--task=age_gender"], "--task is deprecated: it is --heads=age,gender now"),
    (["--task=gender", "--heads=age"], "--task is deprecated: and ignored, as --heads=age is given"),
])
def test_the_old_task_flag_prints_a_one_line_hint(tmp_path, flags, hint):
    command = [sys.executable, os.path.join(ROOT, "model.py"), *flags, f"--shards_dir={tmp_path / 'nowhere'}",
               f"--model_dir={tmp_path / 'run'}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "build the shards first" in result.stderr  # It went on, to the missing shards.
    assert hint in result.stderr


@pytest.mark.parametrize("preset", sorted(name for name in os.listdir(os.path.join(ROOT, "configs"))
                                            if name.endswith(".flags")))
def test_every_preset_is_a_configuration_model_py_accepts(tmp_path, preset):
    """Each configs/*.flags names only model.py's flags, with values its configuration
    accepts: a run of it gets as far as the missing shards (an unknown flag, or a --resize
    below --image_size, stops it before them). The presets say --heads, not the deprecated
    --task, so none prints its hint."""
    command = [sys.executable, os.path.join(ROOT, "model.py"), f"--flagfile=configs/{preset}",
               f"--shards_dir={tmp_path / 'nowhere'}", f"--model_dir={tmp_path / 'run'}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "build the shards first" in result.stderr, result.stderr[-2000:]
    assert "deprecated" not in result.stderr


def test_model_py_says_what_it_trains():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "model.py"), "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert "any of the heads age, gender, race and age_years" in result.stdout
    assert "an age or gender classifier" not in result.stdout
    assert "--[no]color_jitter" in result.stdout and "--[no]expect_gpu" in result.stdout


def test_intervals_of_zero_steps_are_refused():
    """--log_every=0 crashed the loop on a modulo; now the config names the flag."""
    for name in ("train_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
        with pytest.raises(ValueError, match=f"--{name} must be at least 1, not 0"):
            TrainConfig(**{name: 0})
    with pytest.raises(ValueError, match="--histogram_every must be 0"):
        TrainConfig(histogram_every=-1)
    assert TrainConfig(histogram_every=0).histogram_every == 0
