import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageFilter

from input_pipeline import preprocess


def ramp_image(size=8):
    """Pixel (r, c) = (r, c, r + c): every crop is recognisable."""
    r, c = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return tf.constant(np.stack([r, c, r + c], axis=-1).astype(np.uint8))


def test_train_batch_eagerly_and_in_a_dataset():
    images = tf.cast(tf.random.uniform((3, 32, 32, 3), 0, 256, dtype=tf.int32), tf.uint8)
    seed = tf.constant([1, 2], tf.int64)
    eager = preprocess.train_batch(images, seed, 24)
    assert eager.shape == (3, 24, 24, 3) and eager.dtype == tf.float32
    assert 0 <= float(tf.reduce_min(eager)) and float(tf.reduce_max(eager)) <= 255
    mapped = next(iter(tf.data.Dataset.from_tensors((images, seed)).map(lambda i, s: preprocess.train_batch(i, s, 24))))
    np.testing.assert_allclose(mapped.numpy(), eager.numpy(), atol=1e-3)  # Stateless: same seed, same result.
    other = preprocess.train_batch(images, tf.constant([3, 4], tf.int64), 24)
    assert not np.allclose(other.numpy(), eager.numpy())


def test_crops_and_flips_are_true_windows_of_each_image():
    image = ramp_image(8)
    images = tf.stack([image, image + 100])
    for seed in range(20):
        crops = preprocess.random_crops_and_flips(images, tf.constant([seed, 0], tf.int64), 4).numpy()
        for crop, base in zip(crops, images.numpy(), strict=True):
            top, left = crop[0, 0, 0] - base[0, 0, 0], min(crop[0, 0, 1], crop[0, -1, 1]) - base[0, 0, 1]
            window = base[top:top + 4, left:left + 4]
            assert np.array_equal(crop, window) or np.array_equal(crop, window[:, ::-1])
    flips = [preprocess.random_crops_and_flips(images, tf.constant([seed, 0], tf.int64), 4).numpy()[0, 0, 0, 1]
             > preprocess.random_crops_and_flips(images, tf.constant([seed, 0], tf.int64), 4).numpy()[0, 0, -1, 1]
             for seed in range(40)]
    assert 5 < sum(flips) < 35  # Both orientations occur.


def test_brightness_and_contrast_stay_mild():
    images = tf.fill((50, 16, 16, 3), tf.constant(128, tf.uint8))
    out = preprocess.photometric(images, tf.constant([5, 0], tf.int64)).numpy()
    assert np.abs(out.mean(axis=(1, 2, 3)) - 128).max() <= preprocess.MAX_BRIGHTNESS_DELTA + 1e-3
    assert np.abs(out.mean(axis=(1, 2, 3)) - 128).max() > 5  # It does vary.


def test_ten_crops_are_the_corners_centre_and_mirrors():
    image = ramp_image(8)
    crops = preprocess.ten_crops(image, 4).numpy()
    assert crops.shape == (10, 4, 4, 3)
    assert crops[0][0, 0].tolist() == [0, 0, 0]  # Top-left.
    assert crops[1][0, 0].tolist() == [0, 4, 4]  # Top-right.
    assert crops[2][0, 0].tolist() == [4, 0, 4]  # Bottom-left.
    assert crops[3][0, 0].tolist() == [4, 4, 8]  # Bottom-right.
    assert crops[4][0, 0].tolist() == [2, 2, 4]  # Centre.
    np.testing.assert_array_equal(crops[5:], crops[:5, :, ::-1])  # Mirrors.
    np.testing.assert_array_equal(preprocess.center_crop(image, 4).numpy(), crops[4])
    mapped = next(iter(tf.data.Dataset.from_tensors(image).map(lambda i: preprocess.ten_crops(i, 4))))
    np.testing.assert_array_equal(mapped.numpy(), crops)


@pytest.mark.parametrize("shape,size", [((256, 256), 128), ((256, 256), 227), ((816, 600), 256), ((50, 40), 128),
                                        ((37, 91), 64)])
def test_resize_is_antialiased_bilinear(shape, size):
    """Shrinking averages over the shrink factor (no aliasing), as tf.image.resize(antialias=True)
    and Pillow's BILINEAR do; growing is plain bilinear."""
    rng = np.random.default_rng(sum(shape))
    images = rng.integers(0, 256, (2, *shape, 3)).astype(np.uint8)
    reference = tf.image.resize(tf.cast(images, tf.float32), (size, size), antialias=True).numpy()
    resized = preprocess.resize(images, size).numpy()
    assert resized.shape == (2, size, size, 3) and resized.dtype == np.uint8
    assert np.abs(resized.astype(float) - reference).max() <= 0.5 + 1e-3  # Rounding only.


def test_resize_keeps_a_face_of_the_right_size_bit_for_bit_and_zero_means_unchanged():
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8))
    np.testing.assert_array_equal(preprocess.resize(image, 64).numpy(), image.numpy())
    assert preprocess.resize(image, 0) is image
    # In an export the size is unknown until run time: the matrix product itself is the identity.
    spec = tf.TensorSpec([None, None, 3], tf.uint8)
    dynamic = tf.function(lambda x: preprocess.resize(x, 64), input_signature=[spec])
    np.testing.assert_array_equal(dynamic(image).numpy(), image.numpy())


def test_resize_gives_the_same_pixels_alone_batched_and_in_a_dataset():
    images = np.random.default_rng(1).integers(0, 256, (3, 90, 70, 3)).astype(np.uint8)
    batched = preprocess.resize(images, 48).numpy()
    alone = np.stack([preprocess.resize(image, 48).numpy() for image in images])
    mapped = np.stack([x.numpy() for x in tf.data.Dataset.from_tensor_slices(images).map(
        lambda x: preprocess.resize(x, 48))])
    np.testing.assert_array_equal(batched, alone)
    np.testing.assert_array_equal(batched, mapped)


def test_serving_crop_is_the_resize_then_the_centre_crop_of_every_image():
    images = np.random.default_rng(2).integers(0, 256, (2, 80, 80, 3)).astype(np.uint8)
    crops = preprocess.serving_crop(images, 40, 32).numpy()
    assert crops.shape == (2, 32, 32, 3)
    resized = preprocess.resize(images, 40).numpy()
    np.testing.assert_array_equal(crops, resized[:, 4:36, 4:36])
    np.testing.assert_array_equal(preprocess.serving_crop(images[0], 40, 32).numpy(), crops[0])
    ten = preprocess.serving_ten_crops(images[0], 40, 32).numpy()
    np.testing.assert_array_equal(ten[4], crops[0])


@pytest.mark.parametrize("mode,quality,subsampling", [("RGB", 95, 0), ("RGB", 75, 2), ("L", 90, 0)])
def test_decode_jpeg_gives_pillows_pixels(mode, quality, subsampling):
    """predict.py decodes with Pillow, training with TensorFlow: the same bytes must give
    the same pixels (TensorFlow's default fast IDCT differs by up to 18 levels)."""
    rng = np.random.default_rng(quality)
    pixels = rng.integers(0, 256, (60, 50, 3)).astype(np.uint8)
    image = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(2)).convert(mode)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, subsampling=subsampling)
    decoded = preprocess.decode_jpeg(out.getvalue()).numpy()
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB")))


def test_colour_jitter_can_be_turned_off_and_the_crops_stay_the_same():
    """The paper augments with crops and mirrors only; the jitter was always on."""
    images = tf.cast(tf.random.uniform((3, 32, 32, 3), 0, 256, dtype=tf.int32), tf.uint8)
    seed = tf.constant([1, 2], tf.int64)
    plain = preprocess.train_batch(images, seed, 24, color_jitter=False)
    crops = preprocess.random_crops_and_flips(images, tf.random.experimental.stateless_split(seed, num=2)[0], 24)
    np.testing.assert_array_equal(plain.numpy(), tf.cast(crops, tf.float32).numpy())
    jittered = preprocess.train_batch(images, seed, 24, color_jitter=True)
    assert not np.array_equal(jittered.numpy(), plain.numpy())


def test_the_papers_preset_has_no_colour_jitter():
    import os

    from processes import ROOT

    with open(os.path.join(ROOT, "configs", "levi_hassner.flags")) as f:
        assert "--nocolor_jitter" in f.read().split()
