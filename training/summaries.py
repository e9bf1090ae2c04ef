"""TensorBoard summaries and the progress line of training."""

import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from input_pipeline.progress import format_duration
from training.plots import confusion_image, reliability_image

_SCALARS = ("accuracy", "one_off_accuracy", "ece", "nll", "ece_calibrated", "nll_calibrated", "mae", "within_5",
            "bin_accuracy")


def write_eval_summaries(writer, figures, step, prefix, class_names):
    """Each head's figures, its fairness gaps, its confusion matrix and reliability
    diagram; a head that saw no labelled faces has none (no point drawn at 0)."""
    with writer.as_default(step=step):
        for head, f in figures.items():
            if not f["num_examples"]:
                continue
            for name in _SCALARS:
                if f.get(name) is not None:
                    tf.summary.scalar(f"{prefix}/{head}/{name}", f[name])
            for attribute, breakdown in f.get("fairness", {}).items():
                if breakdown["gap"] is not None:
                    tf.summary.scalar(f"{prefix}/{head}/fairness_gap_{attribute}", breakdown["gap"])
            if "confusion_matrix" in f:
                tf.summary.image(f"{prefix}/{head}/confusion_matrix",
                                 confusion_image(f["confusion_matrix"], class_names[head],
                                                 f"{prefix} / {head}, step {step}"))
                tf.summary.image(f"{prefix}/{head}/reliability",
                                 reliability_image(f["reliability"], f["ece"], f"{prefix} / {head}, step {step}",
                                                   calibrated=calibrated_curve(f)))


def calibrated_curve(figures):
    """(bins, ECE, temperature) of a head's temperature-scaled figures, for
    plots.reliability_image; None when the pass was not scaled or saw no faces."""
    if figures.get("ece_calibrated") is None:
        return None
    return figures["reliability_calibrated"], figures["ece_calibrated"], figures["temperature"]


def write_input_images(writer, train_dataset, augment, class_names):
    """A few training inputs as the model sees them (`augment`ed: preprocess.augmentation),
    labels in the description."""
    images, labels = next(iter(train_dataset))
    images = augment(images[:6], tf.constant([0, 0], tf.int64))
    names = []
    for i in range(len(images)):
        parts = []
        for head, value in labels.items():
            value = int(value[i])
            text = "?" if value < 0 else (str(value) if head == "age_years" else class_names[head][value])
            parts.append(f"{head} {text}")
        names.append(f"{i + 1}: {', '.join(parts)}")
    with writer.as_default(step=0):
        tf.summary.image("input/augmented", tf.cast(images, tf.uint8), max_outputs=6, description="; ".join(names))


def write_hparams(writer, config):
    """The run's configuration for TensorBoard's HParams tab, named by its folder (trial_3, ...)."""
    from tensorboard.plugins.hparams import api as hp

    values = {k: v for k, v in config.items() if isinstance(v, (bool, int, float, str))}
    with writer.as_default():
        hp.hparams(values, trial_id=os.path.basename(os.path.normpath(config["model_dir"])))


class TrainLog:
    """Training figures over one logging interval: TensorBoard scalars and a progress line."""

    def __init__(self, writer, heads, batch_size, start_step, total_steps):
        self.writer, self.heads, self.batch_size, self.total_steps = writer, heads, batch_size, total_steps
        self.run_start = self.interval_start = time.monotonic()
        self.start_step = self.interval_step = start_step
        self._reset()

    def _reset(self):
        self.steps, self.loss = 0, 0.0
        # Per head: (correct, one-off, known), or for age_years (absolute error, within 5, known).
        self.counts = {task: np.zeros(3) for task in self.heads}

    def update(self, totals):
        """Adds training.steps.StepTotals.read()'s figures."""
        self.steps += totals["steps"]
        self.loss += totals["loss"]
        for task in self.heads:
            self.counts[task] += totals["counts"][task]

    def write(self, step, optimizer):
        now = time.monotonic()
        images_per_second = (step - self.interval_step) * self.batch_size / max(now - self.interval_start, 1e-9)
        totals = {t: [float(c) for c in self.counts[t]] for t in self.heads}
        loss = self.loss / max(self.steps, 1)
        # Accuracy, or for age_years the mean absolute error in years.
        figure = {t: first / max(known, 1) for t, (first, _, known) in totals.items()}
        learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        with self.writer.as_default(step=step):
            tf.summary.scalar("loss", loss)
            for task in self.heads:
                tf.summary.scalar(f"{task}/{'mae' if task == 'age_years' else 'accuracy'}", figure[task])
            if "age" in self.heads:
                tf.summary.scalar("age/one_off_accuracy", totals["age"][1] / max(totals["age"][2], 1))
            tf.summary.scalar("learning_rate", learning_rate)
            tf.summary.scalar("images_per_second", images_per_second)
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                tf.summary.scalar("loss_scale", float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)))
        eta = (self.total_steps - step) * (now - self.run_start) / max(step - self.start_step, 1)
        logging.info("step %d/%d loss %.4f %s lr %.2e %.0f images/s ETA %s", step, self.total_steps,
                     loss,
                     " ".join(f"{t} MAE {a:.1f}" if t == "age_years" else f"{t} acc {100 * a:.1f}%"
                              for t, a in figure.items()),
                     learning_rate, images_per_second, format_duration(eta))
        self._reset()
        self.interval_start, self.interval_step = now, step
