"""Two MultiWorkerMirroredStrategy workers on 127.0.0.1, as separate processes."""

import json
import os
import re
import signal

import tensorflow as tf

from processes import free_ports, model_command, read, roll_back, start, wait_for


def start_workers(shards, model_dir, logs, *flags, model_dirs=None):
    """Two workers on free ports of 127.0.0.1; `model_dirs` gives each its own --model_dir."""
    ports = free_ports(2)
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config)}
        own_dir = model_dirs[index] if model_dirs else model_dir
        command = model_command(shards, own_dir, "--distribution=multi_worker", *flags)
        processes.append(start(command, logs[index], env))
    return processes


def finish(processes, logs, timeout=300):
    for process in processes:
        process.wait(timeout=timeout)
    return [(p.returncode, read(log)) for p, log in zip(processes, logs, strict=True)]


def fingerprint(log):
    return re.search(r"weights fingerprint (\w+)", log).group(1)


def test_two_workers_train_in_step_and_only_the_chief_writes(small_shards, tmp_path):
    run, logs = tmp_path / "run", [tmp_path / "w0.log", tmp_path / "w1.log"]
    flags = ("--train_steps=4", "--eval_every=2", "--checkpoint_every=2")
    (code0, log0), (code1, log1) = finish(start_workers(small_shards, run, logs, *flags), logs)
    assert code0 == 0, log0[-3000:]
    assert code1 == 0, log1[-3000:]
    assert fingerprint(log0) == fingerprint(log1)  # Identical weights on both workers.
    assert "step 4/4" in log0 and "step 4/4" in log1
    config = json.loads((run / "config.json").read_text())
    assert config["resolved"]["replicas"] == 2
    # The chief's outputs only: one event file per folder, no worker's temporary folder.
    assert sorted(os.listdir(run)) == ["best", "checkpoints", "config.json", "confusion_age_over_sampled.png",
                                       "confusion_age_single_crop.png", "export", "metrics.json",
                                       "reliability_age_over_sampled.png", "reliability_age_single_crop.png", "test",
                                       "train", "val"]
    for folder in ("train", "val", "test"):
        assert len(os.listdir(run / folder)) == 1, folder
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-4")
    assert "worker done" in log1 and "test fold 0" in log0


def test_sigterm_to_one_worker_stops_both_and_a_rerun_resumes(small_shards, tmp_path):
    run = tmp_path / "run"
    flags = ("--train_steps=30", "--eval_every=30", "--checkpoint_every=30", "--noexport")
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    processes = start_workers(small_shards, run, logs, *flags)
    assert wait_for(lambda: "step 3/30" in read(logs[1]), 240), read(logs[1])[-3000:]
    processes[1].send_signal(signal.SIGTERM)
    (code0, log0), (code1, log1) = finish(processes, logs)
    assert code1 == 128 + signal.SIGTERM, log1[-3000:]
    assert code0 == 128 + signal.SIGTERM, log0[-3000:]
    stopped = int(re.search(r"stopped by SIGTERM at step (\d+)", log1).group(1))
    assert f"stopped by another worker's stop signal at step {stopped}" in log0
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith(f"ckpt-{stopped}")

    logs = [tmp_path / "again0.log", tmp_path / "again1.log"]
    (code0, log0), (code1, log1) = finish(start_workers(small_shards, run, logs, *flags), logs)
    assert code0 == 0 and code1 == 0, (log0[-2000:], log1[-2000:])
    assert f"at step {stopped}" in log0 and f"at step {stopped}" in log1  # "resumed from ... at step N"
    assert fingerprint(log0) == fingerprint(log1)
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-30")


def test_a_worker_that_cannot_see_the_chiefs_checkpoint_stops_both(small_shards, tmp_path):
    """Two machines without shared storage: resuming would train different weights."""
    flags = ("--train_steps=4", "--eval_every=2", "--checkpoint_every=2", "--noexport")
    chief_dir, other_dir = tmp_path / "chief", tmp_path / "other"
    logs = [tmp_path / "first.log", tmp_path / "unused.log"]
    first = start(model_command(small_shards, chief_dir, *flags), logs[0])
    assert first.wait(timeout=300) == 0, read(logs[0])[-3000:]
    roll_back(chief_dir, 2)  # The chief's folder holds a run stopped at step 2; the other's is empty.
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    processes = start_workers(small_shards, None, logs, *flags, model_dirs=[chief_dir, other_dir])
    for code, log in finish(processes, logs):
        assert code != 0
        assert "the workers resumed from different steps [0, 2]" in log, log[-3000:]
