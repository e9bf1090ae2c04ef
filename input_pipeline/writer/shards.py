"""Sharded TFRecord writing under temporary names, renamed only when complete."""

import os

from input_pipeline.writer import tfrecord

TMP_SUFFIX = ".tmp"


def shard_name(fold, index, count):
    return f"fold{fold}-{index:05d}-of-{count:05d}.tfrecord"


class FoldWriter:
    """Writes one fold's examples round-robin over `num_shards` files.

    Round-robin (example i -> shard i mod n) keeps shards within one example of the
    same size and spreads each subject's faces over all shards. Files carry a .tmp
    suffix until close() renames them, so a crash leaves nothing that looks finished.
    """

    def __init__(self, directory, fold, num_shards):
        self.names = [shard_name(fold, i, num_shards) for i in range(num_shards)]
        self.paths = [os.path.join(directory, name) for name in self.names]
        self.writers = [tfrecord.Writer(p + TMP_SUFFIX) for p in self.paths]
        self.count = 0

    def write(self, serialized):
        self.writers[self.count % len(self.writers)].write(serialized)
        self.count += 1

    def close(self):
        """Flushes every shard and gives it its final name; returns the names."""
        for writer, path in zip(self.writers, self.paths, strict=True):
            writer.close()
            os.replace(path + TMP_SUFFIX, path)
        return self.names
