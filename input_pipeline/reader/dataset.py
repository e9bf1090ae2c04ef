"""A shard set's files -> tf.data pipelines for training, validation and testing.

The Adience protocol: the test fold's files are the test set and the other four folds
train (reader.manifest.split_files). Validation is a slice of the training folds chosen
by subject (reader.split). Images leave these pipelines as uint8; every resize and crop
is a function of input_pipeline/preprocess.py. Labels leave them as {head: int32, -1
unknown} for every head (reader.targets: `targets` puts ages into the run's bins).

Order: build_input writes each fold's faces in a seeded random order, training reads
every one of its shard files at once, record by record, and shuffles them again; with a
cache, every later epoch is a new permutation of the cached faces (make_train_dataset).
"""

import dataclasses
import functools
import hashlib
import json
import os

import tensorflow as tf
from absl import logging

from input_pipeline import labels, preprocess
from input_pipeline.reader import cache, parse, split
from input_pipeline.reader.manifest import examples_in

AUTOTUNE = tf.data.AUTOTUNE
# A cache in files is read back two shard files at a time, in a new order each epoch: a
# face's place in an epoch then depends mostly on where its file falls in that epoch's
# order, so epochs do not replay one another (reading every file at once would deal
# faces out in the same round-robin order every epoch).
DISK_CACHE_FILES_AT_ONCE = 2


def _labels(record):
    return {head: record[head] for head in labels.HEADS}


def _image(record, resize):
    """The decoded uint8 face, resized to `resize` x `resize` if that is set (0: as stored)."""
    return preprocess.resize(preprocess.decode_jpeg(record["encoded"]), resize)


def _read_buffer(num_files):
    """Bytes of read-ahead per open shard file: 1 MB, less when many files are open at once."""
    return max(64 << 10, min(1 << 20, (32 << 20) // max(num_files, 1)))


def _records(files, cfg, split_name, targets, deterministic, files_at_once, num_files, record_shard=None):
    """Records of `split_name` with a known label for some head, parsed but not decoded,
    from `files` (a dataset of paths) read `files_at_once` at a time, record by record.
    `record_shard` (count, index) keeps every count-th record (workers sharing files)."""
    records = files.interleave(lambda f: tf.data.TFRecordDataset(f, buffer_size=_read_buffer(num_files)),
                               cycle_length=files_at_once, block_length=1, num_parallel_calls=AUTOTUNE,
                               deterministic=deterministic)
    if record_shard is not None:
        records = records.shard(*record_shard)
    keep = functools.partial(split.keep, split=split_name, heads=cfg.head_names, val_fraction=cfg.val_fraction)

    def parse_and_filter(serialized):
        records = parse.parse(serialized)
        records = {"encoded": records["encoded"], "subject_id": records["subject_id"], **targets(records)}
        mask = keep(records)
        return {key: tf.boolean_mask(value, mask) for key, value in records.items()}

    # Parse and filter batches of records, then unbatch: one vectorised parse and mask
    # per 128 records instead of a parse and a filter call per record, and no JPEG is
    # decoded for a record that is dropped.
    return (records.batch(128)
            .map(parse_and_filter, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
            .unbatch())


def read_records(files, cfg, split_name, targets):
    """One ordered pass over the parsed records of `split_name` in `files` (a list of paths)."""
    return _records(tf.data.Dataset.from_tensor_slices(files), cfg, split_name, targets, deterministic=True,
                    files_at_once=8, num_files=8)


def _train_files(files, cfg, input_context):
    """(this input pipeline's training files, shuffled anew each epoch, and the record
    shard it keeps when there are fewer files than pipelines, or None)."""
    workers, worker = 1, 0
    if input_context is not None:
        workers, worker = input_context.num_input_pipelines, input_context.input_pipeline_id
    paths = tf.data.Dataset.from_tensor_slices(files)
    record_shard = None
    if workers > 1 and len(files) >= workers:
        paths = paths.shard(workers, worker)  # Each worker reads its own files: no record is seen twice.
    elif workers > 1:
        record_shard = (workers, worker)  # Every worker reads them all and keeps its share of records.
    return paths.shuffle(len(files), seed=cfg.seed, reshuffle_each_iteration=True), record_shard


def with_stored_size(cfg, manifest):
    """`cfg`, resizing to 256 when the shards hold original JPEGs of varying size
    (build_input --image_size=0) and --resize is not set: batches need one size."""
    if manifest["image_size"] or cfg.resize:
        return cfg
    logging.info("the shards hold faces of varying size: resizing them to 256 (set --resize to change)")
    return dataclasses.replace(cfg, resize=256)


def make_train_dataset(cfg, files, targets, input_context=None):
    """Endless shuffled batches of (uint8 faces as stored, {head: labels}), `targets`
    from reader.targets.make_targets.

    Every training file is read at once, record by record, and the records shuffled in
    a --shuffle_buffer window. The training augmentation (preprocess.train_batch: random
    crop, flip and, with --color_jitter, brightness and contrast) runs in the training
    step, not here. Every stored face must have the same size (build_input's default),
    or cfg.resize must be set. With an `input_context` (tf.distribute), batches are per
    replica.

    cfg.cache keeps the parsed records (`encoded`) or the decoded, resized faces
    (`decoded`) after the first pass. In memory, each later epoch is a new permutation
    of the whole cache (its shuffle buffer holds every face: references to the cached
    tensors, no copy). In files under cfg.cache_dir, each shard file gets its own cache
    file, and each epoch reads them in a new order, DISK_CACHE_FILES_AT_ONCE at a time,
    through the --shuffle_buffer window (a whole-epoch buffer would hold every face in
    memory). With cfg.data_service the whole pipeline runs on tf.data service workers,
    which split the files between them (each example once per epoch) and stream the
    batches.
    """
    deterministic = cfg.deterministic
    batch_size = cfg.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(cfg.batch_size)
    # A tf.data service splits the files between its workers; the trainers do not shard them.
    context = None if cfg.data_service else input_context
    paths, record_shard = _train_files(files, cfg, context)
    read = functools.partial(_records, cfg=cfg, split_name="train", targets=targets, deterministic=deterministic,
                             num_files=len(files), record_shard=record_shard)

    def decode(record):
        return _image(record, cfg.resize), _labels(record)

    def decode_all(records):
        return records.map(decode, num_parallel_calls=AUTOTUNE, deterministic=deterministic)

    def shuffle(examples, buffer_size):
        return examples.shuffle(buffer_size, seed=cfg.seed, reshuffle_each_iteration=True)

    if cfg.cache != "none" and cfg.cache_dir:
        pipelines = 1 if context is None else context.num_input_pipelines
        prefix = cache.cache_file(cfg, files, 0 if context is None else context.input_pipeline_id, pipelines)

        def cached(path):  # One shard file's records (decoded, for `decoded`), cached in a file of their own.
            records = read(tf.data.Dataset.from_tensors(path), files_at_once=1)
            records = decode_all(records) if cfg.cache == "decoded" else records
            return records.cache(tf.strings.join([prefix, "_", tf.strings.split(path, os.sep)[-1]]))

        examples = paths.interleave(cached, cycle_length=DISK_CACHE_FILES_AT_ONCE, block_length=1,
                                    num_parallel_calls=AUTOTUNE, deterministic=deterministic)
        examples = shuffle(examples, cfg.shuffle_buffer).repeat()
        if cfg.cache == "encoded":
            examples = decode_all(examples)
    else:
        records = read(paths, files_at_once=len(files))
        # A cache in memory is shuffled whole: every epoch a new permutation of every face.
        epoch = max(cfg.shuffle_buffer, examples_in(cfg.shards_dir, files)) if cfg.cache != "none" else 0
        if cfg.cache == "decoded":
            examples = shuffle(decode_all(records).cache(), epoch).repeat()  # No JPEG work after epoch 1.
        elif cfg.cache == "encoded":
            # Encoded JPEGs: ~25 KB a face, decoded again each epoch.
            examples = decode_all(shuffle(records.cache(), epoch).repeat())
        else:
            # Shuffle encoded records (small) before the expensive decode; shuffling before
            # repeat keeps epochs apart (every example once per epoch).
            examples = decode_all(shuffle(records, cfg.shuffle_buffer).repeat())
    batches = examples.batch(batch_size, drop_remainder=True)  # Fixed shapes: one compiled step.
    if cfg.data_service:
        batches = batches.apply(tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC, service=cfg.data_service,
            job_name=_job_name(cfg, files, input_context)))
    batches = batches.prefetch(AUTOTUNE)  # Overlap input with the training step.
    options = tf.data.Options()
    options.deterministic = deterministic
    return batches.with_options(options)


def _job_name(cfg, files, input_context):
    """Trainers of one multi-worker run share one tf.data service job (each gets other
    batches); a single trainer needs none."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return None
    settings = json.dumps([dataclasses.asdict(cfg), sorted(files)], sort_keys=True, default=str)
    return "train_" + hashlib.sha256(settings.encode()).hexdigest()[:16]


def make_eval_dataset(cfg, files, split_name, targets, oversample=False):
    """One ordered pass over `split_name` ("val" or "test"): uint8 centre crops, or with
    `oversample` the paper's 10 crops per face, shaped (B, 10, S, S, 3). The crops are
    preprocess.serving_crop(s), as in every export signature and prediction path."""
    if split_name not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split_name!r}")
    records = read_records(files, cfg, split_name, targets)
    crops = preprocess.serving_ten_crops if oversample else preprocess.serving_crop

    def decode_and_crop(record):
        return crops(preprocess.decode_jpeg(record["encoded"]), cfg.resize, cfg.image_size), _labels(record)

    return (records.map(decode_and_crop, num_parallel_calls=AUTOTUNE)
            .batch(cfg.batch_size)
            .prefetch(AUTOTUNE))
