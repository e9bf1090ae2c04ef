"""Training augmentation and evaluation crops (Levi & Hassner 2015, Sec. 3.2).

Images come in as uint8 (H, W, 3) faces, 256x256 in the shards; they go out as
float32 in [0, 255]: model-specific preprocessing lives inside the model.
"""

import tensorflow as tf

# Brightness is shifted by at most this much on the 0..255 scale (about 12%). One
# TF port used max_delta=63 on [0, 1] images, which whites faces out entirely.
MAX_BRIGHTNESS_DELTA = 32.0
CONTRAST_RANGE = (0.8, 1.2)


def train_crop(image, seed, size):
    """Random `size` crop, random horizontal flip, mild brightness and contrast.

    `seed` is a (2,) int tensor: stateless ops make the result depend only on the
    seed, so a seeded input pipeline is reproducible even with parallel map calls.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    image = tf.image.stateless_random_crop(image, [size, size, 3], seed=seeds[0])
    image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    image = tf.cast(image, tf.float32)
    delta = tf.random.stateless_uniform([], seeds[2], -MAX_BRIGHTNESS_DELTA, MAX_BRIGHTNESS_DELTA)
    image = tf.image.stateless_random_contrast(image + delta, *CONTRAST_RANGE, seed=seeds[3])
    return tf.clip_by_value(image, 0.0, 255.0)


def center_crop(image, size):
    """The central `size` x `size` crop as float32."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - size) // 2, (width - size) // 2
    return tf.cast(image[top:top + size, left:left + size], tf.float32)


def ten_crops(image, size):
    """The paper's over-sampling: 4 corner crops, the centre crop, and their mirrors.

    Returns (10, size, size, 3) float32; the model's softmax is averaged over them.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
               ((height - size) // 2, (width - size) // 2)]
    crops = tf.stack([image[top:top + size, left:left + size] for top, left in corners])
    crops = tf.cast(crops, tf.float32)
    return tf.concat([crops, tf.image.flip_left_right(crops)], axis=0)
