"""The trainer: a task's model trained by a compiled step under a runtime's strategy, with
checkpoints that resume, stop signals, read-backs of the device's totals, TensorBoard
summaries and the best checkpoint by the validation evaluator's score.

    trainer = Trainer(cfg, env, task, data_cfg, make_dataset)   # restores the latest checkpoint
    trainer.fit(validation, on_validation)                      # to cfg.train_steps
    trainer.selection(validation), trainer.best_checkpoint      # what finish() tests
"""

import contextlib
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from evaluation import metrics
from input_pipeline import preprocess
from training import ema as ema_lib
from training import mixing, runtime, steps, summaries
from training.checkpoints import Checkpoints, Interrupted, StopRequest

WRITERS = ("train", "val", "test")


class Trainer:
    """Builds `task`'s model and optimizers in `env`'s strategy (training.runtime.Runtime),
    the training input from `make_dataset(input_context)`, and restores the latest
    checkpoint in cfg.model_dir. Every worker makes one; only the chief writes."""

    def __init__(self, cfg, env, task, data_cfg, make_dataset):
        self.cfg, self.env, self.task, self.batch_size = cfg, env, task, data_cfg.batch_size
        self.augment, self.seed = preprocess.augmentation_of(data_cfg), data_cfg.seed
        with env.strategy.scope():
            self.model, self.optimizers = task.build(env.policy)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.best_score = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_val")
            self.best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")  # 0: none scored.
            self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="train_seconds")  # All resumes.
            self.totals = steps.StepTotals(task.sizes)  # Not checkpointed: zeroed at every read-back.
            self.ema = ema_lib.WeightAverage(self.model, cfg.ema_decay) if cfg.ema_decay else None
        self.mixer = mixing.make_mixer(cfg.mixup, cfg.cutmix)
        trackables = dict(model=self.model, step=self.step, best_val=self.best_score, best_step=self.best_step,
                          train_seconds=self.seconds)
        if self.ema is not None:
            trackables["ema"] = self.ema
        trackables.update({phase.checkpoint_key: self.optimizers[phase.name] for phase in task.phases})
        self.iterator = iter(env.strategy.distribute_datasets_from_function(make_dataset))
        if unsaved := input_position_unsaved(data_cfg, env.replicas):
            logging.info("the input position is not checkpointed (%s): a resumed run starts a new shuffle", unsaved)
        else:
            trackables["input"] = self.iterator  # Resume at the same input position.
        self.checkpoints = Checkpoints(cfg.model_dir, trackables, cfg.keep_checkpoints, env.is_chief, env.task_id)
        latest = self.checkpoints.restore()
        self.start_step = int(self.step.numpy())
        logging.info("%s", f"resumed from {latest} at step {self.start_step}" if latest else task.fresh_start())
        if env.multi_worker:
            runtime.check_workers_agree(env.strategy, self.start_step)
        names = [name for name in WRITERS if data_cfg.tested or name != "test"]  # Nothing tested: no test folder.
        self.writers = ({name: tf.summary.create_file_writer(os.path.join(cfg.model_dir, name)) for name in names}
                        if env.is_chief else dict.fromkeys(names, tf.summary.create_noop_writer()))
        self._predict = self._clock = None

    def write_start(self, make_sample_dataset, hparams):
        """At step 0, on the chief: a few augmented inputs from `make_sample_dataset()` and
        the run's `hparams` for TensorBoard."""
        if self.start_step == 0 and self.env.is_chief:
            summaries.write_input_images(self.writers["train"], make_sample_dataset(), self.augment,
                                         self.task.all_class_names)
            summaries.write_hparams(self.writers["train"], hparams)

    def fit(self, validation=None, on_validation=None):
        """Trains from the restored step to cfg.train_steps. Every --eval_every steps the
        `validation` evaluator (evaluation.evaluators; None: no validation split) scores the
        model; the best score keeps its checkpoint in best/, and `on_validation(step,
        score)` (score None with no labelled face) may raise to end the run there. Raises
        Interrupted after saving a checkpoint on SIGTERM or Ctrl-C, FloatingPointError
        when the loss is not finite."""
        cfg, task = self.cfg, self.task
        phase = task.phase_at(self.start_step + 1)
        train_step = self._enter(phase)
        log = summaries.TrainLog(self.writers["train"], task.sizes, self.batch_size, self.start_step, cfg.train_steps)
        self._clock = time.monotonic()
        with StopRequest() as stop:
            try:
                for step in range(self.start_step + 1, cfg.train_steps + 1):
                    if task.phase_at(step) != phase:
                        phase = task.phase_at(step)
                        logging.info("step %d: %s", step, phase.describe())
                        train_step = self._enter(phase)
                    train_step(self.iterator, tf.constant(step, tf.int64), tf.constant(stop.signum > 0))
                    self.step.assign(step)
                    due = self._due(step)
                    # Several workers must read their totals (and the stop votes in them) at the same steps.
                    if not due and not (stop.signum and not self.env.multi_worker):
                        continue  # Nothing read back: the next step is queued at once.
                    interval = self._read_back()
                    log.update(interval)
                    if "log" in due:
                        log.write(step, self.optimizers[phase.name])
                    if "histograms" in due:
                        with self.writers["train"].as_default(step=step):
                            for variable in self.model.trainable_variables:
                                tf.summary.histogram(variable.path, variable)
                    if interval["stops"] > 0:  # Some worker was told to stop; all of them save this step and stop.
                        raise Interrupted(stop.signum, step, self._save(step))
                    if "validate" in due and validation is not None:
                        self._validate(step, validation, on_validation)
                    if "save" in due:
                        self._save(step)
                if stop.signum:  # Asked to stop during the last validation: training is saved, skip the rest.
                    raise Interrupted(stop.signum, cfg.train_steps, self.checkpoints.latest)
            finally:
                for writer in self.writers.values():
                    writer.flush()
        logging.info("trained %d steps; weights fingerprint %s", cfg.train_steps, runtime.fingerprint(self.model))

    def _enter(self, phase):
        """The compiled step of `phase`, its layers made trainable."""
        self.task.enter(self.model, phase)
        return steps.make_train_step(self.model, self.optimizers[phase.name], self.env.strategy, self.task.objective,
                                     self.augment, self.seed, self.cfg.clip_norm, self.totals, self.cfg.jit_compile,
                                     self.mixer, self.ema)

    def _due(self, step):
        """What happens after `step`: "log", "validate", "save", "histograms" (the last step all but histograms)."""
        cfg, last = self.cfg, step == self.cfg.train_steps
        every = {"log": cfg.log_every, "validate": cfg.eval_every, "save": cfg.checkpoint_every,
                 "histograms": cfg.histogram_every}
        return {name for name, n in every.items() if (n and step % n == 0) or (last and name != "histograms")}

    def _read_back(self):
        """The device's totals since the last read-back (steps.StepTotals.read); a loss that
        was not finite raises FloatingPointError, keeping the last good checkpoint."""
        interval = self.totals.read()
        if interval["first_nonfinite"]:
            raise FloatingPointError(f"the training loss is {'nan' if np.isnan(interval['loss']) else 'inf'} at "
                                     f"step {interval['first_nonfinite']}; the last good checkpoint "
                                     f"({self.checkpoints.latest}) is kept")
        return interval

    def _validate(self, step, validation, on_validation):
        if self._predict is None:  # Traced once for the run.
            self._predict = steps.make_predict_step(self.model, self.task.sizes, validation.spec.oversample,
                                                    flip=self.cfg.flip_test)
        with self.ema.swapped(self.model) if self.ema is not None else contextlib.nullcontext():
            result = validation.run(self._predict)
        summaries.write_eval_summaries(self.writers["val"], result.figures, step, "val", self.task.class_names)
        logging.info("step %d validation: %s", step,
                     ", ".join(metrics.describe(h, f) for h, f in result.figures.items()))
        # The same on every worker: same weights, same data.
        if result.score is not None and result.score > self.best_score.numpy():
            self.best_score.assign(result.score)
            self.best_step.assign(step)
            self._save(step, best=True)
        if on_validation is not None:
            on_validation(step, result.score)

    def _save(self, step, best=False):
        """Saves a checkpoint (or the best one) with the training time so far."""
        now = time.monotonic()
        self.seconds.assign_add(now - self._clock)
        self._clock = now
        return self.checkpoints.save_best(step) if best else self.checkpoints.save(step)

    @property
    def best_checkpoint(self):
        """The checkpoint of the best validation score; None when none was scored."""
        return self.checkpoints.best if self.best_step.numpy() else None

    def selection(self, validation):
        """metrics.json's "selection": how the tested weights were chosen."""
        if self.best_step.numpy():
            return {"by": "validation score (metrics.score)", "score": float(self.best_score.numpy()),
                    "step": int(self.best_step.numpy())}
        why = ("no validation split (--val_fraction=0)" if validation is None else
               "no validation pass had a labelled face")
        return {"by": f"none: {why}; the final weights"}


def input_position_unsaved(data_cfg, replicas):
    """Why the training input's position cannot go into checkpoints, or "" if it can."""
    if replicas > 1:
        return f"{replicas} replicas: distributed iterators do not restore reliably"
    if data_cfg.data_service:
        return "a tf.data service's iterator has no state here to save"
    if data_cfg.cache != "none":
        return f"--cache={data_cfg.cache}: a checkpoint would hold the cache and the shuffle buffer"
    return ""
