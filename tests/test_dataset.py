import numpy as np
import pytest
import tensorflow as tf

from datasets import targets_of
from input_pipeline.config import DataConfig
from input_pipeline.reader import dataset, parse
from input_pipeline.reader.manifest import load_manifest, split_files


def read_subjects(ds):
    return {s.numpy() for r in ds for s in tf.reshape(r["subject_id"], [-1])}


def test_validation_is_subject_disjoint(small_shards):
    manifest = load_manifest(small_shards)
    train_files, _ = split_files(manifest, small_shards, 0)
    cfg = DataConfig(shards_dir=small_shards, val_fraction=0.4)
    subjects = {}
    for split in ("train", "val"):
        records = dataset.read_records(train_files, cfg, split, targets_of(cfg))
        subjects[split] = read_subjects(records)
    assert subjects["train"] and subjects["val"]
    assert not subjects["train"] & subjects["val"]
    everything = read_subjects(tf.data.TFRecordDataset(train_files).batch(64).map(parse.parse))
    assert subjects["train"] | subjects["val"] == everything


def test_split_files_hold_out_the_test_fold(small_shards):
    manifest = load_manifest(small_shards)
    train, test = split_files(manifest, small_shards, 3)
    assert all("fold3-" in f for f in test) and not any("fold3-" in f for f in train)
    assert len(train) == 8 and len(test) == 2
    with pytest.raises(ValueError, match="test_fold"):
        split_files(manifest, small_shards, 5)


def test_train_batches_and_determinism(small_shards):
    manifest = load_manifest(small_shards)
    train_files, test_files = split_files(manifest, small_shards, 0)
    cfg = DataConfig(shards_dir=small_shards, image_size=24, batch_size=4, val_fraction=0.0,
                     deterministic=True, seed=7)
    targets = targets_of(cfg)
    first = [(x.numpy(), y["age"].numpy()) for x, y in dataset.make_train_dataset(cfg, train_files, targets).take(3)]
    again = [(x.numpy(), y["age"].numpy()) for x, y in dataset.make_train_dataset(cfg, train_files, targets).take(3)]
    assert first[0][0].shape == (4, 32, 32, 3) and first[0][0].dtype == np.uint8  # As stored; cropped in the step.
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    test = list(dataset.make_eval_dataset(cfg, test_files, "test", targets_of(cfg), oversample=True))
    assert sum(len(y["age"]) for _, y in test) == 6 and test[0][0].shape[1:] == (10, 24, 24, 3)


def test_unknown_labels_are_filtered_per_task(tmp_path):
    from datasets import row, write_adience
    from input_pipeline.config import BuildConfig
    from input_pipeline.writer import build

    root = write_adience(str(tmp_path / "a"), {k: [row(f"u{k}@N0", k * 3 + 1, "(0, 2)", "m", f"{k}a.jpg"),
                                                  row(f"u{k}@N0", k * 3 + 2, "None", "f", f"{k}b.jpg"),
                                                  row(f"u{k}@N0", k * 3 + 3, "(4, 6)", "u", f"{k}c.jpg")]
                                              for k in range(5)})
    shards = str(tmp_path / "s")
    build.build(BuildConfig(data_dir=root, output_dir=shards, image_size=16, num_shards=1, num_workers=1))
    _, test_files = split_files(load_manifest(shards), shards, 0)
    counts = {}
    for task in ("age", "gender", "age_gender"):
        cfg = DataConfig(shards_dir=shards, task=task, image_size=16, batch_size=8)
        counts[task] = sum(len(y["age"]) for _, y in dataset.make_eval_dataset(cfg, test_files, "test",
                                                                                targets_of(cfg)))
    assert counts == {"age": 2, "gender": 2, "age_gender": 3}
    # Bins are chosen here, not at the build: (0, 2) and (4, 6) both lie in 0-12; neither in 13-30,31+.
    for bins, expected in (("0-12,13-30,31+", [0, 0]), ("13-30,31+", [])):
        cfg = DataConfig(shards_dir=shards, heads=("age",), age_bins=bins, image_size=16, batch_size=8)
        found = [int(a) for _, y in dataset.make_eval_dataset(cfg, test_files, "test", targets_of(cfg))
                 for a in y["age"]]
        assert found == expected


def test_training_reads_every_shard_file_at_once(small_adience, tmp_path):
    """It opened 8 files at a time: with shards in the source's order, a batch held a few
    people (or ages) only. With no shuffle buffer, the first 12 faces come from the 12 files."""
    from input_pipeline.config import BuildConfig
    from input_pipeline.writer import build

    shards = str(tmp_path / "shards")  # 3 shards of 2 faces per fold: 12 training files.
    build.build(BuildConfig(data_dir=small_adience, output_dir=shards, image_size=32, num_shards=3, num_workers=1))
    train_files, _ = split_files(load_manifest(shards), shards, 0)
    file_of = {}
    for path in train_files:
        for record in tf.data.TFRecordDataset(path).batch(8).map(parse.parse):
            for jpeg in record["encoded"]:
                file_of[tf.io.decode_jpeg(jpeg, dct_method="INTEGER_ACCURATE").numpy().tobytes()] = path
    assert len(train_files) == 12 and len(file_of) == 24
    cfg = DataConfig(shards_dir=shards, image_size=24, batch_size=12, val_fraction=0.0, shuffle_buffer=1,
                     deterministic=True)
    faces, _ = next(iter(dataset.make_train_dataset(cfg, train_files, targets_of(cfg))))
    assert len({file_of[face.tobytes()] for face in faces.numpy()}) == 12


def test_shards_written_in_the_sources_order_are_named_with_their_rebuild_command(small_shards):
    from input_pipeline.reader.manifest import source_order_warning

    manifest = load_manifest(small_shards)
    assert source_order_warning(manifest, small_shards) == ""
    del manifest["write_order"]  # As an older build_input.py wrote it.
    warning = source_order_warning(manifest, small_shards)
    assert "written in the source's order" in warning and "python build_input.py --overwrite" in warning
