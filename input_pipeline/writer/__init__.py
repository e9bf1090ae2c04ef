"""Rows -> a shard set: faces encoded in worker processes, TFRecord shards per fold,
manifest.json and skipped.csv, staged and published atomically. No TensorFlow: the
records and their framing are written by example.py and tfrecord.py."""
