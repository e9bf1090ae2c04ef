"""Optimizers and learning-rate schedules (from a TrainConfig)."""

import keras
import tensorflow as tf


def make_schedule(cfg, learning_rate, total_steps):
    """cfg.schedule over the `total_steps` its optimizer will take, after cfg.warmup_steps."""
    if cfg.schedule == "cosine":
        decay = max(total_steps - cfg.warmup_steps, 1)
        if cfg.warmup_steps:
            return keras.optimizers.schedules.CosineDecay(0.0, decay, warmup_target=learning_rate,
                                                          warmup_steps=cfg.warmup_steps)
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay)
    if cfg.schedule == "step":
        # Caffe's "step" policy: rate * decay_rate ** floor(step / decay_steps). Keras keeps a
        # value while step <= boundary, so each boundary is one step earlier.
        boundaries = [b - 1 for b in range(cfg.decay_steps, total_steps, cfg.decay_steps)]
        values = [learning_rate * cfg.decay_rate ** i for i in range(len(boundaries) + 1)]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else None
    else:
        schedule = None
    return WarmUp(schedule or learning_rate, learning_rate, cfg.warmup_steps)


@keras.saving.register_keras_serializable(package="training")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then `after` (a schedule or a number)."""

    def __init__(self, after, peak, warmup_steps):
        self.after, self.peak, self.warmup_steps = after, peak, warmup_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        after = self.after(step) if callable(self.after) else tf.constant(self.after, tf.float32)
        if not self.warmup_steps:
            return after
        return tf.where(step < self.warmup_steps, self.peak * step / self.warmup_steps, after)

    def get_config(self):
        return {"after": self.after, "peak": self.peak, "warmup_steps": self.warmup_steps}


def make_optimizer(cfg, learning_rate, policy, total_steps):
    """cfg.optimizer with its schedule over `total_steps`. --clip_norm is not the
    optimizer's: the training step clips the whole batch's gradient (steps.make_train_step)."""
    schedule = make_schedule(cfg, learning_rate, total_steps)
    if cfg.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=cfg.momentum)
    elif cfg.optimizer == "adam":
        optimizer = keras.optimizers.Adam(schedule)
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=cfg.adamw_decay)
        # Decay kernels only: shrinking BatchNorm's scale and shift or a bias towards zero
        # regularises nothing (Loshchilov & Hutter's AdamW; timm's no_weight_decay lists).
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    if policy == "mixed_float16":  # float16 gradients underflow without loss scaling.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
