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

import dataclasses
import os
import time

import keras
import tensorflow as tf
from absl import app, flags

import architectures
import training.flags
from input_pipeline import preprocess
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import load_folds
from input_pipeline.reader.targets import make_targets
from training import runtime, steps

flags.adopt_module_key_flags(training.flags)  # model.py's --shards_dir, --arch, --image_size, --batch_size.
flags.DEFINE_integer("steps", 15, "Timed steps per configuration.")
flags.DEFINE_integer("warmup", 3, "Untimed steps first.")
FLAGS = flags.FLAGS
HEADS = {"age": 8}


def build(model_cfg, policy):
    keras.mixed_precision.set_global_policy(policy)
    model = architectures.build(model_cfg, HEADS)
    optimizer = keras.optimizers.SGD(1e-3, momentum=0.9)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def images_per_second(run, num_steps, warmup, batch_size):
    """`run(n)` trains n steps; images/s over `num_steps` of them after `warmup`."""
    run(warmup)
    start = time.perf_counter()
    run(num_steps)
    return num_steps * batch_size / (time.perf_counter() - start)


def custom_loop(model_cfg, data_cfg, policy, train_ds, num_steps, warmup):
    model, optimizer = build(model_cfg, policy)
    step = steps.make_train_step(model, optimizer, tf.distribute.get_strategy(), HEADS, data_cfg.batch_size,
                                 data_cfg.image_size)
    iterator = iter(train_ds)

    def run(n):
        for i in range(n):
            step(iterator, tf.constant(i, tf.int64))[0].numpy()

    return images_per_second(run, num_steps, warmup, data_cfg.batch_size)


def fit(model_cfg, data_cfg, train_ds, num_steps, warmup):
    model, optimizer = build(model_cfg, "float32")
    model.compile(optimizer=optimizer, loss={"age": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    seed = tf.constant([0, 0], tf.int64)
    # The same augmentation, here in the input pipeline (fit's step cannot take it).
    data = train_ds.map(lambda x, y: (preprocess.train_batch(x, seed, data_cfg.image_size), {"age": y["age"]}))

    def run(n):
        model.fit(data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False)

    return images_per_second(run, num_steps, warmup, data_cfg.batch_size)


def main(argv):
    del argv
    data_cfg, model_cfg, _ = training.flags.configs_from_flags(FLAGS)
    data_cfg = dataclasses.replace(data_cfg, val_fraction=0.0)
    model_cfg = dataclasses.replace(model_cfg, weights="none")  # Speed only: no download.
    num_steps, warmup = FLAGS.steps, FLAGS.warmup
    manifest, train_files, _ = load_folds(data_cfg.shards_dir, data_cfg.test_fold)
    train_ds = dataset.make_train_dataset(data_cfg, train_files, make_targets(data_cfg.bins, manifest["label_policy"]))
    mixed = runtime.choose_precision("auto")
    if mixed == "float32":
        mixed = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    print(f"bench_train: {model_cfg.arch} at {data_cfg.image_size}px, batch {data_cfg.batch_size}, {num_steps} steps "
          f"after {warmup}, {os.cpu_count()} cores, GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    rate_custom = custom_loop(model_cfg, data_cfg, "float32", train_ds, num_steps, warmup)
    print(f"custom loop, float32:   {rate_custom:7.1f} images/s")
    rate_fit = fit(model_cfg, data_cfg, train_ds, num_steps, warmup)
    print(f"model.fit, float32:     {rate_fit:7.1f} images/s")
    rate_mixed = custom_loop(model_cfg, data_cfg, mixed, train_ds, num_steps, warmup)
    print(f"custom loop, {mixed}: {rate_mixed:7.1f} images/s")
    print(f"custom/fit: {rate_custom / rate_fit:.2f}")
    print(f"mixed/float32: {rate_mixed / rate_custom:.2f}")


if __name__ == "__main__":
    app.run(main)
