"""--data_service: scripts/data_service.py's dispatcher and two workers on 127.0.0.1 run
the training input; its examples are the training folds' (nothing of the test fold,
nothing lost with the files split between workers), and they feed model.py."""

import collections
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from input_pipeline import preprocess
from input_pipeline.config import DataConfig
from input_pipeline.reader import dataset, parse
from input_pipeline.reader.manifest import load_folds
from input_pipeline.reader.targets import make_targets
from processes import ROOT, free_ports, model_command, read, start, wait_for

SCRIPT = os.path.join(ROOT, "scripts", "data_service.py")


@pytest.fixture
def service(tmp_path):
    """grpc://127.0.0.1:PORT of a dispatcher with two workers, all three stopped afterwards."""
    port = free_ports(1)[0]
    roles = [["--role=dispatcher", f"--port={port}"]] + [
        ["--role=worker", f"--dispatcher=127.0.0.1:{port}", "--host=127.0.0.1"]] * 2
    logs = [tmp_path / f"service_{i}.log" for i in range(3)]
    servers = [start([sys.executable, SCRIPT, *flags], log) for flags, log in zip(roles, logs, strict=True)]
    try:
        for server, log in zip(servers, logs, strict=True):
            assert wait_for(lambda log=log: "ready" in read(log), 60), read(log)
        assert f"--data_service=grpc://localhost:{port}" in read(logs[0])
        yield f"grpc://127.0.0.1:{port}"
    finally:
        for server in servers:
            server.terminate()
        stopped = []
        for server in servers:
            try:
                stopped.append(server.wait(10))  # SIGTERM stops a server at once, with status 0.
            except subprocess.TimeoutExpired:
                server.kill()
                stopped.append(f"still running 10 s after SIGTERM: {server.wait(30)}")
        assert stopped == [0, 0, 0]


def faces_of(files, cfg):
    """{the bytes of a decoded face: its count} over `files`' records."""
    found = collections.Counter()
    for batch in tf.data.TFRecordDataset(files).batch(64).map(parse.parse):
        for jpeg in batch["encoded"].numpy():
            found[preprocess.resize(preprocess.decode_jpeg(jpeg), cfg.resize).numpy().tobytes()] += 1
    return found


def test_the_service_serves_the_training_folds_and_nothing_else(small_shards, service):
    cfg = DataConfig(shards_dir=small_shards, image_size=24, resize=28, batch_size=1, val_fraction=0.0,
                     shuffle_buffer=8, data_service=service)
    manifest, train_files, test_files = load_folds(small_shards, 0)
    training, testing = faces_of(train_files, cfg), faces_of(test_files, cfg)
    assert sum(training.values()) == 24 and not training.keys() & testing.keys()
    served = collections.Counter()
    iterator = iter(dataset.make_train_dataset(cfg, train_files, make_targets(cfg.bins, manifest["label_policy"])))
    for _ in range(3 * 24):  # Three epochs' worth.
        images, labels = next(iterator)
        assert images.shape == (1, 28, 28, 3) and labels["age"].shape == (1,)
        served[images[0].numpy().tobytes()] += 1
    assert served.keys() == training.keys()  # Every training face, no test face.
    # The files are split between the workers: each face once per epoch (give or take the
    # epoch a worker is in when the three epochs' worth ends).
    assert max(served.values()) <= 4 and sum(served.values()) == 72


def test_a_training_run_is_fed_by_the_service(small_shards, service, tmp_path):
    log = tmp_path / "model.log"
    process = start(model_command(small_shards, tmp_path / "run", "--train_steps=6", "--eval_every=3",
                                  f"--data_service={service}", "--export=false"), log)
    assert process.wait(600) == 0, read(log)[-3000:]
    assert "step 6/6 loss" in read(log)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["data_service"] == service
    assert "the input position is not checkpointed (a tf.data service" in read(log)


def test_a_worker_without_a_dispatcher_says_what_to_pass():
    result = subprocess.run([sys.executable, SCRIPT, "--role=worker"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and "a worker needs --dispatcher=HOST:PORT" in result.stderr
