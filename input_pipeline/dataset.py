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


def load_folds(shards_dir, test_fold):
    """(manifest, training-fold files, test-fold files) of a shard set."""
    manifest = load_manifest(shards_dir)
    return (manifest, *split_files(manifest, shards_dir, test_fold))


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
    """The decoded uint8 face, resized to `resize` x `resize` if that is set."""
    image = decode.decode_image(record["encoded"])
    if resize:
        image = tf.cast(tf.round(tf.image.resize(image, (resize, resize), antialias=True)), tf.uint8)
    return image


def _read(files, cfg, split, deterministic, input_context=None):
    """Records of `split` with known labels, parsed but not decoded."""
    workers, worker = 1, 0
    if input_context is not None:
        workers, worker = input_context.num_input_pipelines, input_context.input_pipeline_id
    shard_files = workers > 1 and len(files) >= workers
    files = tf.data.Dataset.from_tensor_slices(files)
    if shard_files:
        # Multi-worker: each worker reads its own files, so no record is seen twice.
        files = files.shard(workers, worker)
    if split == "train":
        files = files.shuffle(1024, seed=cfg.seed, reshuffle_each_iteration=True)
    # Parallel interleave reads several shards at once: file I/O overlaps, and
    # consecutive records come from different shards, i.e. different subjects.
    records = files.interleave(lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20), cycle_length=8,
                               block_length=1, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if workers > 1 and not shard_files:
        # Fewer files than workers: every worker reads them all and keeps its share of records.
        records = records.shard(workers, worker)
    keep = functools.partial(_keep, split=split, task=cfg.task, val_fraction=cfg.val_fraction)

    def parse_and_filter(serialized):
        records = decode.parse(serialized)
        mask = keep(records)
        return {key: tf.boolean_mask(value, mask) for key, value in records.items()}

    # Parse and filter batches of records, then unbatch: one vectorised parse and mask
    # per 128 records instead of a parse and a filter call per record, and no JPEG is
    # decoded for a record that is dropped.
    return (records.batch(128)
            .map(parse_and_filter, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
            .unbatch())


def make_train_dataset(cfg, files, input_context=None):
    """Endless shuffled batches of (uint8 faces as stored, {"age", "gender"} labels).

    The training augmentation (augment.train_batch: random crop, flip, brightness and
    contrast) runs in the training step, not here. Every stored face must have the
    same size (build_input's default), or cfg.resize must be set. With an
    `input_context` (tf.distribute), batches are per replica.
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
    batches = (records.map(lambda r: (_image(r, cfg.resize), _labels(r)), num_parallel_calls=AUTOTUNE,
                           deterministic=deterministic)
               .batch(batch_size, drop_remainder=True)  # Fixed shapes: one compiled step.
               .prefetch(AUTOTUNE))  # Overlap input with the training step.
    options = tf.data.Options()
    options.deterministic = deterministic
    return batches.with_options(options)


def make_eval_dataset(cfg, files, split, oversample=False):
    """One ordered pass over `split` ("val" or "test"): uint8 centre crops, or with
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
