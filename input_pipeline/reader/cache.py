"""Where the training pipeline keeps its records after the first pass (--cache, --cache_dir).

`encoded` keeps the parsed records (JPEG bytes, ~25 KB a face) and decodes them every
epoch; `decoded` keeps the uint8 faces at their training size, so later epochs do no
JPEG work at all (S x S x 3 bytes a face: 49 MB per 1,000 faces at 128 px, 197 MB at
256). In memory by default; with a cache folder, in files there (data larger than RAM,
and a cache that outlives the run: a resumed or later run with the same settings reads it
instead of decoding again).

A cache folder holds one cache, a file per shard file and input pipeline (worker). Its
`cache.json` records what the cache was made from (the shard set, the fold split, the
heads and bins that choose the records, the resize, the number of input pipelines that
split the files between them); a run with other settings is refused rather than handed
faces it did not ask for (a 2-worker cache read by 1 worker would be half the data).
"""

import glob
import json
import os

from input_pipeline.reader.manifest import manifest_sha256

KEY_FILE = "cache.json"


class CacheError(ValueError):
    """A cache folder written for other settings than this run's."""


def key(cfg, train_files, pipelines=1):
    """What a cache of `cfg`'s training records depends on (JSON-serializable). Each of
    `pipelines` input pipelines (one per worker) caches its own share of the files."""
    return {"kind": cfg.cache, "shards_dir": os.path.abspath(cfg.shards_dir),
            "manifest_sha256": manifest_sha256(cfg.shards_dir),
            "files": sorted(os.path.basename(f) for f in train_files), "test_fold": cfg.test_fold,
            "val_fraction": cfg.val_fraction, "heads": list(cfg.head_names), "age_bins": cfg.age_bins,
            "resize": cfg.resize, "input_pipelines": pipelines, "layout": "a cache file per shard file"}


def cache_file(cfg, train_files, worker=0, pipelines=1):
    """The file prefix under cfg.cache_dir of input pipeline `worker` of `pipelines`:
    each shard file it reads is cached in <prefix>_<shard file name>. CacheError if the
    folder holds a cache of other settings; the first run to use a folder records its
    settings."""
    os.makedirs(cfg.cache_dir, exist_ok=True)
    wanted = key(cfg, train_files, pipelines)
    path = os.path.join(cfg.cache_dir, KEY_FILE)
    if os.path.exists(path):
        with open(path) as f:
            found = json.load(f)
        if found != wanted:
            differ = sorted(k for k in found.keys() | wanted.keys() if found.get(k) != wanted.get(k))
            raise CacheError(f"{cfg.cache_dir} holds a training cache made with other settings ("
                             + "; ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} now" for k in differ)
                             + "): delete the folder or pass another --cache_dir")
    else:
        with open(path + ".tmp", "w") as f:
            json.dump(wanted, f, indent=2)
        os.replace(path + ".tmp", path)
    prefix = os.path.join(cfg.cache_dir, f"train_{worker}")
    # A run killed while writing the cache leaves tf.data's lock file and partial files;
    # the cache is written again from the start (one run uses a folder at a time).
    for stale in glob.glob(prefix + "_*.lockfile") + glob.glob(prefix + "_*.tempstate*"):
        os.remove(stale)
    return prefix


def bytes_per_face(size):
    """Memory of one decoded face of side `size` in the decoded cache."""
    return size * size * 3
