import numpy as np
import pytest
import tensorflow as tf

from input_pipeline import augment, dataset, decode
from input_pipeline.config import DataConfig


def ramp_image(size=8):
    """Pixel (r, c) = (r, c, r + c): every crop is recognisable."""
    r, c = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return tf.constant(np.stack([r, c, r + c], axis=-1).astype(np.uint8))


def test_train_batch_eagerly_and_in_a_dataset():
    images = tf.cast(tf.random.uniform((3, 32, 32, 3), 0, 256, dtype=tf.int32), tf.uint8)
    seed = tf.constant([1, 2], tf.int64)
    eager = augment.train_batch(images, seed, 24)
    assert eager.shape == (3, 24, 24, 3) and eager.dtype == tf.float32
    assert 0 <= float(tf.reduce_min(eager)) and float(tf.reduce_max(eager)) <= 255
    mapped = next(iter(tf.data.Dataset.from_tensors((images, seed)).map(lambda i, s: augment.train_batch(i, s, 24))))
    np.testing.assert_allclose(mapped.numpy(), eager.numpy(), atol=1e-3)  # Stateless: same seed, same result.
    other = augment.train_batch(images, tf.constant([3, 4], tf.int64), 24)
    assert not np.allclose(other.numpy(), eager.numpy())


def test_crops_and_flips_are_true_windows_of_each_image():
    image = ramp_image(8)
    images = tf.stack([image, image + 100])
    for seed in range(20):
        crops = augment.random_crops_and_flips(images, tf.constant([seed, 0], tf.int64), 4).numpy()
        for crop, base in zip(crops, images.numpy(), strict=True):
            top, left = crop[0, 0, 0] - base[0, 0, 0], min(crop[0, 0, 1], crop[0, -1, 1]) - base[0, 0, 1]
            window = base[top:top + 4, left:left + 4]
            assert np.array_equal(crop, window) or np.array_equal(crop, window[:, ::-1])
    flips = [augment.random_crops_and_flips(images, tf.constant([seed, 0], tf.int64), 4).numpy()[0, 0, 0, 1]
             > augment.random_crops_and_flips(images, tf.constant([seed, 0], tf.int64), 4).numpy()[0, 0, -1, 1]
             for seed in range(40)]
    assert 5 < sum(flips) < 35  # Both orientations occur.


def test_brightness_and_contrast_stay_mild():
    images = tf.fill((50, 16, 16, 3), tf.constant(128, tf.uint8))
    out = augment.photometric(images, tf.constant([5, 0], tf.int64)).numpy()
    assert np.abs(out.mean(axis=(1, 2, 3)) - 128).max() <= augment.MAX_BRIGHTNESS_DELTA + 1e-3
    assert np.abs(out.mean(axis=(1, 2, 3)) - 128).max() > 5  # It does vary.


def test_ten_crops_are_the_corners_centre_and_mirrors():
    image = ramp_image(8)
    crops = augment.ten_crops(image, 4).numpy()
    assert crops.shape == (10, 4, 4, 3)
    assert crops[0][0, 0].tolist() == [0, 0, 0]  # Top-left.
    assert crops[1][0, 0].tolist() == [0, 4, 4]  # Top-right.
    assert crops[2][0, 0].tolist() == [4, 0, 4]  # Bottom-left.
    assert crops[3][0, 0].tolist() == [4, 4, 8]  # Bottom-right.
    assert crops[4][0, 0].tolist() == [2, 2, 4]  # Centre.
    np.testing.assert_array_equal(crops[5:], crops[:5, :, ::-1])  # Mirrors.
    np.testing.assert_array_equal(augment.center_crop(image, 4).numpy(), crops[4])
    mapped = next(iter(tf.data.Dataset.from_tensors(image).map(lambda i: augment.ten_crops(i, 4))))
    np.testing.assert_array_equal(mapped.numpy(), crops)


def read_subjects(ds):
    return {s.numpy() for r in ds for s in tf.reshape(r["subject_id"], [-1])}


def test_validation_is_subject_disjoint(small_shards):
    manifest = dataset.load_manifest(small_shards)
    train_files, _ = dataset.split_files(manifest, small_shards, 0)
    cfg = DataConfig(shards_dir=small_shards, val_fraction=0.4)
    subjects = {}
    for split in ("train", "val"):
        subjects[split] = read_subjects(dataset._read(train_files, cfg, split, deterministic=True))
    assert subjects["train"] and subjects["val"]
    assert not subjects["train"] & subjects["val"]
    everything = read_subjects(tf.data.TFRecordDataset(train_files).batch(64).map(decode.parse))
    assert subjects["train"] | subjects["val"] == everything


def test_split_files_hold_out_the_test_fold(small_shards):
    manifest = dataset.load_manifest(small_shards)
    train, test = dataset.split_files(manifest, small_shards, 3)
    assert all("fold3-" in f for f in test) and not any("fold3-" in f for f in train)
    assert len(train) == 8 and len(test) == 2
    with pytest.raises(ValueError, match="test_fold"):
        dataset.split_files(manifest, small_shards, 5)


def test_train_batches_and_determinism(small_shards):
    manifest = dataset.load_manifest(small_shards)
    train_files, test_files = dataset.split_files(manifest, small_shards, 0)
    cfg = DataConfig(shards_dir=small_shards, image_size=24, batch_size=4, val_fraction=0.0,
                     deterministic=True, seed=7)
    first = [(x.numpy(), y["age"].numpy()) for x, y in dataset.make_train_dataset(cfg, train_files).take(3)]
    again = [(x.numpy(), y["age"].numpy()) for x, y in dataset.make_train_dataset(cfg, train_files).take(3)]
    assert first[0][0].shape == (4, 32, 32, 3) and first[0][0].dtype == np.uint8  # As stored; cropped in the step.
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    test = list(dataset.make_eval_dataset(cfg, test_files, "test", oversample=True))
    assert sum(len(y["age"]) for _, y in test) == 6 and test[0][0].shape[1:] == (10, 24, 24, 3)


def test_unknown_labels_are_filtered_per_task(tmp_path):
    from datasets import row, write_adience
    from input_pipeline import build
    from input_pipeline.config import BuildConfig

    root = write_adience(str(tmp_path / "a"), {k: [row(f"u{k}@N0", k * 3 + 1, "(0, 2)", "m", f"{k}a.jpg"),
                                                  row(f"u{k}@N0", k * 3 + 2, "None", "f", f"{k}b.jpg"),
                                                  row(f"u{k}@N0", k * 3 + 3, "(4, 6)", "u", f"{k}c.jpg")]
                                              for k in range(5)})
    shards = str(tmp_path / "s")
    build.build(BuildConfig(data_dir=root, output_dir=shards, image_size=16, num_shards=1, num_workers=1))
    _, test_files = dataset.split_files(dataset.load_manifest(shards), shards, 0)
    counts = {}
    for task in ("age", "gender", "age_gender"):
        cfg = DataConfig(shards_dir=shards, task=task, image_size=16, batch_size=8)
        counts[task] = sum(len(y["age"]) for _, y in dataset.make_eval_dataset(cfg, test_files, "test"))
    assert counts == {"age": 2, "gender": 2, "age_gender": 3}
