"""Every decode, resize and crop between a stored face and the model: the one copy of each.

Levi & Hassner 2015, Sec. 3.2: faces are stored at 256x256; training takes random
227x227 crops and mirrors, testing the centre crop or the 10 crops (corners, centre and
their mirrors). The paper's augmentation stops there; train_batch's colour jitter
(brightness and contrast) is this project's addition, on by default and off in
configs/levi_hassner.flags (--color_jitter). Who calls what:

    every path           decode_jpeg: stored JPEG bytes -> pixels, the same as Pillow's
    training step        train_batch (on uint8 batches, in the compiled step)
    training input       resize (when --resize is set)
    evaluation, every export signature, predict.py, the web page and TFLite
                         serving_crop / serving_ten_crops = resize to the stored size, then crop

so a face gets the same pixels whichever path it takes (tests/test_export_agreement.py).
Images are uint8 in and out, except train_batch (float32 [0, 255] out: photometric
jitter). Backbone-specific preprocessing lives inside the model.

The training augmentation runs in the training step rather than in tf.data: on an
accelerator it costs next to nothing, while in tf.data on 2 CPU cores it halved the
input throughput (scripts/bench_input.py).
"""

import tensorflow as tf

# Brightness is shifted by at most this much on the 0..255 scale (about 12%). One
# TF port used max_delta=63 on [0, 1] images, which whites faces out entirely.
MAX_BRIGHTNESS_DELTA = 32.0
CONTRAST_RANGE = (0.8, 1.2)


def decode_jpeg(encoded):
    """JPEG bytes -> (H, W, 3) uint8 (grayscale JPEGs come out as RGB).

    libjpeg's accurate integer IDCT, the one Pillow uses: TensorFlow's default (the fast
    IDCT) gives other pixels, up to 18 levels apart, for the same bytes, so a photo
    decoded by predict.py (Pillow) would not be the face that training saw. On 256px
    faces both run at the same speed (~2,800 a second per core).
    """
    return tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE")


def _triangle_weights(in_size, out_size):
    """(out_size, in_size) weights of an antialiased bilinear resize along one axis.

    Output pixel i samples the input at c = (i + 0.5) * in / out (pixel centres at
    j + 0.5) with a triangle filter widened by the shrink factor when shrinking, as
    tf.image.resize(antialias=True) and Pillow's BILINEAR do, so a large photo is not
    aliased. Rows sum to 1; at in == out the matrix is the identity, exactly.
    """
    scale = tf.cast(in_size, tf.float32) / out_size
    width = tf.maximum(scale, 1.0)
    centres = (tf.range(out_size, dtype=tf.float32) + 0.5) * scale
    pixels = tf.range(tf.cast(in_size, tf.float32)) + 0.5
    weights = tf.nn.relu(1.0 - tf.abs(pixels[None, :] - centres[:, None]) / width)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def resize(images, size):
    """uint8 images (H, W, 3) or (B, H, W, 3) of any size -> size x size uint8; 0: unchanged.

    Antialiased bilinear (within 1e-4 of tf.image.resize(antialias=True) before rounding),
    written as two matrix products: tf.image.resize's antialiased kernel is not a TFLite
    op, and this must run in every path including TFLite. An image already at `size`
    comes back unchanged, bit for bit.
    """
    images = tf.convert_to_tensor(images)
    if not size or images.shape[-3:-1] == (size, size):  # Known to be at the size already.
        return images
    single = images.shape.rank == 3
    x = tf.cast(images[None] if single else images, tf.float32)
    shape = tf.shape(x)
    x = tf.einsum("oh,bhwc->bowc", _triangle_weights(shape[1], size), x)
    x = tf.einsum("pw,bowc->bopc", _triangle_weights(shape[2], size), x)
    x = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)
    return x[0] if single else x


def random_crops_and_flips(images, seed, size):
    """A random `size` crop and a random horizontal flip for each image of a uint8 batch.

    `images` (B, H, W, 3) -> (B, size, size, 3), same dtype: two gathers, the flip being
    a reversed column index. `seed` is a (2,) int tensor: the result depends only on it.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    top = tf.random.stateless_uniform([batch], seeds[0], 0, height - size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], seeds[1], 0, width - size + 1, dtype=tf.int32)
    flip = tf.random.stateless_uniform([batch], seeds[2]) < 0.5
    offsets = tf.range(size)
    rows = top[:, None] + offsets  # (B, size)
    columns = tf.where(flip[:, None], left[:, None] + size - 1 - offsets, left[:, None] + offsets)
    images = tf.gather(images, rows, axis=1, batch_dims=1)  # (B, size, W, 3)
    return tf.gather(images, columns, axis=2, batch_dims=1)  # (B, size, size, 3)


def photometric(images, seed):
    """Mild random brightness and contrast per image of a uint8 batch -> float32 [0, 255]."""
    images = tf.cast(images, tf.float32)
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    delta = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[0], -MAX_BRIGHTNESS_DELTA, MAX_BRIGHTNESS_DELTA)
    factor = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[1], *CONTRAST_RANGE)
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)  # Per image and channel, as adjust_contrast.
    return tf.clip_by_value(images * factor + (mean * (1.0 - factor) + delta), 0.0, 255.0)


def geometric(images, seed, scale=0.0, rotation=0.0, shift=0.0):
    """A random similarity transform of each image of a batch about its centre: zoomed by
    a factor in [1 - scale, 1 + scale], turned by up to `rotation` degrees, moved by up to
    `shift` of its side along each axis; bilinear, mid-gray where it reaches past the
    border (as the canonical crop fills). (B, H, W, 3) -> float32, same size.

    The face moves as it does between two photos of one person framed by the detector:
    the canonical crop's scale and eye position vary by several percent from photo to
    photo (scripts/bench_detect.py), and a random crop only moves it."""
    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    batch, height, width = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    zoom = tf.random.stateless_uniform([batch], seeds[0], 1.0 - scale, 1.0 + scale)
    angle = tf.random.stateless_uniform([batch], seeds[1], -rotation, rotation) * (3.141592653589793 / 180.0)
    move = tf.random.stateless_uniform([batch, 2], seeds[2], -shift, shift) * tf.stack([width, height])
    # Output pixel p samples the input at c + R(angle) (p - c) / zoom + move (pixel indices).
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    transforms = tf.stack([cos, -sin, cx - cos * cx + sin * cy + move[:, 0],
                           sin, cos, cy - sin * cx - cos * cy + move[:, 1],
                           tf.zeros([batch]), tf.zeros([batch])], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=transforms, output_shape=shape[1:3],
                                                 fill_value=128.0, interpolation="BILINEAR", fill_mode="CONSTANT")


def train_batch(images, seed, size, color_jitter=True, scale=0.0, rotation=0.0, shift=0.0):
    """The training augmentation of a uint8 batch -> float32 (B, size, size, 3): with any
    of `scale`, `rotation`, `shift`, first a random similarity transform (geometric);
    then the paper's random crop and flip and, with `color_jitter`, brightness and
    contrast (not the paper's). The crops and flips depend on `seed` alone, jitter or not."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    if scale or rotation or shift:
        geometry_seed = tf.random.experimental.stateless_fold_in(seed, 3)  # The crops' seeds stay as without.
        images = tf.cast(tf.round(geometric(images, geometry_seed, scale, rotation, shift)), tf.uint8)
    crops = random_crops_and_flips(images, seeds[0], size)
    return photometric(crops, seeds[1]) if color_jitter else tf.cast(crops, tf.float32)


def augmentation(size, color_jitter=True, scale=0.0, rotation=0.0, shift=0.0):
    """train_batch with these settings: a function of (uint8 batch, seed), what the
    training step calls on each replica's share of the batch."""
    def augment(images, seed):
        return train_batch(images, seed, size, color_jitter, scale, rotation, shift)

    return augment


def augmentation_of(data_cfg):
    """augmentation() with a DataConfig's settings."""
    return augmentation(data_cfg.image_size, data_cfg.color_jitter, data_cfg.scale_jitter, data_cfg.rotation,
                        data_cfg.shift)


def center_crop(images, size):
    """The central `size` x `size` crop of (H, W, 3) or (B, H, W, 3) images."""
    height, width = tf.shape(images)[-3], tf.shape(images)[-2]
    top, left = (height - size) // 2, (width - size) // 2
    crop = images[..., top:top + size, left:left + size, :]
    crop.set_shape(images.shape[:-3].concatenate([size, size]).concatenate(images.shape[-1:]))
    return crop


def ten_crops(image, size):
    """The paper's over-sampling: 4 corner crops, the centre crop, and their mirrors.

    Returns (10, size, size, 3); the model's softmax is averaged over them.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
               ((height - size) // 2, (width - size) // 2)]
    crops = tf.stack([image[top:top + size, left:left + size] for top, left in corners])
    return tf.concat([crops, tf.image.flip_left_right(crops)], axis=0)


def serving_crop(images, stored_size, crop_size):
    """What the model sees of a face at test time: the face at its stored size (resized
    if it has another size; stored_size 0: as it is), then its centre crop."""
    return center_crop(resize(images, stored_size), crop_size)


def serving_ten_crops(image, stored_size, crop_size):
    """serving_crop's over-sampled twin: the 10 crops of one face, (10, crop, crop, 3)."""
    return ten_crops(resize(image, stored_size), crop_size)
