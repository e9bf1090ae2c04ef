"""Benchmarks the training step: custom loop vs model.fit, float32 vs mixed precision.

    python scripts/bench_train.py            # after build_input; ~3 min on 2 cores

Same model (Levi-Hassner by default), same data (the training folds of --shards_dir
through the project's input pipeline and augmentation), same optimizer, in one run:
(1) the custom loop's step (training.steps.make_train_step) in float32; (2) keras model.fit on
the same model in float32; (3) the custom loop under mixed precision (mixed_float16 on
a GPU, mixed_bfloat16 on a CPU with bf16, as --mixed_precision=auto picks). Each is
timed over --steps steps after --warmup steps (tracing, thread pools). Prints images/s
and `custom/fit: X.XX`, `mixed/float32: X.XX` last.
"""

import os
import time

import keras
import tensorflow as tf
from absl import app, flags

import architectures
import training.flags  # noqa: F401 (defines model.py's flags: --shards_dir, --arch, --image_size, --batch_size)
from architectures.config import ModelConfig
from input_pipeline import preprocess
from input_pipeline.config import DataConfig
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import load_folds
from training import runtime, steps

flags.DEFINE_integer("steps", 15, "Timed steps per configuration.")
flags.DEFINE_integer("warmup", 3, "Untimed steps first.")
FLAGS = flags.FLAGS
HEADS = {"age": 8}


def build(policy):
    keras.mixed_precision.set_global_policy(policy)
    model = architectures.build(ModelConfig(arch=FLAGS.arch, image_size=FLAGS.image_size, weights="none"), HEADS)
    optimizer = keras.optimizers.SGD(1e-3, momentum=0.9)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def custom_loop(policy, train_ds):
    model, optimizer = build(policy)
    step = steps.make_train_step(model, optimizer, tf.distribute.get_strategy(), HEADS, FLAGS.batch_size,
                                   FLAGS.image_size)
    iterator = iter(train_ds)
    for i in range(FLAGS.warmup):
        step(iterator, tf.constant(i, tf.int64))[0].numpy()
    start = time.perf_counter()
    for i in range(FLAGS.steps):
        step(iterator, tf.constant(i, tf.int64))[0].numpy()
    return FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start)


def fit(train_ds):
    model, optimizer = build("float32")
    model.compile(optimizer=optimizer, loss={"age": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    seed = tf.constant([0, 0], tf.int64)
    # The same augmentation, here in the input pipeline (fit's step cannot take it).
    data = train_ds.map(lambda x, y: (preprocess.train_batch(x, seed, FLAGS.image_size), {"age": y["age"]}))
    model.fit(data, steps_per_epoch=FLAGS.warmup, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0, shuffle=False)
    return FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start)


def main(argv):
    del argv
    cfg = DataConfig(shards_dir=FLAGS.shards_dir, image_size=FLAGS.image_size, batch_size=FLAGS.batch_size,
                     val_fraction=0.0)
    _, train_files, _ = load_folds(cfg.shards_dir, cfg.test_fold)
    train_ds = dataset.make_train_dataset(cfg, train_files)
    mixed = runtime.choose_precision("auto")
    if mixed == "float32":
        mixed = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    print(f"bench_train: {FLAGS.arch} at {FLAGS.image_size}px, batch {FLAGS.batch_size}, {FLAGS.steps} steps "
          f"after {FLAGS.warmup}, {os.cpu_count()} cores, GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    rate_custom = custom_loop("float32", train_ds)
    print(f"custom loop, float32:   {rate_custom:7.1f} images/s")
    rate_fit = fit(train_ds)
    print(f"model.fit, float32:     {rate_fit:7.1f} images/s")
    rate_mixed = custom_loop(mixed, train_ds)
    print(f"custom loop, {mixed}: {rate_mixed:7.1f} images/s")
    print(f"custom/fit: {rate_custom / rate_fit:.2f}")
    print(f"mixed/float32: {rate_mixed / rate_custom:.2f}")


if __name__ == "__main__":
    app.run(main)
