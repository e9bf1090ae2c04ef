"""Training augmentation and evaluation crops (Levi & Hassner 2015, Sec. 3.2).

Images are uint8 faces, 256x256 in the shards. Training: the input pipeline only
decodes and batches; the compiled training step calls train_batch() on each batch
(random crop, horizontal flip, mild brightness and contrast) and gets float32 in
[0, 255]. On an accelerator this costs next to nothing, while in tf.data on 2 CPU cores
it halved the input throughput (scripts/bench_input.py). Evaluation: the pipeline takes
the centre crop or the 10 crops. Model-specific preprocessing lives inside the model.
"""

import tensorflow as tf

# Brightness is shifted by at most this much on the 0..255 scale (about 12%). One
# TF port used max_delta=63 on [0, 1] images, which whites faces out entirely.
MAX_BRIGHTNESS_DELTA = 32.0
CONTRAST_RANGE = (0.8, 1.2)


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
    """Mild random brightness and contrast per image of a uint8 batch -> float32 [0, 255].

    """
    images = tf.cast(images, tf.float32)
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    delta = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[0], -MAX_BRIGHTNESS_DELTA, MAX_BRIGHTNESS_DELTA)
    factor = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[1], *CONTRAST_RANGE)
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)  # Per image and channel, as adjust_contrast.
    return tf.clip_by_value(images * factor + (mean * (1.0 - factor) + delta), 0.0, 255.0)


def train_batch(images, seed, size):
    """The paper's training augmentation of a uint8 batch -> float32 (B, size, size, 3)."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    return photometric(random_crops_and_flips(images, seeds[0], size), seeds[1])


def center_crop(image, size):
    """The central `size` x `size` crop."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - size) // 2, (width - size) // 2
    return image[top:top + size, left:left + size]


def ten_crops(image, size):
    """The paper's over-sampling: 4 corner crops, the centre crop, and their mirrors.

    Returns (10, size, size, 3); the model's softmax is averaged over them.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
               ((height - size) // 2, (width - size) // 2)]
    crops = tf.stack([image[top:top + size, left:left + size] for top, left in corners])
    return tf.concat([crops, tf.image.flip_left_right(crops)], axis=0)
