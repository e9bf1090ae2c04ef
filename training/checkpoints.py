"""A run's checkpoints, and stopping on SIGTERM or Ctrl-C with a checkpoint to resume from."""

import os
import signal
import threading

import tensorflow as tf
from absl import logging


class Interrupted(Exception):
    """Training stopped early on a signal, after saving a checkpoint to resume from."""

    def __init__(self, signum, step, checkpoint):
        cause = signal.Signals(signum).name if signum else "another worker's stop signal"
        super().__init__(f"stopped by {cause} at step {step}, saved {checkpoint}; "
                         "run the same command again to resume")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.exit_status = 128 + (signum or signal.SIGTERM)  # The shell's status for "ended by this signal".


class StopRequest:
    """Within `with StopRequest() as stop:`, SIGTERM (a preemption notice) or Ctrl-C sets
    `stop.signum` instead of killing the process, so the loop can finish its step, save
    a checkpoint and raise Interrupted. A second Ctrl-C stops at once."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum = 0
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # Python only allows handlers there.
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.signum and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        logging.warning("%s received: stopping after this step with a checkpoint", signal.Signals(signum).name)

    def __exit__(self, *exc_info):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class Checkpoints:
    """A run's checkpoints: `checkpoints/` (the last few, to resume from) and `best/` (the
    model at its best validation). A save writes the data files first and then renames
    the state file into place, so a crash mid-save leaves the previous checkpoint the
    latest. Workers other than the chief must take part in every save, and save into
    `workertemp_<task>/`, which they delete again (TF's multi-worker guide)."""

    def __init__(self, model_dir, trackables, keep, is_chief=True, task_id=0):
        self.chief_dir = os.path.join(model_dir, "checkpoints")
        self.write_dir = model_dir if is_chief else os.path.join(model_dir, f"workertemp_{task_id}")
        self.is_chief = is_chief
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(self.write_dir, "checkpoints"),
                                                  max_to_keep=keep)
        # The model at its best, with its moving averages when the run keeps them (training/ema.py).
        best = {name: trackables[name] for name in ("model", "ema") if name in trackables}
        self.best_manager = tf.train.CheckpointManager(tf.train.Checkpoint(**best),
                                                       os.path.join(self.write_dir, "best"), max_to_keep=1)

    @property
    def latest(self):
        return tf.train.latest_checkpoint(self.chief_dir)

    @property
    def best(self):
        return self.best_manager.latest_checkpoint

    def restore(self):
        """Restores the chief's latest checkpoint, if any (every worker reads it); returns its path."""
        latest = self.latest
        if latest:
            self.checkpoint.restore(latest).expect_partial()
        return latest

    def save(self, step):
        return self._saved(self.manager.save(checkpoint_number=step))

    def save_best(self, step):
        return self._saved(self.best_manager.save(checkpoint_number=step))

    def _saved(self, path):
        if not self.is_chief:
            tf.io.gfile.rmtree(self.write_dir)
        return path
