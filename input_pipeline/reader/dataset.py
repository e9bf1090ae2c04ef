"""A shard set's files -> tf.data pipelines for training, validation and testing.

The Adience protocol: the test fold's files are the test set and the other four folds
train (reader.manifest.split_files). Validation is a slice of the training folds chosen
by subject (reader.split). Images leave these pipelines as uint8; every resize and crop
is a function of input_pipeline/preprocess.py. Labels leave them as {head: int32, -1
unknown} for every head (reader.targets: `targets` puts ages into the run's bins).
"""

import dataclasses
import functools
import hashlib
import json

import tensorflow as tf

from input_pipeline import labels, preprocess
from input_pipeline.reader import cache, parse, split

AUTOTUNE = tf.data.AUTOTUNE


def _labels(record):
    return {head: record[head] for head in labels.HEADS}


def _image(record, resize):
    """The decoded uint8 face, resized to `resize` x `resize` if that is set (0: as stored)."""
    return preprocess.resize(preprocess.decode_jpeg(record["encoded"]), resize)


def _read(files, cfg, split_name, deterministic, targets, input_context=None):
    """Records of `split_name` with a known label for some head, parsed but not decoded."""
    workers, worker = 1, 0
    if input_context is not None:
        workers, worker = input_context.num_input_pipelines, input_context.input_pipeline_id
    shard_files = workers > 1 and len(files) >= workers
    files = tf.data.Dataset.from_tensor_slices(files)
    if shard_files:
        # Multi-worker: each worker reads its own files, so no record is seen twice.
        files = files.shard(workers, worker)
    if split_name == "train":
        files = files.shuffle(1024, seed=cfg.seed, reshuffle_each_iteration=True)
    # Parallel interleave reads several shards at once: file I/O overlaps, and
    # consecutive records come from different shards, i.e. different subjects.
    records = files.interleave(lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20), cycle_length=8,
                               block_length=1, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if workers > 1 and not shard_files:
        # Fewer files than workers: every worker reads them all and keeps its share of records.
        records = records.shard(workers, worker)
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


def make_train_dataset(cfg, files, targets, input_context=None):
    """Endless shuffled batches of (uint8 faces as stored, {head: labels}), `targets`
    from reader.targets.make_targets.

    The training augmentation (preprocess.train_batch: random crop, flip, brightness and
    contrast) runs in the training step, not here. Every stored face must have the
    same size (build_input's default), or cfg.resize must be set. With an
    `input_context` (tf.distribute), batches are per replica.

    cfg.cache keeps the parsed records (`encoded`) or the decoded, resized faces
    (`decoded`) after the first pass, in memory or under cfg.cache_dir (reader.cache).
    With cfg.data_service the whole pipeline runs on tf.data service workers, which
    split the files between them (each example once per epoch) and stream the batches.
    """
    deterministic = cfg.deterministic
    batch_size = cfg.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(cfg.batch_size)
    pipeline = 0 if input_context is None else input_context.input_pipeline_id
    # A tf.data service splits the files between its workers; the trainers do not shard them.
    records = _read(files, cfg, "train", deterministic, targets, None if cfg.data_service else input_context)
    cache_file = cache.cache_file(cfg, files, pipeline) if cfg.cache != "none" else None

    def decode(record):
        return _image(record, cfg.resize), _labels(record)

    if cfg.cache == "decoded":
        # Decode once; later epochs read uint8 faces and shuffle them.
        examples = (records.map(decode, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
                    .cache(cache_file)
                    .shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True)
                    .repeat())
    else:
        if cfg.cache == "encoded":
            records = records.cache(cache_file)  # Encoded JPEGs: ~25 KB a face, decoded again each epoch.
        # Shuffle encoded records (small) before the expensive decode; shuffling before
        # repeat keeps epochs apart (every example once per epoch).
        examples = (records.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True)
                    .repeat()
                    .map(decode, num_parallel_calls=AUTOTUNE, deterministic=deterministic))
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
    records = _read(files, cfg, split_name, deterministic=True, targets=targets)
    crops = preprocess.serving_ten_crops if oversample else preprocess.serving_crop

    def decode_and_crop(record):
        return crops(preprocess.decode_jpeg(record["encoded"]), cfg.resize, cfg.image_size), _labels(record)

    return (records.map(decode_and_crop, num_parallel_calls=AUTOTUNE)
            .batch(cfg.batch_size)
            .prefetch(AUTOTUNE))
