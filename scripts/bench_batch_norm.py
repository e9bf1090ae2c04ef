"""Benchmarks the compact network's training step with Keras's BatchNormalization against
architectures/batch_norm.py's fused one (what architectures/compact.py uses).

    python scripts/bench_batch_norm.py --flagfile=configs/real_faces.flags   # ~5 min on 2 cores

The preset's task (heads, bins, augmentation; AdamW, without the EMA, clipping or XLA)
through the project's train step (training.steps.make_train_step), on one batch of
--shards_dir's training faces held in memory, so only the step is timed. The two networks
are timed in turns, --rounds times each, --steps steps a turn after 3 untimed steps each,
the first to go alternating from round to round, so a drift in the machine's speed falls on
both. Prints each turn's images/s, then the medians and `fused/keras: X.XX` last.
"""

import dataclasses
import os
import statistics
import time

import keras
import tensorflow as tf
from absl import app, flags

import training.flags
from architectures import batch_norm, compact
from input_pipeline import preprocess
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import load_folds
from training import runtime, steps
from training.task import Task

flags.adopt_module_key_flags(training.flags)  # model.py's flags: --flagfile=configs/real_faces.flags works.
flags.DEFINE_integer("steps", 10, "Timed steps per turn.", lower_bound=1)
flags.DEFINE_integer("rounds", 6, "Timed turns per network.", lower_bound=1)
FLAGS = flags.FLAGS


def make_run(norm_layer, model_cfg, data_cfg, task, batch):
    """`run(n)` trains n steps of the compact network with `norm_layer` on `batch`."""
    model = compact.build(model_cfg, task.sizes, data_cfg.image_size, norm_layer=norm_layer)
    optimizer = keras.optimizers.AdamW(1e-3)
    optimizer.build(model.trainable_variables)
    step = steps.make_train_step(model, optimizer, tf.distribute.get_strategy(), task.objective,
                                 preprocess.augmentation_of(data_cfg))
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())

    def run(n):
        for i in range(n):
            step(iterator, tf.constant(i, tf.int64))[0].numpy()

    return run


def main(argv):
    del argv
    data_cfg, model_cfg, train_cfg = training.flags.configs_from_flags(FLAGS)
    data_cfg = dataclasses.replace(data_cfg, val_fraction=0.0)
    runtime.start(train_cfg, data_cfg.seed, data_cfg.deterministic)  # The precision model.py would use.
    manifest, train_files, _ = load_folds(data_cfg.shards_dir, data_cfg.test_fold)
    data_cfg = dataset.with_stored_size(data_cfg, manifest)
    task = Task.of(data_cfg, model_cfg, train_cfg, manifest)
    batch = next(iter(dataset.make_train_dataset(data_cfg, train_files, task.targets)))
    print(f"bench_batch_norm: compact at {data_cfg.image_size}px, batch {data_cfg.batch_size}, heads "
          f"{','.join(task.sizes)}, {keras.mixed_precision.global_policy().name}, {FLAGS.rounds} turns of "
          f"{FLAGS.steps} steps each, {os.cpu_count()} cores")
    runs = {"keras": make_run(keras.layers.BatchNormalization, model_cfg, data_cfg, task, batch),
            "fused": make_run(batch_norm.BatchNorm, model_cfg, data_cfg, task, batch)}
    for run in runs.values():
        run(3)  # Tracing and thread pools.
    rates = {name: [] for name in runs}
    for turn in range(FLAGS.rounds):
        for name in (("keras", "fused") if turn % 2 == 0 else ("fused", "keras")):
            run = runs[name]
            start = time.perf_counter()
            run(FLAGS.steps)
            rates[name].append(FLAGS.steps * data_cfg.batch_size / (time.perf_counter() - start))
            print(f"turn {turn + 1}, {name:5s} BatchNorm: {rates[name][-1]:7.1f} images/s", flush=True)
    keras_rate, fused_rate = statistics.median(rates["keras"]), statistics.median(rates["fused"])
    print(f"keras BatchNormalization: {keras_rate:7.1f} images/s (median)")
    print(f"fused BatchNorm:          {fused_rate:7.1f} images/s (median)")
    print(f"fused/keras: {fused_rate / keras_rate:.2f}")


if __name__ == "__main__":
    app.run(main)
