"""Stopping and crashing real training processes, and deterministic reruns."""

import os
import random
import re
import signal

import pytest
import tensorflow as tf

from configs import tiny
from evaluation import metrics
from processes import model_command, read, start, wait_for
from training.checkpoints import Interrupted, StopRequest
from training.loop import train_and_evaluate


def run_to_the_end(shards, run, log, *flags):
    process = start(model_command(shards, run, *flags), log)
    process.wait(timeout=300)
    return process.returncode, read(log)


def checkpoint_step(path):
    return int(tf.train.load_checkpoint(path).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def test_sigterm_saves_a_checkpoint_exits_and_a_rerun_resumes(small_shards, tmp_path):
    run, log = tmp_path / "run", tmp_path / "first.log"
    flags = ("--train_steps=40", "--eval_every=40", "--checkpoint_every=40", "--noexport")
    process = start(model_command(small_shards, run, *flags), log)
    assert wait_for(lambda: "step 3/40" in read(log), 120), read(log)[-3000:]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM, read(log)[-3000:]
    text = read(log)
    assert "Traceback" not in text
    stopped = int(re.search(r"stopped by SIGTERM at step (\d+), saved \S+ckpt-\1; run the same command", text)
                  .group(1))
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert latest.endswith(f"ckpt-{stopped}") and checkpoint_step(latest) == stopped
    assert not (run / "metrics.json").exists()

    code, text = run_to_the_end(small_shards, run, tmp_path / "again.log", *flags)
    assert code == 0, text[-3000:]
    assert f"ckpt-{stopped} at step {stopped}" in text  # "resumed from <path> at step N"
    reader = tf.train.load_checkpoint(str(run / "checkpoints"))
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 40  # N + (40 - N)
    assert (run / "metrics.json").is_file()


def test_sigkill_at_an_arbitrary_step_then_a_rerun_completes(small_shards, tmp_path):
    run, log = tmp_path / "run", tmp_path / "killed.log"
    flags = ("--train_steps=30", "--eval_every=10", "--checkpoint_every=1", "--keep_checkpoints=3", "--noexport")
    kill_at = random.Random(os.getpid()).randint(3, 25)
    process = start(model_command(small_shards, run, *flags), log)
    assert wait_for(lambda: f"step {kill_at}/30" in read(log), 120), read(log)[-3000:]
    process.kill()
    process.wait(timeout=60)

    # The latest checkpoint, and every listed one still on disk, reads back whole (the kill may
    # have hit a save). TF's CheckpointManager records the new state before it deletes the
    # oldest checkpoint and again after, so a kill between those leaves one listed path whose
    # files are gone; it is never the latest, and the next save drops it from the list.
    state = tf.train.get_checkpoint_state(str(run / "checkpoints"))
    assert state.all_model_checkpoint_paths, f"no checkpoint after a kill at step {kill_at}"
    listed = list(state.all_model_checkpoint_paths)
    present = [path for path in listed if tf.io.gfile.exists(path + ".index")]
    assert state.model_checkpoint_path in present
    assert len(present) >= len(listed) - 1 and present == listed[len(listed) - len(present):], listed
    for path in present:
        reader = tf.train.load_checkpoint(path)
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype != tf.variant:  # The input iterator's state; the rerun restores it.
                reader.get_tensor(name)  # Reading checks each tensor's stored CRC32C.
    resumed = checkpoint_step(state.model_checkpoint_path)
    assert kill_at - 1 <= resumed <= 30, (kill_at, resumed)

    code, text = run_to_the_end(small_shards, run, tmp_path / "again.log", *flags)
    assert code == 0, text[-3000:]
    assert f"at step {resumed}" in text
    reader = tf.train.load_checkpoint(str(run / "checkpoints"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 30
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 30
    assert (run / "metrics.json").is_file()


def losses(run):
    """The training loss of every step, from the TensorBoard event file."""
    values = {}
    for name in os.listdir(run / "train"):
        for event in tf.compat.v1.train.summary_iterator(str(run / "train" / name)):
            for value in event.summary.value:
                if value.tag == "loss":
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return [values[step] for step in sorted(values)]


def test_deterministic_runs_give_identical_losses(small_shards, tmp_path):
    flags = ("--deterministic", "--train_steps=6", "--eval_every=6", "--checkpoint_every=6", "--noexport")
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("other_seed", 4)):
        code, text = run_to_the_end(small_shards, tmp_path / name, tmp_path / f"{name}.log", f"--seed={seed}",
                                    *flags)
        assert code == 0, text[-3000:]
        runs[name] = losses(tmp_path / name)
    assert len(runs["a"]) == 6
    assert runs["a"] == runs["b"]  # Bit for bit.
    assert runs["a"] != runs["other_seed"]


def test_stop_request_catches_sigterm_and_a_second_ctrl_c_stops_at_once():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert wait_for(lambda: stop.signum == signal.SIGTERM, 5)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            wait_for(lambda: False, 5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_during_the_last_validation_skips_the_test_pass(small_shards, tmp_path, monkeypatch):
    real = metrics.predict_all

    def evaluate_then_sigterm(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(metrics, "predict_all", evaluate_then_sigterm)
    with pytest.raises(Interrupted, match="stopped by SIGTERM at step 2"):
        train_and_evaluate(*tiny(small_shards, tmp_path / "run", train_steps=2))
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-2")
    assert not (tmp_path / "run" / "metrics.json").exists()
