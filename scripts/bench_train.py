"""Benchmarks the training step: custom loop vs model.fit, float32 vs mixed precision and
XLA; and, with a minimal model, what the Python loop around the step costs.

    python scripts/bench_train.py                # after build_input; ~4 min on 2 cores
    python scripts/bench_train.py --arch=tiny    # the loop's overhead; ~1 min

Same model (Levi-Hassner by default), same data (the training folds of --shards_dir
through the project's input pipeline and augmentation), same optimizer, in one run:
(1) the custom loop's step (training.steps.make_train_step) in float32; (2) keras model.fit on
the same model in float32; (3) the custom loop under mixed precision (mixed_float16 on
a GPU, mixed_bfloat16 on a CPU with bf16, as --mixed_precision=auto picks); (4) the
custom loop in float32 with --jit_compile (XLA). Each is timed over --steps steps after
--warmup steps (tracing, thread pools). Prints images/s and `custom/fit: X.XX`,
`mixed/float32: X.XX`, `xla/float32: X.XX` last.

With --arch=tiny (one small convolution: the step costs almost nothing, so the loop is
what is measured), on one batch held in memory (no input cost), --loop_steps steps of
the project's train step (with its on-device StepTotals) three ways: all inside one
tf.function (a tf.while_loop: no Python at all), from a Python loop that reads the
totals back every step, and from one that reads them back every --log_every steps, as
model.py does. Prints ms per step of each, then `loop_overhead_ms` (Python loop minus
in-graph loop, per step) with the per-step read-back and without, last.
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
from training import losses, runtime, steps

flags.adopt_module_key_flags(training.flags)  # model.py's --shards_dir, --arch, --image_size, --batch_size.
flags.DEFINE_integer("steps", 15, "Timed steps per configuration.")
flags.DEFINE_integer("warmup", 3, "Untimed steps first.")
flags.DEFINE_integer("loop_steps", 300, "--arch=tiny: timed steps of each loop.", lower_bound=10)
FLAGS = flags.FLAGS
HEADS = {"age": 8}


def build(model_cfg, policy, image_size):
    keras.mixed_precision.set_global_policy(policy)
    model = architectures.build(model_cfg, HEADS, image_size)
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


def custom_loop(model_cfg, data_cfg, policy, train_ds, num_steps, warmup, jit_compile=False):
    model, optimizer = build(model_cfg, policy, data_cfg.image_size)
    step = steps.make_train_step(model, optimizer, tf.distribute.get_strategy(), losses.Objective(HEADS),
                                 preprocess.augmentation(data_cfg.image_size), jit_compile=jit_compile)
    iterator = iter(train_ds)

    def run(n):
        for i in range(n):
            step(iterator, tf.constant(i, tf.int64))[0].numpy()

    return images_per_second(run, num_steps, warmup, data_cfg.batch_size)


def fit(model_cfg, data_cfg, train_ds, num_steps, warmup):
    model, optimizer = build(model_cfg, "float32", data_cfg.image_size)
    model.compile(optimizer=optimizer, loss={"age": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    seed = tf.constant([0, 0], tf.int64)
    # The same augmentation, here in the input pipeline (fit's step cannot take it).
    data = train_ds.map(lambda x, y: (preprocess.train_batch(x, seed, data_cfg.image_size), {"age": y["age"]}))

    def run(n):
        model.fit(data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False)

    return images_per_second(run, num_steps, warmup, data_cfg.batch_size)


def loop_overhead(model_cfg, data_cfg, train_ds, num_steps, read_every):
    """ms per step: (in one tf.function, Python loop reading back every step, Python loop
    reading back every `read_every` steps)."""
    model, optimizer = build(model_cfg, "float32", data_cfg.image_size)
    totals = steps.StepTotals(HEADS)
    step = steps.make_train_step(model, optimizer, tf.distribute.get_strategy(), losses.Objective(HEADS),
                                 preprocess.augmentation(data_cfg.image_size), totals=totals)
    iterator = iter(tf.data.Dataset.from_tensors(next(iter(train_ds))).repeat())  # One batch: input is free.

    @tf.function
    def in_graph(n):
        for i in tf.range(n, dtype=tf.int64):
            step(iterator, i)

    def python_loop(n, every):
        for i in range(1, n + 1):
            step(iterator, tf.constant(i, tf.int64))
            if i % every == 0:
                totals.read()
        totals.read()

    def ms_per_step(run):
        run(FLAGS.warmup)
        start = time.perf_counter()
        run(num_steps)
        return 1000 * (time.perf_counter() - start) / num_steps

    return (ms_per_step(lambda n: (in_graph(tf.constant(n, tf.int64)), totals.read())),
            ms_per_step(lambda n: python_loop(n, 1)), ms_per_step(lambda n: python_loop(n, read_every)))


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
    timed = FLAGS.loop_steps if model_cfg.arch == "tiny" else num_steps
    print(f"bench_train: {model_cfg.arch} at {data_cfg.image_size}px, batch {data_cfg.batch_size}, {timed} steps "
          f"after {warmup}, {os.cpu_count()} cores, GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    if model_cfg.arch == "tiny":
        graph, every_step, every_n = loop_overhead(model_cfg, data_cfg, train_ds, FLAGS.loop_steps, FLAGS.log_every)
        print(f"in one tf.function (no Python):        {graph:6.2f} ms/step")
        print(f"Python loop, read back every step:     {every_step:6.2f} ms/step")
        print(f"Python loop, read back every {FLAGS.log_every} steps: {every_n:6.2f} ms/step")
        print(f"loop_overhead_ms (read back every step): {every_step - graph:.2f}")
        print(f"loop_overhead_ms: {every_n - graph:.2f}")
        return
    rate_custom = custom_loop(model_cfg, data_cfg, "float32", train_ds, num_steps, warmup)
    print(f"custom loop, float32:   {rate_custom:7.1f} images/s")
    rate_fit = fit(model_cfg, data_cfg, train_ds, num_steps, warmup)
    print(f"model.fit, float32:     {rate_fit:7.1f} images/s")
    rate_mixed = custom_loop(model_cfg, data_cfg, mixed, train_ds, num_steps, warmup)
    print(f"custom loop, {mixed}: {rate_mixed:7.1f} images/s")
    rate_xla = custom_loop(model_cfg, data_cfg, "float32", train_ds, num_steps, warmup, jit_compile=True)
    print(f"custom loop, float32, XLA: {rate_xla:7.1f} images/s")
    print(f"custom/fit: {rate_custom / rate_fit:.2f}")
    print(f"mixed/float32: {rate_mixed / rate_custom:.2f}")
    print(f"xla/float32: {rate_xla / rate_custom:.2f}")


if __name__ == "__main__":
    app.run(main)
