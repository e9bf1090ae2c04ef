"""Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019): each face of a replica's batch
blended with, or patched by, a partner face, and its targets mixed in the same shares.

    mixer = make_mixer(mixup=0.2, cutmix=1.0)     # Beta(alpha, alpha) shares; 0: off
    images, mix = mixer(images, seed)             # mix.share (B,), mix.partner (B,)
    loss = objective(labels, logits, labelled, mix)  # losses.mixed_targets

One share per step, drawn from Beta(alpha, alpha); the partner of face i is face B-1-i of
the same replica's batch (a batch is already in random order). With both on, each step is
one or the other with even odds (as timm's Mixup does). CutMix pastes a rectangle of
1 - share of the area (clipped at the border: the share is then the area actually kept).
A face whose label is unknown for a head lends its image but not its target: the mixed
target of that head is its partner's, or the face's own, alone (losses.mixed_targets).
"""

import collections

import tensorflow as tf

Mix = collections.namedtuple("Mix", ["share", "partner"])


def beta(seed, alpha):
    """A Beta(alpha, alpha) draw from two Gamma(alpha) ones, seeded."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    a = tf.random.stateless_gamma([], seeds[0], alpha)
    b = tf.random.stateless_gamma([], seeds[1], alpha)
    return a / tf.maximum(a + b, 1e-12)


def mixup(images, seed, alpha):
    """(images blended with their partners, Mix)."""
    share = beta(seed, alpha)
    partner = tf.reverse(tf.range(tf.shape(images)[0]), [0])
    mixed = share * images + (1.0 - share) * tf.gather(images, partner)
    return mixed, Mix(tf.fill([tf.shape(images)[0]], share), partner)


def cutmix(images, seed, alpha):
    """(images with a rectangle of their partners' pasted in, Mix)."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    side = tf.sqrt(1.0 - beta(seeds[0], alpha))  # The rectangle's sides, as shares of the image's.
    centre = tf.random.stateless_uniform([2], seeds[1])
    def span(length, middle):
        half = side * tf.cast(length, tf.float32) / 2
        start = tf.cast(tf.round(middle * tf.cast(length, tf.float32) - half), tf.int32)
        stop = tf.cast(tf.round(middle * tf.cast(length, tf.float32) + half), tf.int32)
        return tf.clip_by_value(start, 0, length), tf.clip_by_value(stop, 0, length)
    top, bottom = span(height, centre[0])
    left, right = span(width, centre[1])
    rows, columns = tf.range(height), tf.range(width)
    inside = (((rows >= top) & (rows < bottom))[:, None] & ((columns >= left) & (columns < right))[None, :])
    partner = tf.reverse(tf.range(shape[0]), [0])
    mixed = tf.where(inside[None, :, :, None], tf.gather(images, partner), images)
    share = 1.0 - tf.cast((bottom - top) * (right - left), tf.float32) / tf.cast(height * width, tf.float32)
    return mixed, Mix(tf.fill([shape[0]], share), partner)


def make_mixer(mixup_alpha=0.0, cutmix_alpha=0.0):
    """A function (float32 images (B, H, W, 3), seed) -> (images, Mix), or None when both are off."""
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return None

    def mix(images, seed):
        seeds = tf.random.experimental.stateless_split(seed, num=2)
        if cutmix_alpha <= 0:
            return mixup(images, seeds[0], mixup_alpha)
        if mixup_alpha <= 0:
            return cutmix(images, seeds[0], cutmix_alpha)
        use_cutmix = tf.random.stateless_uniform([], seeds[1]) < 0.5
        return tf.cond(use_cutmix, lambda: cutmix(images, seeds[0], cutmix_alpha),
                       lambda: mixup(images, seeds[0], mixup_alpha))

    return mix
