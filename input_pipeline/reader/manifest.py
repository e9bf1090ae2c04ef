"""A shard set's manifest.json and the Adience protocol's split of its folds."""

import hashlib
import json
import os

from input_pipeline import labels, schema
from input_pipeline.config import NO_TEST_FOLD


class ShardsError(ValueError):
    """A shard set this run cannot use (an older schema, labels the run's heads need)."""


def load_manifest(shards_dir):
    """The manifest of a shard set of this schema; FileNotFoundError or ValueError (an
    older schema) with the command that builds it."""
    path = os.path.join(shards_dir, schema.MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: build the shards first (python build_input.py)")
    with open(path) as f:
        manifest = json.load(f)
    version = manifest.get("schema_version", 1)
    if version != schema.SCHEMA_VERSION:
        raise ShardsError(f"{shards_dir} holds shard schema {version}, written by an older build_input.py; this "
                         f"version reads schema {schema.SCHEMA_VERSION}, which keeps ages in years and race. "
                         f"Rebuild it: {rebuild_command(manifest, shards_dir)}")
    return manifest


def manifest_sha256(shards_dir):
    """The first 16 hex digits of the sha256 of the shard set's manifest.json: which shard
    set, as built (a rebuild with other settings or data changes it)."""
    with open(os.path.join(shards_dir, schema.MANIFEST), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def rebuild_command(manifest, shards_dir):
    """The build_input.py command line that writes `shards_dir` again from its source."""
    flags = manifest.get("flags", {})
    parts = ["python build_input.py", "--overwrite", f"--output_dir={shards_dir}"]
    if not manifest.get("synthetic"):
        parts.append(f"--data_dir={manifest.get('source_dir', '<the dataset folder>')}")
    for name in ("dataset", "csv_file", "image_layout", "label_policy", "image_size", "face_crop", "detector"):
        if flags.get(name) not in (None, ""):
            parts.append(f"--{name}={flags[name]}")
    return " ".join(parts)


def split_files(manifest, shards_dir, test_fold):
    """(training-fold files, test-fold files), as full paths: `test_fold` is the test set
    and the other folds train; NO_TEST_FOLD: every fold trains and there is no test file."""
    if not NO_TEST_FOLD <= test_fold < manifest["num_folds"]:
        raise ValueError(f"test_fold must be in 0..{manifest['num_folds'] - 1}, or {NO_TEST_FOLD} for none (every "
                         f"fold trains), got {test_fold}")
    train, test = [], []
    for fold in manifest["folds"]:
        paths = [os.path.join(shards_dir, name) for name in fold["files"]]
        (test if fold["fold"] == test_fold else train).extend(paths)
    return train, test


def examples_in(shards_dir, files):
    """How many examples the folds that `files` belong to hold: at least as many as `files` do."""
    names = {os.path.basename(f) for f in files}
    manifest = load_manifest(shards_dir)
    return sum(fold["num_examples"] for fold in manifest["folds"] if names & set(fold["files"]))


def source_order_warning(manifest, shards_dir):
    """A warning for shards an older build_input.py wrote in the source's order (faces
    grouped by person or sorted by age, which no shuffle buffer undoes); "" otherwise."""
    if manifest.get("write_order", {}).get("shuffled"):
        return ""
    return (f"{shards_dir} was written in the source's order by an older build_input.py (faces grouped by person "
            f"or sorted by age): batches will not be random samples. Rebuild it: "
            f"{rebuild_command(manifest, shards_dir)}")


def load_folds(shards_dir, test_fold):
    """(manifest, training-fold files, test-fold files) of a shard set."""
    manifest = load_manifest(shards_dir)
    return (manifest, *split_files(manifest, shards_dir, test_fold))


def split_counts(manifest, test_fold, key, part=None):
    """({name: count} over the training folds, {name: count} of the test fold) of a
    manifest's per-fold `key` ("age_counts", "gender_counts", "race_counts"), or of its
    entry `part` when the key holds several ("gender_age_counts", by gender)."""
    train, test = {}, {}
    for fold in manifest["folds"]:
        total = test if fold["fold"] == test_fold else train
        for name, n in (fold[key] if part is None else fold[key].get(part, {})).items():
            total[name] = total.get(name, 0) + n
    return train, test


def label_counts(manifest, test_fold, heads, age_bins, policy):
    """{"train": {head: {"known", "unknown"}}, "test": {...}}: how many faces of the
    training folds and of the test fold have a label for each head, with the age bins of
    this run (the rest are masked out of that head's loss and figures)."""
    out = {"train": {}, "test": {}}
    for head in heads:
        key = "age_counts" if head in ("age", "age_years") else f"{head}_counts"
        for split, counts in zip(out, split_counts(manifest, test_fold, key), strict=True):
            total = sum(counts.values())
            if head == "age":
                unknown = labels.bin_counts(counts, age_bins, policy)["unknown"]
            elif head == "age_years":
                unknown = total - labels.years_known(counts)
            else:
                unknown = counts.get("unknown", 0)
            out[split][head] = {"known": total - unknown, "unknown": unknown}
    return out
