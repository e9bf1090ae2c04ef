"""A shard set's manifest.json and the Adience protocol's split of its folds."""

import json
import os

from input_pipeline import schema


def load_manifest(shards_dir):
    path = os.path.join(shards_dir, schema.MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: build the shards first (python build_input.py)")
    with open(path) as f:
        return json.load(f)


def split_files(manifest, shards_dir, test_fold):
    """(training-fold files, test-fold files), as full paths: `test_fold` is the test set
    and the other folds train."""
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
