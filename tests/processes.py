"""Helpers for tests that run the entry points as separate processes."""

import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_for(condition, seconds=30):
    """Polls `condition` until it is true (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def model_command(shards, model_dir, *flags):
    """model.py on tiny faces: 24 px crops, batches of 4, a log line every step."""
    return [sys.executable, os.path.join(ROOT, "model.py"), f"--shards_dir={shards}", f"--model_dir={model_dir}",
            "--image_size=24", "--batch_size=4", "--log_every=1", "--shuffle_buffer=16", "--val_fraction=0.3",
            "--optimizer=adam", "--schedule=constant", "--mixed_precision=off", *flags]


def start(command, log_path, env=None):
    """Starts `command` from the project root with stdout and stderr in `log_path`."""
    with open(log_path, "w") as log:  # The child keeps its own copy of the descriptor.
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)


def read(path):
    with open(path) as f:
        return f.read()


def free_ports(count):
    """Ports on 127.0.0.1 that nothing listens on (each bound, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def roll_back(model_dir, step):
    """Makes a finished run look like one killed right after its checkpoint of `step`:
    the checkpoint state names ckpt-<step> (whose files stay) and there is no metrics.json.
    The same command then resumes it at `step`."""
    checkpoints = os.path.join(model_dir, "checkpoints")
    with open(os.path.join(checkpoints, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "ckpt-{step}"\nall_model_checkpoint_paths: "ckpt-{step}"\n')
    os.remove(os.path.join(model_dir, "metrics.json"))
