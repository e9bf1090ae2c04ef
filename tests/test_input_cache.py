"""--cache=encoded|decoded and --cache_dir: every face once per epoch and every epoch in a
new order, with or without a cache; a cache folder refused for other settings; a resumed
run that reads the cache instead of the shards."""

import dataclasses
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from configs import tiny, with_data
from input_pipeline.config import DataConfig
from input_pipeline.reader import cache, dataset
from input_pipeline.reader.manifest import load_folds
from input_pipeline.reader.targets import make_targets
from training.loop import train_and_evaluate


def batches(cfg, count):
    manifest, train_files, _ = load_folds(cfg.shards_dir, cfg.test_fold)
    iterator = iter(dataset.make_train_dataset(cfg, train_files, make_targets(cfg.bins, manifest["label_policy"])))
    return [tf.nest.map_structure(lambda t: t.numpy(), next(iterator)) for _ in range(count)]


@pytest.fixture
def data_cfg(small_shards):
    # 24 training faces: 6 batches of 4 are exactly the first epoch.
    return DataConfig(shards_dir=small_shards, image_size=24, resize=28, batch_size=4, val_fraction=0.0,
                      shuffle_buffer=8, deterministic=True)


def epochs(found, faces_per_epoch=24):
    """The faces (their bytes) of each epoch of a list of batches, in order."""
    flat = [bytes(face) for batch in found for face in batch[0]]
    return [flat[i:i + faces_per_epoch] for i in range(0, len(flat), faces_per_epoch)]


@pytest.mark.parametrize("kind, on_disk", [("none", False), ("encoded", False), ("decoded", False),
                                           ("encoded", True), ("decoded", True)])
def test_every_face_once_per_epoch_and_every_epoch_a_new_order(data_cfg, tmp_path, kind, on_disk):
    """A cache used to replay the first epoch's order, shuffled only within a window."""
    cfg = dataclasses.replace(data_cfg, cache=kind, cache_dir=str(tmp_path / "cache") if on_disk else "")
    found = batches(cfg, 24)  # Four epochs of 24 faces.
    assert found[0][0].shape == (4, 28, 28, 3) and found[0][0].dtype == np.uint8
    first, *later = epochs(found)
    assert len(set(first)) == 24  # Every training face once (they all differ).
    for epoch in later:
        assert sorted(epoch) == sorted(first)
    assert len({tuple(epoch) for epoch in [first, *later]}) == 4  # No epoch replays another.


@pytest.fixture(scope="module")
def many_faces(tmp_path_factory):
    """160 faces (40 per training fold, 2 shards each): enough to tell a reshuffled epoch
    from one that replays the last within a small shuffle window."""
    from datasets import row, write_adience
    from input_pipeline.config import BuildConfig
    from input_pipeline.writer import build

    root = tmp_path_factory.mktemp("many")
    folds = {k: [row(f"u{k}{i % 8}@N0", 100 * k + i, "(25, 32)", "mf"[i % 2], f"{k}_{i}.jpg") for i in range(40)]
             for k in range(5)}
    data_dir = write_adience(str(root / "a"), folds)
    shards = str(root / "shards")
    build.build(BuildConfig(data_dir=data_dir, output_dir=shards, image_size=16, num_shards=2, num_workers=1))
    return shards


def rank_correlation(first, second):
    where = {face: i for i, face in enumerate(second)}
    return float(np.corrcoef(np.arange(len(first)), [where[face] for face in first])[0, 1])


@pytest.mark.parametrize("kind, on_disk", [("encoded", False), ("decoded", False), ("encoded", True),
                                           ("decoded", True)])
def test_a_cache_gives_each_epoch_a_new_order_not_a_window_shuffled_replay(many_faces, tmp_path, kind, on_disk):
    """A cache used to replay its first epoch in the same order, shuffled within the
    --shuffle_buffer window only: two epochs' orders had a rank correlation near 1."""
    cfg = DataConfig(shards_dir=many_faces, image_size=16, batch_size=8, val_fraction=0.0, shuffle_buffer=8,
                     deterministic=True, cache=kind, cache_dir=str(tmp_path / "cache") if on_disk else "")
    second, third = epochs(batches(cfg, 60), faces_per_epoch=160)[1:]
    assert sorted(second) == sorted(third) and len(set(second)) == 160
    # In memory a whole new permutation (about 0); in files, 8 shard files in a new order,
    # two at a time (anywhere from strongly negative to moderate); a replay is about 1.
    assert rank_correlation(second, third) < (0.3 if not on_disk else 0.8)


def test_each_workers_cache_is_keyed_by_the_number_of_workers(data_cfg, tmp_path):
    """The pipeline hands the cache the input pipelines' count of tf.distribute's input context."""
    cfg = dataclasses.replace(data_cfg, cache="decoded", cache_dir=str(tmp_path / "cache"))
    manifest, train_files, _ = load_folds(cfg.shards_dir, cfg.test_fold)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    dataset.make_train_dataset(cfg, train_files, make_targets(cfg.bins, manifest["label_policy"]), context)
    assert json.loads((tmp_path / "cache" / cache.KEY_FILE).read_text())["input_pipelines"] == 2


def test_a_decoded_cache_on_disk_is_read_instead_of_the_shards(data_cfg, tmp_path):
    cfg = dataclasses.replace(data_cfg, cache="decoded", cache_dir=str(tmp_path / "cache"))
    first = epochs(batches(cfg, 12))[0]  # Two epochs: the cache is complete after the first.
    # One cache file per shard file (8 training shards) and input pipeline.
    assert len(glob.glob(str(tmp_path / "cache" / "train_0_fold*.tfrecord.index"))) == 8
    key = json.loads((tmp_path / "cache" / cache.KEY_FILE).read_text())
    assert key["kind"] == "decoded" and key["resize"] == 28 and key["test_fold"] == 0
    assert key["input_pipelines"] == 1
    for shard in glob.glob(os.path.join(cfg.shards_dir, "*.tfrecord*")):
        os.remove(shard)  # From now on only the cache holds the faces.
    assert sorted(epochs(batches(cfg, 6))[0]) == sorted(first)


def test_a_cache_of_two_workers_is_refused_for_one(data_cfg, tmp_path):
    """Each worker caches its own share of the files: one worker reading a 2-worker cache
    would train on half the data."""
    cfg = dataclasses.replace(data_cfg, cache="decoded", cache_dir=str(tmp_path / "cache"))
    _, train_files, _ = load_folds(cfg.shards_dir, cfg.test_fold)
    cache.cache_file(cfg, train_files, worker=1, pipelines=2)
    with pytest.raises(cache.CacheError, match="input_pipelines: 2 there, 1 now"):
        cache.cache_file(cfg, train_files, worker=0, pipelines=1)


@pytest.mark.parametrize("change, message", [
    (dict(resize=32), "resize: 28 there, 32 now"),
    (dict(test_fold=1), "test_fold: 0 there, 1 now"),
    (dict(cache="encoded"), "kind: 'decoded' there, 'encoded' now"),
    (dict(heads=("gender",)), "heads: ['age'] there, ['gender'] now"),
])
def test_a_cache_folder_is_refused_for_other_settings(data_cfg, tmp_path, change, message):
    cfg = dataclasses.replace(data_cfg, cache="decoded", cache_dir=str(tmp_path / "cache"))
    batches(cfg, 7)
    with pytest.raises(cache.CacheError, match="delete the folder or pass another --cache_dir") as error:
        batches(dataclasses.replace(cfg, **change), 1)
    assert message in str(error.value)


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(data_cfg, tmp_path):
    cfg = dataclasses.replace(data_cfg, cache="decoded", cache_dir=str(tmp_path / "cache"))
    batches(cfg, 1)  # Writing started, not finished (as if the run was killed).
    _, train_files, _ = load_folds(cfg.shards_dir, cfg.test_fold)
    (tmp_path / "cache" / f"train_0_{os.path.basename(train_files[0])}.lockfile").write_text("")
    assert sorted(epochs(batches(cfg, 6))[0]) == sorted(epochs(batches(data_cfg, 6))[0])


def test_a_resumed_run_reuses_its_decoded_cache(small_shards, tmp_path, caplog, kill_after_checkpoint):
    cache_dir = tmp_path / "cache"
    configs = with_data(tiny(small_shards, tmp_path / "run", train_steps=12, checkpoint_every=4, eval_every=4,
                             log_every=4, histogram_every=0, export=False),
                        cache="decoded", cache_dir=str(cache_dir), val_fraction=0.0)
    data_cfg, model_cfg, cfg = configs
    kill_after_checkpoint(8)
    with caplog.at_level("INFO", logger="absl"), pytest.raises(KeyboardInterrupt):
        # 8 steps of 4 faces: past the first epoch (24 faces), so the cache is complete.
        train_and_evaluate(data_cfg, model_cfg, cfg)
    assert "the input position is not checkpointed (--cache=decoded" in caplog.text
    written = {p: os.path.getmtime(p) for p in glob.glob(str(cache_dir / "train_0*"))}
    assert any(p.endswith(".index") for p in written)
    train_and_evaluate(data_cfg, model_cfg, cfg)
    reader = tf.train.load_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 12  # 8 + 4: it resumed.
    assert {p: os.path.getmtime(p) for p in glob.glob(str(cache_dir / "train_0*"))} == written  # Read, not rewritten.


def test_bad_cache_settings_are_refused():
    with pytest.raises(ValueError, match="cache must be one of"):
        DataConfig(cache="yes")
    with pytest.raises(ValueError, match="cache_dir .* is set but cache is none"):
        DataConfig(cache_dir="/tmp/x")
    with pytest.raises(ValueError, match="add workers rather than --cache"):
        DataConfig(cache="decoded", data_service="grpc://localhost:5050")
    with pytest.raises(ValueError, match="grpc://HOST:PORT"):
        DataConfig(data_service="localhost:5050")
