"""What an architecture costs, measured on the built model: parameters, multiply-adds per
image, training images/s through the project's own train step, and inference latency."""

import time

import keras
import numpy as np
import tensorflow as tf

from input_pipeline import preprocess
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import load_folds
from training import runtime, steps
from training.task import Task


def multiply_adds(model):
    """Multiply-adds of one image through every Conv, DepthwiseConv, SeparableConv and
    Dense layer, nested models included (pooling, normalisation and activations add well
    under 1% in these networks and are left out)."""
    total = 0
    for layer in _layers(model):
        try:
            out_shape, in_shape = layer.output.shape, layer.input.shape
        except (AttributeError, ValueError):  # Not called on a symbolic input (or called twice).
            continue
        if isinstance(layer, keras.layers.Dense):
            total += int(np.prod(out_shape[1:-1], dtype=np.int64)) * in_shape[-1] * layer.units
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            total += int(np.prod(out_shape[1:3])) * int(np.prod(layer.kernel_size)) * in_shape[-1] * \
                layer.depth_multiplier
        elif isinstance(layer, keras.layers.SeparableConv2D):
            pixels = int(np.prod(out_shape[1:3]))
            total += pixels * in_shape[-1] * layer.depth_multiplier * (int(np.prod(layer.kernel_size)) +
                                                                        layer.filters)
        elif isinstance(layer, keras.layers.Conv2D):
            total += int(np.prod(out_shape[1:3])) * int(np.prod(layer.kernel_size)) * \
                (in_shape[-1] // layer.groups) * layer.filters
    return int(total)


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def inference_latency(model, batch, image_size, repeats=10):
    """Median milliseconds of one compiled call on a batch of `batch` images (after two
    untimed calls that trace and warm up)."""
    images = tf.random.uniform((batch, image_size, image_size, 3), 0, 255)
    call = tf.function(lambda x: model(x, training=False))
    for _ in range(2):
        tf.nest.map_structure(lambda t: t.numpy(), call(images))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), call(images))
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def training_speed(data_cfg, model_cfg, train_cfg, timed_steps=10, warmup=3):
    """(training images/s, the built model): the project's train step (augmentation,
    loss, optimizer; the precision --mixed_precision picks) on the shards' training
    folds, timed over `timed_steps` after `warmup`."""
    policy = runtime.choose_precision(train_cfg.mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    manifest, train_files, _ = load_folds(data_cfg.shards_dir, data_cfg.test_fold)
    data_cfg = dataset.with_stored_size(data_cfg, manifest)
    task = Task.of(data_cfg, model_cfg, train_cfg, manifest)
    model, optimizers = task.build(policy)
    phase = task.phases[0]
    step = steps.make_train_step(model, optimizers[phase.name], tf.distribute.get_strategy(), task.objective,
                                 preprocess.augmentation_of(data_cfg), data_cfg.seed)
    iterator = iter(dataset.make_train_dataset(data_cfg, train_files, task.targets))
    no_stop = tf.constant(False)
    for i in range(warmup):
        step(iterator, tf.constant(i + 1, tf.int64), no_stop)[0].numpy()
    start = time.perf_counter()
    for i in range(timed_steps):
        step(iterator, tf.constant(warmup + i + 1, tf.int64), no_stop)[0].numpy()
    return timed_steps * data_cfg.batch_size / (time.perf_counter() - start), model
