"""Benchmarks the training input pipeline against its ceiling and the usual alternative.

    python scripts/bench_input.py            # after build_input; ~2 min on 2 cores

In one run, over the same faces of the training folds:
(a) bare JPEG decoding (preprocess.decode_jpeg) of the records' bytes (already in memory) in a
    parallel tf.data map: the ceiling of any pipeline that decodes these files; and
    (a1) the same on one thread, the per-core decode rate BENCHMARKS.md works from;
(b) this project's training pipeline, make_train_dataset (read shards, parse, filter,
    shuffle, decode, batch, prefetch; the augmentation runs in the training step);
(c) `keras.utils.image_dataset_from_directory` over the same faces written as JPEG
    files in one folder per age group, resized to the same crop size (what a Keras user
    would otherwise write);
(d) the training pipeline with --cache=decoded in memory, once its first epoch has filled
    the cache (later epochs: no JPEG decoding), and the memory the cache took (the
    process's resident memory before and after that first epoch).
Prints images/s of each, then `decode per core`, `pipeline/decode: X.XX`,
`pipeline/image_dataset_from_directory: X.XX` and `decoded_cache/decode: X.XX` last.
"""

import dataclasses
import math
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf
from absl import app, flags

from input_pipeline import preprocess
from input_pipeline.config import DataConfig
from input_pipeline.reader import cache, dataset, parse
from input_pipeline.reader.manifest import load_folds
from input_pipeline.reader.targets import make_targets

flags.DEFINE_string("shards_dir", DataConfig.shards_dir, "A build_input output folder.")
flags.DEFINE_integer("image_size", DataConfig.image_size, "Crop size.")
flags.DEFINE_integer("resize", DataConfig.resize, "Resize the stored faces to this side first; 0: as stored.")
flags.DEFINE_integer("batch_size", DataConfig.batch_size, "Batch size.")
flags.DEFINE_integer("batches", 60, "Batches timed per pipeline (after one warm-up batch).")
FLAGS = flags.FLAGS


def images_per_second(ds, batches):
    iterator = iter(ds)
    next(iterator)  # Warm-up: graph building, thread pools, file opening.
    start, count = time.perf_counter(), 0
    for _ in range(batches):
        count += int(tf.shape(next(iterator)[0])[0])
    return count / (time.perf_counter() - start)


def resident_mb():
    """This process's resident memory (Linux /proc), MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def decoded_cache(cfg, train_files, targets, faces):
    """(images/s of the pipeline with a filled in-memory decoded cache, MB the first epoch added)."""
    cfg = dataclasses.replace(cfg, cache="decoded")
    iterator = iter(dataset.make_train_dataset(cfg, train_files, targets))
    before = resident_mb()
    for _ in range(math.ceil(faces / cfg.batch_size) + 1):  # The first epoch fills the cache.
        next(iterator)
    grown = resident_mb() - before
    start = time.perf_counter()
    count = sum(int(tf.shape(next(iterator)[0])[0]) for _ in range(FLAGS.batches))
    return count / (time.perf_counter() - start), grown


def main(argv):
    del argv
    cfg = DataConfig(shards_dir=FLAGS.shards_dir, image_size=FLAGS.image_size, resize=FLAGS.resize,
                     batch_size=FLAGS.batch_size, val_fraction=0.0)
    manifest, train_files, _ = load_folds(cfg.shards_dir, cfg.test_fold)
    targets = make_targets(cfg.bins, manifest["label_policy"])
    records = []
    for batch in tf.data.TFRecordDataset(train_files).batch(256).map(parse.parse):
        records += [(jpeg, int(age)) for jpeg, age in zip(batch["encoded"].numpy(), targets(batch)["age"].numpy(),
                                                          strict=True) if age >= 0]
    print(f"bench_input: {len(records)} faces of the training folds of {cfg.shards_dir}, "
          f"batch {cfg.batch_size}, crop {cfg.image_size}, {os.cpu_count()} cores")

    jpegs = tf.constant([jpeg for jpeg, _ in records])

    def bare(threads):
        ds = (tf.data.Dataset.from_tensor_slices(jpegs).repeat()
              .map(lambda j: (preprocess.decode_jpeg(j), 0), num_parallel_calls=threads)
              .batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE))
        if threads == 1:
            options = tf.data.Options()
            options.threading.private_threadpool_size = 1
            ds = ds.with_options(options)
        return ds

    rate_one_core = images_per_second(bare(1), FLAGS.batches)
    print(f"(a1) decode_jpeg on one core:     {rate_one_core:8.1f} images/s")
    rate_decode = images_per_second(bare(tf.data.AUTOTUNE), FLAGS.batches)
    print(f"(a) bare decode_jpeg:             {rate_decode:8.1f} images/s")

    rate_pipeline = images_per_second(dataset.make_train_dataset(cfg, train_files, targets), FLAGS.batches)
    print(f"(b) training pipeline:            {rate_pipeline:8.1f} images/s")

    folder = tempfile.mkdtemp(prefix="bench_input_")
    try:
        for i, (jpeg, age) in enumerate(records):
            os.makedirs(os.path.join(folder, str(age)), exist_ok=True)
            with open(os.path.join(folder, str(age), f"{i}.jpg"), "wb") as f:
                f.write(jpeg)
        keras_ds = keras.utils.image_dataset_from_directory(
            folder, image_size=(cfg.image_size, cfg.image_size), batch_size=cfg.batch_size, shuffle=True,
            seed=0, verbose=False).repeat().prefetch(tf.data.AUTOTUNE)
        rate_keras = images_per_second(keras_ds, FLAGS.batches)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"(c) image_dataset_from_directory: {rate_keras:8.1f} images/s")
    rate_cached, grown = decoded_cache(cfg, train_files, targets, len(records))
    side = cfg.resize or manifest["image_size"]
    print(f"(d) decoded cache, filled:        {rate_cached:8.1f} images/s")
    print(f"decoded cache memory: {len(records)} faces at {side}x{side}: {grown:.0f} MB resident after the first "
          f"epoch ({1000 * grown / len(records):.0f} MB per 1,000 faces; the pixels alone: "
          f"{cache.bytes_per_face(side) / 1e3:.0f} MB per 1,000)")
    print(f"decode per core: {rate_one_core:.0f} images/s")
    print(f"pipeline/decode: {rate_pipeline / rate_decode:.2f}")
    print(f"pipeline/image_dataset_from_directory: {rate_pipeline / rate_keras:.2f}")
    print(f"decoded_cache/decode: {rate_cached / rate_decode:.2f}")


if __name__ == "__main__":
    app.run(main)
