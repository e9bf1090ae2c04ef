"""A build_input shard set -> tf.data pipelines for training, validation and testing.

The Adience protocol: `test_fold` is the test set and the other four folds train.
Validation is a slice of the training folds chosen by *subject* (decode.in_validation),
never by image, so validation faces belong to people the model has not seen.
"""

import functools
import json
import os

import tensorflow as tf

from input_pipeline import augment, decode

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ("train", "val", "test")


def load_manifest(shards_dir):
    path = os.path.join(shards_dir, "manifest.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: build the shards first (python build_input.py)")
    with open(path) as f:
        return json.load(f)


def split_files(manifest, shards_dir, test_fold):
    """(training-fold files, test-fold files), as full paths."""
    if not 0 <= test_fold < manifest["num_folds"]:
        raise ValueError(f"test_fold must be in 0..{manifest['num_folds'] - 1}, got {test_fold}")
    train, test = [], []
    for fold in manifest["folds"]:
        paths = [os.path.join(shards_dir, name) for name in fold["files"]]
        (test if fold["fold"] == test_fold else train).extend(paths)
    return train, test


def _keep(record, split, task, val_fraction):
    """The record belongs to `split` and has the label(s) `task` trains on."""
    if task == "age_gender":
        known = (record["age"] >= 0) | (record["gender"] >= 0)  # The loss masks the other.
    else:
        known = record[task] >= 0
    if split == "test":
        return known
    in_val = decode.in_validation(record["subject_id"], val_fraction)
    return known & (in_val if split == "val" else tf.logical_not(in_val))


def _labels(record):
    return {"age": record["age"], "gender": record["gender"]}


def _image(record, resize):
    image = decode.decode_image(record["encoded"])
    if resize:
        image = tf.image.resize(image, (resize, resize), antialias=True)
    return image


def _read(files, cfg, split, deterministic, input_context=None):
    """Records of `split` with known labels, parsed but not decoded."""
    files = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        # Multi-worker: each worker reads its own files, so no record is seen twice.
        files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if split == "train":
        files = files.shuffle(1024, seed=cfg.seed, reshuffle_each_iteration=True)
    # Parallel interleave reads several shards at once: file I/O overlaps, and
    # consecutive records come from different shards, i.e. different subjects.
    records = files.interleave(tf.data.TFRecordDataset, cycle_length=8, block_length=1,
                               num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    # Parse before filtering (cheap, no JPEG decode) so unwanted records cost nothing more.
    records = records.map(decode.parse, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    keep = functools.partial(_keep, split=split, task=cfg.task, val_fraction=cfg.val_fraction)
    return records.filter(keep)


def make_train_dataset(cfg, files, input_context=None):
    """Endless shuffled, augmented batches of (float32 images, {"age", "gender"} labels).

    With an `input_context` (tf.distribute), batches are per replica.
    """
    deterministic = cfg.deterministic
    batch_size = cfg.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(cfg.batch_size)
    records = _read(files, cfg, "train", deterministic, input_context)
    if cfg.cache:
        records = records.cache()  # Encoded JPEGs: ~25 KB a face, decoded again each epoch.
    # Shuffle encoded records (small) before the expensive decode, then repeat so the
    # shuffle buffer refills across epoch boundaries.
    records = records.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True).repeat()
    # One stateless seed pair per example: augmentation is reproducible in order.
    seeds = tf.data.Dataset.random(seed=cfg.seed).batch(2)
    crop = functools.partial(augment.train_crop, size=cfg.image_size)

    def decode_and_augment(record, seed):
        return crop(_image(record, cfg.resize), seed), _labels(record)

    batches = (tf.data.Dataset.zip(records, seeds)
               .map(decode_and_augment, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
               .batch(batch_size, drop_remainder=True)  # Fixed shapes: one compiled step.
               .prefetch(AUTOTUNE))  # Overlap input with the training step.
    options = tf.data.Options()
    options.deterministic = deterministic
    return batches.with_options(options)


def make_eval_dataset(cfg, files, split, oversample=False):
    """One ordered pass over `split` ("val" or "test"): centre crops, or with
    `oversample` the paper's 10 crops per face, shaped (B, 10, S, S, 3)."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    records = _read(files, cfg, split, deterministic=True)
    if oversample:
        crop = functools.partial(augment.ten_crops, size=cfg.image_size)
    else:
        crop = functools.partial(augment.center_crop, size=cfg.image_size)

    def decode_and_crop(record):
        return crop(_image(record, cfg.resize)), _labels(record)

    return (records.map(decode_and_crop, num_parallel_calls=AUTOTUNE)
            .batch(cfg.batch_size)
            .prefetch(AUTOTUNE))
