"""Trains and evaluates an age or gender classifier on a build_input shard set.

    python model.py --flagfile=configs/demo.flags          # the sample, a few minutes on 2 CPUs
    python model.py --flagfile=configs/levi_hassner.flags --shards_dir=data/tfrecords/adience

A custom training loop (tf.GradientTape in a tf.function, run by a tf.distribute
strategy) with mixed precision, checkpoints that resume, TensorBoard summaries, and at
the end the test fold's figures in <model_dir>/metrics.json and an exported SavedModel.
"""

import dataclasses
import hashlib
import json
import logging as pylogging
import os
import signal
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO lines; warnings still show.

# ruff: noqa: E402 (imports after the environment set-up)
import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

import architectures
from architectures import evaluation, losses, transfer
from architectures.config import ModelConfig
from input_pipeline import augment, dataset
from input_pipeline.config import TASKS, DataConfig
from input_pipeline.labels import AGE_CLASSES, GENDER_CLASSES
from input_pipeline.progress import format_duration

CLASS_NAMES = {"age": AGE_CLASSES, "gender": GENDER_CLASSES}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model_dir: str = "runs/demo"
    train_steps: int = 2000
    optimizer: str = "sgd"  # sgd | adam | adamw
    learning_rate: float = 1e-3
    momentum: float = 0.9
    schedule: str = "step"  # step | cosine | constant
    decay_steps: int = 10_000  # step: multiply the rate by decay_rate every decay_steps.
    decay_rate: float = 0.1
    warmup_steps: int = 0
    adamw_decay: float = 1e-4
    label_smoothing: float = 0.0
    class_weights: str = "none"  # none | balanced
    clip_norm: float = 0.0  # Global gradient norm; 0: no clipping.
    head_steps: int = 0  # Transfer learning: steps with the backbone frozen before fine-tuning.
    fine_tune_layers: int = 0
    fine_tune_lr_factor: float = 0.1
    distribution: str = "auto"
    cpu_devices: int = 1  # Logical CPU devices: a stand-in for several GPUs on a CPU machine.
    mixed_precision: str = "auto"
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    histogram_every: int = 1000
    export: bool = True


_D, _M, _T = DataConfig(), ModelConfig(), TrainConfig()
# Data.
flags.DEFINE_string("shards_dir", _D.shards_dir, "A build_input output folder (with manifest.json).")
flags.DEFINE_integer("test_fold", _D.test_fold, "Fold held out for testing; the other four train.",
                     lower_bound=0, upper_bound=4)
flags.DEFINE_float("val_fraction", _D.val_fraction, "Share of training subjects held out for validation.")
flags.DEFINE_enum("task", _D.task, TASKS, "What to predict; age_gender trains two heads on one trunk.")
flags.DEFINE_integer("image_size", _D.image_size, "Crop side fed to the model (the paper: 227).")
flags.DEFINE_integer("resize", _D.resize, "Resize the stored faces to this side before cropping; 0: as stored.")
flags.DEFINE_integer("batch_size", _D.batch_size, "Global batch size.", lower_bound=1)
flags.DEFINE_integer("shuffle_buffer", _D.shuffle_buffer, "Examples in the shuffle buffer.")
flags.DEFINE_bool("cache", _D.cache, "Keep the encoded training records in memory after one pass.")
flags.DEFINE_bool("deterministic", _D.deterministic, "Seeded, ordered input and deterministic ops.")
flags.DEFINE_integer("seed", _D.seed, "Seed of the input order, augmentation and initialisation.")
# Model.
flags.DEFINE_enum("arch", _M.arch, sorted(architectures.ARCHITECTURES), "Architecture.")
flags.DEFINE_float("dropout", _M.dropout, "Dropout rate of the fully connected layers.")
flags.DEFINE_float("weight_decay", _M.weight_decay, "Levi-Hassner: Caffe weight decay on kernels.")
flags.DEFINE_string("weights", _M.weights, "Transfer learning: imagenet, none, or a backbone weights file.")
flags.DEFINE_integer("head_units", _M.head_units, "Transfer learning: units of the hidden head layer.")
flags.DEFINE_float("l1", _M.l1, "Transfer learning: L1 penalty on the head layer's kernel.")
flags.DEFINE_float("l2", _M.l2, "Transfer learning: L2 penalty on the head layer's kernel.")
# Training.
flags.DEFINE_string("model_dir", _T.model_dir, "Checkpoints, TensorBoard logs, metrics and the export.")
flags.DEFINE_integer("train_steps", _T.train_steps, "Training steps in all.", lower_bound=1)
flags.DEFINE_enum("optimizer", _T.optimizer, ["sgd", "adam", "adamw"], "Optimizer.")
flags.DEFINE_float("learning_rate", _T.learning_rate, "Peak learning rate.")
flags.DEFINE_float("momentum", _T.momentum, "SGD momentum.")
flags.DEFINE_enum("schedule", _T.schedule, ["step", "cosine", "constant"], "Learning-rate schedule.")
flags.DEFINE_integer("decay_steps", _T.decay_steps, "step schedule: steps between decays.", lower_bound=1)
flags.DEFINE_float("decay_rate", _T.decay_rate, "step schedule: factor at each decay.")
flags.DEFINE_integer("warmup_steps", _T.warmup_steps, "Linear warm-up from 0 to the peak rate.")
flags.DEFINE_float("adamw_decay", _T.adamw_decay, "AdamW's decoupled weight decay.")
flags.DEFINE_float("label_smoothing", _T.label_smoothing, "Label smoothing of the cross-entropy.")
flags.DEFINE_enum("class_weights", _T.class_weights, ["none", "balanced"],
                  "balanced: weight each class by N / (C * n_c) over the training folds.")
flags.DEFINE_float("clip_norm", _T.clip_norm, "Clip gradients to this global norm; 0: off.")
flags.DEFINE_integer("head_steps", _T.head_steps, "Transfer: steps training the head only.")
flags.DEFINE_integer("fine_tune_layers", _T.fine_tune_layers,
                     "Transfer: backbone layers unfrozen after --head_steps (BatchNorm stays frozen).")
flags.DEFINE_float("fine_tune_lr_factor", _T.fine_tune_lr_factor, "Transfer: learning-rate factor when fine-tuning.")
flags.DEFINE_enum("distribution", _T.distribution, ["auto", "default", "one_device", "mirrored", "multi_worker"],
                  "auto: mirrored over all GPUs if there are several, else default. multi_worker: "
                  "MultiWorkerMirroredStrategy over the workers in the TF_CONFIG environment variable.")
flags.DEFINE_integer("cpu_devices", _T.cpu_devices,
                     "Split the CPU into this many logical devices; with --distribution=mirrored and no "
                     "GPU, each is a replica (tests and CPU stand-ins for multi-GPU runs).", lower_bound=1)
flags.DEFINE_enum("mixed_precision", _T.mixed_precision, ["auto", "off", "mixed_float16", "mixed_bfloat16"],
                  "auto: mixed_float16 on GPU, mixed_bfloat16 on CPUs with native bf16, else off.")
flags.DEFINE_integer("log_every", _T.log_every, "Steps between progress lines and train summaries.")
flags.DEFINE_integer("eval_every", _T.eval_every, "Steps between validation passes.")
flags.DEFINE_integer("checkpoint_every", _T.checkpoint_every, "Steps between checkpoints.")
flags.DEFINE_integer("keep_checkpoints", _T.keep_checkpoints, "Checkpoints kept.")
flags.DEFINE_integer("histogram_every", _T.histogram_every, "Steps between weight histograms.")
flags.DEFINE_bool("export", _T.export, "Export a SavedModel with preprocessing and class names at the end.")
FLAGS = flags.FLAGS


# ----------------------------------------------------------------------------- set-up


def split_cpu(num_devices):
    """Makes the CPU appear as `num_devices` logical devices (before TF uses any device)."""
    if num_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)


def choose_strategy(name):
    if name == "multi_worker":
        # Configured from TF_CONFIG; created before anything else touches the runtime.
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    # mirrored. Without GPUs MirroredStrategy would use /cpu:0 only; name every logical CPU.
    devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def worker_role(strategy):
    """(is_chief, task_id). Under MultiWorkerMirroredStrategy only the chief (task 0 of
    "worker" unless there is a "chief" task) writes summaries, metrics and the export;
    every worker must take part in saving checkpoints, so the others save into
    temporary folders that they delete again (TF's multi-worker guide)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().jobs:
        return True, 0
    return strategy.extended.should_checkpoint, resolver.task_id


def cpu_has_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    except OSError:
        return False
    return any(flag in cpuinfo.split() for flag in ("avx512_bf16", "amx_bf16"))


def choose_precision(name):
    """The Keras dtype policy name for --mixed_precision."""
    if name == "auto":
        if tf.config.list_physical_devices("GPU"):
            return "mixed_float16"
        return "mixed_bfloat16" if cpu_has_bf16() else "float32"
    return "float32" if name == "off" else name


def heads_for(task):
    return {t: len(CLASS_NAMES[t]) for t in (("age", "gender") if task == "age_gender" else (task,))}


def balanced_class_weights(manifest, test_fold, heads):
    """N / (C * n_c) per head over the training folds (0 for a class with no examples)."""
    weights = {}
    for task, num_classes in heads.items():
        key = f"{task}_counts"
        counts = np.zeros(num_classes)
        for fold in manifest["folds"]:
            if fold["fold"] != test_fold:
                counts += [fold[key][name] for name in CLASS_NAMES[task]]
        weights[task] = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0).tolist()
    return weights


# ----------------------------------------------------------------------------- optimizer


def make_schedule(cfg, learning_rate, total_steps):
    """cfg.schedule over the `total_steps` its optimizer will take, after cfg.warmup_steps."""
    if cfg.schedule == "cosine":
        decay = max(total_steps - cfg.warmup_steps, 1)
        if cfg.warmup_steps:
            return keras.optimizers.schedules.CosineDecay(0.0, decay, warmup_target=learning_rate,
                                                          warmup_steps=cfg.warmup_steps)
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay)
    if cfg.schedule == "step":
        # Caffe's "step" policy: rate * decay_rate ** floor(step / decay_steps). Keras keeps a
        # value while step <= boundary, so each boundary is one step earlier.
        boundaries = [b - 1 for b in range(cfg.decay_steps, total_steps, cfg.decay_steps)]
        values = [learning_rate * cfg.decay_rate ** i for i in range(len(boundaries) + 1)]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else None
    else:
        schedule = None
    return WarmUp(schedule or learning_rate, learning_rate, cfg.warmup_steps)


@keras.saving.register_keras_serializable(package="model")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then `after` (a schedule or a number)."""

    def __init__(self, after, peak, warmup_steps):
        self.after, self.peak, self.warmup_steps = after, peak, warmup_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        after = self.after(step) if callable(self.after) else tf.constant(self.after, tf.float32)
        if not self.warmup_steps:
            return after
        return tf.where(step < self.warmup_steps, self.peak * step / self.warmup_steps, after)

    def get_config(self):
        return {"after": self.after, "peak": self.peak, "warmup_steps": self.warmup_steps}


def make_optimizer(cfg, learning_rate, policy, total_steps):
    schedule = make_schedule(cfg, learning_rate, total_steps)
    clip = dict(global_clipnorm=cfg.clip_norm) if cfg.clip_norm else {}
    if cfg.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=cfg.momentum, **clip)
    elif cfg.optimizer == "adam":
        optimizer = keras.optimizers.Adam(schedule, **clip)
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=cfg.adamw_decay, **clip)
    if policy == "mixed_float16":  # float16 gradients underflow without loss scaling.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


# ----------------------------------------------------------------------------- steps


def make_train_step(model, optimizer, strategy, heads, global_batch_size, image_size, seed=0, label_smoothing=0.0,
                    class_weights=None):
    """A tf.function that takes the next batch of uint8 faces from a distributed
    iterator, augments it (augment.train_batch: crops of `image_size`), trains one step
    on every replica, and returns the summed loss, per-head (correct, one-off, known)
    and the number of replicas asked to stop."""
    class_weights = class_weights or {}

    def replica_step(images, labels, step_seed, stop):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        images = augment.train_batch(images, tf.random.experimental.stateless_fold_in(step_seed, replica), image_size)
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = 0.0
            for task, num_classes in heads.items():
                loss += losses.masked_cross_entropy(labels[task], tf.cast(logits[task], tf.float32), num_classes,
                                                    global_batch_size, label_smoothing, class_weights.get(task))
            if model.losses:  # Weight decay and head penalties, once per global batch.
                loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(x, tf.float32) for x in model.losses]))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        counts = {}
        for task in heads:
            known = labels[task] >= 0
            predicted = tf.argmax(logits[task], axis=-1, output_type=tf.int32)
            one_off = tf.abs(predicted - labels[task]) <= 1  # Adjacent age groups count (age only).
            counts[task] = tf.stack([tf.reduce_sum(tf.cast((predicted == labels[task]) & known, tf.float32)),
                                     tf.reduce_sum(tf.cast(one_off & known, tf.float32)),
                                     tf.reduce_sum(tf.cast(known, tf.float32))])
        # Every replica of every worker votes; all of them see the same total.
        stops = tf.distribute.get_replica_context().all_reduce("SUM", tf.cast(stop, tf.float32))
        return loss, counts, stops

    @tf.function
    def train_step(iterator, step, stop=False):
        """`step` (int64 scalar) seeds this step's augmentation (with the seed of the run).
        `stop` (bool) is this worker's wish to stop; the third result, summed over every
        replica of every worker, is > 0 when any worker wants to, so all stop together."""
        images, labels = next(iterator)
        step_seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), step)
        loss, counts, stops = strategy.run(replica_step, args=(images, labels, step_seed, stop))
        # One reduce per tensor: MultiWorkerMirroredStrategy cannot reduce a dict across workers.
        counts = {task: strategy.reduce("SUM", value, axis=None) for task, value in counts.items()}
        return strategy.reduce("SUM", loss, axis=None), counts, strategy.experimental_local_results(stops)[0]

    return train_step


def make_predict_step(model, heads, oversample):
    """A tf.function from a batch of images to per-head softmax probabilities; with
    `oversample`, images are (B, 10, S, S, 3) and the 10 crops' softmaxes are averaged."""

    @tf.function(reduce_retracing=True)  # The last batch of a pass is smaller.
    def predict(images):
        if oversample:
            shape = tf.shape(images)
            images = tf.reshape(images, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))
        logits = model(tf.cast(images, tf.float32), training=False)
        probabilities = {}
        for task in heads:
            p = tf.nn.softmax(tf.cast(logits[task], tf.float32))
            probabilities[task] = tf.reduce_mean(tf.reshape(p, [-1, 10, p.shape[-1]]), axis=1) if oversample else p
        return probabilities

    return predict


def evaluate(predict, heads, eval_dataset):
    """Per-head figures (see architectures.evaluation) over one pass of `eval_dataset`,
    with `predict` from make_predict_step."""
    probabilities = {task: [] for task in heads}
    labels = {task: [] for task in heads}
    for images, batch_labels in eval_dataset:
        batch_probabilities = predict(images)
        for task in heads:
            probabilities[task].append(batch_probabilities[task].numpy())
            labels[task].append(batch_labels[task].numpy())
    figures = {}
    for task in heads:
        p = np.concatenate(probabilities[task]) if probabilities[task] else np.zeros((0, heads[task]))
        y = np.concatenate(labels[task]) if labels[task] else np.zeros((0,), np.int32)
        figures[task] = evaluation.summarize(p, y, CLASS_NAMES[task], one_off=task == "age")
    return figures


# ----------------------------------------------------------------------------- summaries


def _short(name):
    return name.strip("()").replace(", ", "-")  # "(25, 32)" -> "25-32"


def confusion_image(matrix, class_names, title):
    """The confusion matrix as a (1, H, W, 3) uint8 image (rows: truth, columns: prediction),
    each row shaded by the share of that true class."""
    from PIL import Image, ImageDraw

    matrix = np.asarray(matrix, dtype=np.float64)
    n, cell, margin = len(class_names), 44, 70
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = Image.new("RGB", (margin + n * cell + 10, margin + n * cell + 10), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), title, fill="black")
    draw.text((margin, 28), "predicted ->", fill="black")
    draw.text((8, 28), "true", fill="black")
    for i, name in enumerate(class_names):
        draw.text((8, margin + i * cell + cell // 3), _short(name), fill="black")
        draw.text((margin + i * cell + 4, margin - 16), _short(name), fill="black")
        for j in range(n):
            shade = int(255 * (1 - rows[i, j]))
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell - 1, margin + (i + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255))
            draw.text((box[0] + 4, box[1] + cell // 3), str(int(matrix[i, j])),
                      fill="white" if rows[i, j] > 0.5 else "black")
    return np.asarray(image)[None]


def write_eval_summaries(writer, figures, step, prefix):
    with writer.as_default(step=step):
        for task, f in figures.items():
            tf.summary.scalar(f"{prefix}/{task}/accuracy", f["accuracy"])
            if "one_off_accuracy" in f:
                tf.summary.scalar(f"{prefix}/{task}/one_off_accuracy", f["one_off_accuracy"])
            tf.summary.image(f"{prefix}/{task}/confusion_matrix",
                             confusion_image(f["confusion_matrix"], CLASS_NAMES[task],
                                             f"{prefix} / {task}, step {step}"))


def write_input_images(writer, train_dataset, image_size):
    """A few training inputs as the model sees them (augmented), labels in the description."""
    images, labels = next(iter(train_dataset))
    images = augment.train_batch(images[:6], tf.constant([0, 0], tf.int64), image_size)
    names = []
    for i in range(len(images)):
        parts = [CLASS_NAMES[t][int(labels[t][i])] if int(labels[t][i]) >= 0 else "?" for t in ("age", "gender")]
        names.append(f"{i + 1}: age {parts[0]}, gender {parts[1]}")
    with writer.as_default(step=0):
        tf.summary.image("input/augmented", tf.cast(images, tf.uint8), max_outputs=6, description="; ".join(names))


def write_hparams(writer, config):
    from tensorboard.plugins.hparams import api as hp

    values = {k: v for k, v in config.items() if isinstance(v, (bool, int, float, str))}
    with writer.as_default():
        hp.hparams(values)


class TrainLog:
    """Training figures over one logging interval: TensorBoard scalars and a progress line."""

    def __init__(self, writer, heads, batch_size, start_step, total_steps):
        self.writer, self.heads, self.batch_size, self.total_steps = writer, heads, batch_size, total_steps
        self.loss = keras.metrics.Mean()
        self.counts = {task: [keras.metrics.Sum() for _ in range(3)] for task in heads}  # correct, one-off, known
        self.run_start = self.interval_start = time.monotonic()
        self.start_step = self.interval_step = start_step

    def update(self, loss, counts):
        self.loss.update_state(loss)
        for task in self.heads:
            for metric, value in zip(self.counts[task], counts[task], strict=True):
                metric.update_state(value)

    def write(self, step, optimizer):
        now = time.monotonic()
        images_per_second = (step - self.interval_step) * self.batch_size / max(now - self.interval_start, 1e-9)
        totals = {t: [float(m.result()) for m in self.counts[t]] for t in self.heads}
        accuracy = {t: correct / max(known, 1) for t, (correct, _, known) in totals.items()}
        learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        with self.writer.as_default(step=step):
            tf.summary.scalar("loss", self.loss.result())
            for task in self.heads:
                tf.summary.scalar(f"{task}/accuracy", accuracy[task])
            if "age" in self.heads:
                tf.summary.scalar("age/one_off_accuracy", totals["age"][1] / max(totals["age"][2], 1))
            tf.summary.scalar("learning_rate", learning_rate)
            tf.summary.scalar("images_per_second", images_per_second)
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                tf.summary.scalar("loss_scale", float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)))
        eta = (self.total_steps - step) * (now - self.run_start) / max(step - self.start_step, 1)
        logging.info("step %d/%d loss %.4f %s lr %.2e %.0f images/s ETA %s", step, self.total_steps,
                     float(self.loss.result()), " ".join(f"{t} acc {100 * a:.1f}%" for t, a in accuracy.items()),
                     learning_rate, images_per_second, format_duration(eta))
        self.loss.reset_state()
        for metric in (m for t in self.heads for m in self.counts[t]):
            metric.reset_state()
        self.interval_start, self.interval_step = now, step


# ----------------------------------------------------------------------------- export


class ExportModule(tf.Module):
    """What inference needs without this code: JPEG bytes or uint8 images in, class
    probabilities and names out; resizing and the centre crop inside."""

    def __init__(self, model, heads, stored_size, crop_size):
        super().__init__()
        self.model = model
        self.heads = heads
        self.stored_size, self.crop_size = stored_size, crop_size
        self.class_names = {task: tf.constant(CLASS_NAMES[task]) for task in heads}

    def _predict(self, images):
        images = tf.image.resize(tf.cast(images, tf.float32), (self.stored_size, self.stored_size))
        offset = (self.stored_size - self.crop_size) // 2
        images = images[:, offset:offset + self.crop_size, offset:offset + self.crop_size]
        logits = self.model(images, training=False)
        outputs = {}
        for task in self.heads:
            outputs[f"{task}_probabilities"] = tf.nn.softmax(tf.cast(logits[task], tf.float32))
            outputs[f"{task}_classes"] = tf.broadcast_to(self.class_names[task],
                                                         [tf.shape(images)[0], len(CLASS_NAMES[task])])
        return outputs

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def serve_images(self, images):
        return self._predict(images)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def serve_crops(self, crops):
        """Probabilities of crops already at the model's input size (e.g. the 10 over-sampling crops)."""
        logits = self.model(tf.cast(crops, tf.float32), training=False)
        return {f"{task}_probabilities": tf.nn.softmax(tf.cast(logits[task], tf.float32)) for task in self.heads}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def serve_probabilities(self, images):
        """Numbers only (TFLite has no string outputs); class names are in metadata.json."""
        return {key: value for key, value in self._predict(images).items() if key.endswith("_probabilities")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_jpeg(self, jpegs):
        def one(jpeg):
            image = tf.io.decode_jpeg(jpeg, channels=3)
            return tf.image.resize(image, (self.stored_size, self.stored_size))

        images = tf.map_fn(one, jpegs, fn_output_signature=tf.float32)
        return self._predict(tf.cast(tf.round(images), tf.uint8))


def float32_copy(model, model_cfg, heads):
    """The same architecture and weights computing in float32: a mixed-precision model
    would export bfloat16 or float16 ops, slow or missing on many CPUs and in TFLite."""
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = architectures.build(model_cfg, heads)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    copy.set_weights(model.get_weights())
    return copy


def export(model, heads, stored_size, crop_size, directory):
    """A SavedModel with four signatures (JPEG bytes in; uint8 images in; uint8 crops of
    the input size in; uint8 images in and probabilities only out) and metadata.json
    with class names and sizes. `model` must compute in float32 (float32_copy)."""
    module = ExportModule(model, heads, stored_size, crop_size)
    tf.saved_model.save(module, directory, signatures={"serving_default": module.serve_jpeg,
                                                       "serve_images": module.serve_images,
                                                       "serve_crops": module.serve_crops,
                                                       "serve_probabilities": module.serve_probabilities})
    with open(os.path.join(directory, "metadata.json"), "w") as f:
        json.dump({"class_names": {task: list(CLASS_NAMES[task]) for task in heads},
                   "stored_size": stored_size, "crop_size": crop_size}, f, indent=2)
    return directory


# ----------------------------------------------------------------------------- main


def configs_from_flags():
    """DataConfig, ModelConfig and TrainConfig from the parsed flags."""
    data = DataConfig(shards_dir=FLAGS.shards_dir, test_fold=FLAGS.test_fold, val_fraction=FLAGS.val_fraction,
                      task=FLAGS.task, image_size=FLAGS.image_size, resize=FLAGS.resize, batch_size=FLAGS.batch_size,
                      shuffle_buffer=FLAGS.shuffle_buffer, cache=FLAGS.cache, deterministic=FLAGS.deterministic,
                      seed=FLAGS.seed)
    model = ModelConfig(arch=FLAGS.arch, image_size=FLAGS.image_size, dropout=FLAGS.dropout,
                        weight_decay=FLAGS.weight_decay, weights=FLAGS.weights, head_units=FLAGS.head_units,
                        l1=FLAGS.l1, l2=FLAGS.l2)
    train = TrainConfig(**{f.name: FLAGS[f.name].value for f in dataclasses.fields(TrainConfig)})
    return data, model, train


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


def fingerprint(model):
    """A short hash of the model's weights: workers in sync print the same one."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def check_workers_agree(strategy, start_step):
    """Every worker must resume from the same checkpoint; a worker that cannot see the
    chief's model_dir would silently train other weights."""
    def own_step():
        return tf.constant([start_step], tf.int64)

    @tf.function
    def gather():
        return strategy.gather(strategy.run(own_step), axis=0)

    steps = gather().numpy()
    if steps.min() != steps.max():
        raise RuntimeError(f"the workers resumed from different steps {sorted(set(steps.tolist()))}: every "
                           "worker must read the chief's --model_dir (shared storage such as NFS or gs://)")


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
        self.best_manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=trackables["model"]),
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


def train_and_evaluate(data_cfg, model_cfg, cfg):
    """Trains (resuming from cfg.model_dir if it holds a checkpoint), evaluates the test
    fold and returns the metrics written to metrics.json (None on a worker that is not
    the chief). Raises Interrupted after saving a checkpoint on SIGTERM or Ctrl-C."""
    split_cpu(cfg.cpu_devices)
    if data_cfg.deterministic:
        keras.utils.set_random_seed(data_cfg.seed)
        tf.config.experimental.enable_op_determinism()
    strategy = choose_strategy(cfg.distribution)
    is_chief, task_id = worker_role(strategy)
    policy = choose_precision(cfg.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)  # Before any layer is built.
    os.makedirs(cfg.model_dir, exist_ok=True)
    manifest, train_files, test_files = dataset.load_folds(data_cfg.shards_dir, data_cfg.test_fold)
    if not manifest["image_size"] and not data_cfg.resize:
        # Original JPEGs (build_input --image_size=0) differ in size; batches need one.
        data_cfg = dataclasses.replace(data_cfg, resize=256)
        logging.info("the shards hold faces of varying size: resizing them to 256 (set --resize to change)")
    config = {"data": dataclasses.asdict(data_cfg), "model": dataclasses.asdict(model_cfg),
              "train": dataclasses.asdict(cfg), "resolved": {"precision": policy,
                                                              "strategy": type(strategy).__name__,
                                                              "replicas": strategy.num_replicas_in_sync}}
    if is_chief:
        with open(os.path.join(cfg.model_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
    logging.info("config: %s", json.dumps(config))

    heads = heads_for(data_cfg.task)
    class_weights = (balanced_class_weights(manifest, data_cfg.test_fold, heads)
                     if cfg.class_weights == "balanced" else None)
    transfer_learning = architectures.is_transfer(model_cfg.arch)

    with strategy.scope():
        model = architectures.build(model_cfg, heads)
        fine_tunes = transfer_learning and cfg.fine_tune_layers > 0
        # Each optimizer's schedule spans the steps it takes: the head-only phase, then the rest.
        head_steps = min(cfg.head_steps, cfg.train_steps) if fine_tunes else cfg.train_steps
        optimizer = make_optimizer(cfg, cfg.learning_rate, policy, head_steps)
        optimizer.build(model.trainable_variables)  # keras-team/keras#23085
        fine_tune_optimizer = None
        if fine_tunes:
            transfer.set_trainable(model, cfg.fine_tune_layers)
            fine_tune_optimizer = make_optimizer(cfg, cfg.learning_rate * cfg.fine_tune_lr_factor, policy,
                                                 cfg.train_steps - head_steps)
            fine_tune_optimizer.build(model.trainable_variables)
            transfer.set_trainable(model, 0)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        best_val = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_val")
    trackables = dict(model=model, optimizer=optimizer, step=step_var, best_val=best_val)
    if fine_tune_optimizer is not None:
        trackables["fine_tune_optimizer"] = fine_tune_optimizer

    train_ds = strategy.distribute_datasets_from_function(
        lambda ctx: dataset.make_train_dataset(data_cfg, train_files, ctx))
    iterator = iter(train_ds)
    if strategy.num_replicas_in_sync == 1:
        trackables["input"] = iterator  # Resume at the same input position where feasible.
    else:
        logging.info("%d replicas: the input position is not checkpointed (distributed iterators do not "
                     "restore reliably); a resumed run starts a new shuffle", strategy.num_replicas_in_sync)
    checkpoints = Checkpoints(cfg.model_dir, trackables, cfg.keep_checkpoints, is_chief, task_id)
    latest = checkpoints.restore()
    if latest:
        logging.info("resumed from %s at step %d", latest, int(step_var.numpy()))
    elif transfer_learning and model_cfg.weights != "none":
        logging.info("no checkpoint: starting from the %s backbone weights", model_cfg.weights)
    else:
        logging.info("no checkpoint: starting from scratch")
    start_step = int(step_var.numpy())
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        check_workers_agree(strategy, start_step)

    val_ds = dataset.make_eval_dataset(data_cfg, train_files, "val")
    if is_chief:
        writers = {name: tf.summary.create_file_writer(os.path.join(cfg.model_dir, name))
                   for name in ("train", "val", "test")}
    else:
        writers = dict.fromkeys(("train", "val", "test"), tf.summary.create_noop_writer())
    if start_step == 0 and is_chief:
        write_input_images(writers["train"], dataset.make_train_dataset(data_cfg, train_files), data_cfg.image_size)
        write_hparams(writers["train"], {**dataclasses.asdict(data_cfg), **dataclasses.asdict(model_cfg),
                                          **dataclasses.asdict(cfg)})

    def start_phase(fine_tuning):
        """The optimizer and compiled step of a phase (transfer: head only, then fine-tuning)."""
        if transfer_learning:
            transfer.set_trainable(model, cfg.fine_tune_layers if fine_tuning else 0)
        active = fine_tune_optimizer if fine_tuning else optimizer
        step_fn = make_train_step(model, active, strategy, heads, data_cfg.batch_size, data_cfg.image_size,
                                  data_cfg.seed, cfg.label_smoothing, class_weights)
        return active, step_fn

    predict_single = make_predict_step(model, heads, oversample=False)
    fine_tuning = fine_tune_optimizer is not None and start_step >= cfg.head_steps
    active, train_step = start_phase(fine_tuning)
    log = TrainLog(writers["train"], heads, data_cfg.batch_size, start_step, cfg.train_steps)
    with StopRequest() as stop:
        try:
            for step in range(start_step + 1, cfg.train_steps + 1):
                if fine_tune_optimizer is not None and not fine_tuning and step > cfg.head_steps:
                    fine_tuning = True
                    logging.info("step %d: fine-tuning the top %d backbone layers", step, cfg.fine_tune_layers)
                    active, train_step = start_phase(fine_tuning)
                loss, counts, stops = train_step(iterator, tf.constant(step, tf.int64), tf.constant(stop.signum > 0))
                loss = float(loss.numpy())
                if not np.isfinite(loss):
                    raise FloatingPointError(f"the training loss is {loss} at step {step}; the last good "
                                             f"checkpoint ({checkpoints.latest}) is kept")
                step_var.assign(step)
                log.update(loss, counts)
                if step % cfg.log_every == 0 or step == cfg.train_steps:
                    log.write(step, active)
                if cfg.histogram_every and step % cfg.histogram_every == 0:
                    with writers["train"].as_default(step=step):
                        for variable in model.trainable_variables:
                            tf.summary.histogram(variable.path, variable)
                if float(stops) > 0:  # Some worker was told to stop; all of them save this step and stop.
                    raise Interrupted(stop.signum, step, checkpoints.save(step))
                if step % cfg.eval_every == 0 or step == cfg.train_steps:
                    figures = evaluate(predict_single, heads, val_ds)
                    write_eval_summaries(writers["val"], figures, step, "val")
                    score = float(np.mean([f["accuracy"] for f in figures.values()]))
                    logging.info("step %d validation: %s", step,
                                 ", ".join(f"{t} {100 * f['accuracy']:.1f}%" for t, f in figures.items()))
                    if score > best_val.numpy():  # The same on every worker: same weights, same data.
                        best_val.assign(score)
                        checkpoints.save_best(step)
                if step % cfg.checkpoint_every == 0 or step == cfg.train_steps:
                    checkpoints.save(step)
            if stop.signum:  # Asked to stop during the last validation: training is saved, skip the rest.
                raise Interrupted(stop.signum, cfg.train_steps, checkpoints.latest)
        finally:
            for writer in writers.values():
                writer.flush()
    logging.info("trained %d steps; weights fingerprint %s", cfg.train_steps, fingerprint(model))
    if not is_chief:
        return None
    return finish(model, model_cfg, heads, data_cfg, cfg, manifest, test_files, checkpoints.best, writers["test"])


def finish(model, model_cfg, heads, data_cfg, cfg, manifest, test_files, best, writer):
    """Evaluates the `best` checkpoint (or the model as it is, if None) on the test fold,
    writes metrics.json and exports. The figures are those of the exported model: the
    float32 copy, outside any strategy."""
    model = float32_copy(model, model_cfg, heads)
    if best:
        tf.train.Checkpoint(model=model).restore(best).assert_existing_objects_matched()
    metrics = {"test_fold": data_cfg.test_fold, "checkpoint": best,
               "synthetic_data": manifest.get("synthetic", False)}
    for name, oversample in (("single_crop", False), ("over_sampled", True)):
        test_ds = dataset.make_eval_dataset(data_cfg, test_files, "test", oversample=oversample)
        figures = evaluate(make_predict_step(model, heads, oversample), heads, test_ds)
        write_eval_summaries(writer, figures, cfg.train_steps, f"test_{name}")
        metrics[name] = figures
        for task, f in figures.items():
            png = os.path.join(cfg.model_dir, f"confusion_{task}_{name}.png")
            keras.utils.save_img(png, confusion_image(f["confusion_matrix"], CLASS_NAMES[task],
                                                      f"test fold {data_cfg.test_fold} / {task}, {name}")[0])
    writer.flush()
    with open(os.path.join(cfg.model_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    if cfg.export:
        stored = data_cfg.resize or manifest["image_size"] or 256
        metrics["export_dir"] = export(model, heads, stored, data_cfg.image_size,
                                       os.path.join(cfg.model_dir, "export"))
    return metrics


def quiet_tensorflow_info():
    """Drops TensorFlow's own INFO lines (saver sharding, signature renames, ...) from the
    log: several per checkpoint, they bury the progress lines."""
    tf.get_logger().setLevel("WARNING")
    package = os.path.dirname(tf.__file__)
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= pylogging.WARNING or not record.pathname.startswith(package))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    quiet_tensorflow_info()
    data_cfg, model_cfg, cfg = configs_from_flags()
    try:
        metrics = train_and_evaluate(data_cfg, model_cfg, cfg)
    except Interrupted as e:
        logging.warning("%s", e)
        sys.exit(e.exit_status)
    if metrics is None:
        print("worker done: the chief writes metrics and the export")
        return
    print(f"test fold {data_cfg.test_fold} ({cfg.model_dir}/metrics.json):")
    for name in ("single_crop", "over_sampled"):
        for task, f in metrics[name].items():
            line = f"  {name:12s} {task}: exact {100 * f['accuracy']:.1f}%"
            if "one_off_accuracy" in f:
                line += f", one-off {100 * f['one_off_accuracy']:.1f}%"
            print(line + f" ({f['num_examples']} faces)")
    if metrics["synthetic_data"]:
        print("note: trained and tested on the SYNTHETIC sample, not real Adience.")


if __name__ == "__main__":
    app.run(main)
