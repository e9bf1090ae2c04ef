"""Run by tests/test_steps.py in a process of its own: the CPU split into two logical
devices, MirroredStrategy over them as a stand-in for two GPUs. Prints one JSON object
of what the training step did with one replica and with two."""

import json

import numpy as np

from training import runtime

runtime.split_cpu(2)  # Before TensorFlow uses any device.

# ruff: noqa: E402 (after the device set-up)
import keras
import tensorflow as tf

import architectures
from architectures.config import ModelConfig
from input_pipeline import preprocess
from training import losses, optim, steps
from training.config import TrainConfig

SIZE, BATCH = 16, 8
HEADS = {"gender": 2, "race": 5}


def batch():
    """Faces constant along each row (a mirror changes nothing) at the crop size (the crop
    is the whole face), so both replicas' augmentations leave them as they are. Only the
    first replica's half has race labels: two of them."""
    rng = np.random.default_rng(0)
    images = np.repeat(rng.uniform(0, 255, size=(BATCH, SIZE, 1, 3)), SIZE, axis=2).astype(np.uint8)
    labels = {"gender": np.array([0, 1, 1, 0, 1, 0, 0, 1], np.int32),
              "race": np.array([2, -1, 4, -1, -1, -1, -1, -1], np.int32)}
    return images, labels


@keras.saving.register_keras_serializable(package="tests")
class Poison(keras.layers.Layer):
    """The identity, whose gradient is inf on the second replica only: one GPU's float16
    overflow."""

    def call(self, x):
        @tf.custom_gradient
        def identity(x):
            def gradient(upstream):
                replica = tf.distribute.get_replica_context().replica_id_in_sync_group
                return upstream * tf.where(tf.equal(replica, 1), float("inf"), 1.0)

            return tf.identity(x), gradient

        return identity(x)


def model_with(poison):
    keras.utils.set_random_seed(1)
    if not poison:
        return architectures.build(ModelConfig(arch="tiny", dropout=0.0), HEADS, SIZE)
    images = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(keras.layers.Rescaling(1 / 255)(images))
    x = keras.layers.GlobalAveragePooling2D()(Poison()(x))
    return keras.Model(images, {head: keras.layers.Dense(n, name=f"fc_{head}")(x) for head, n in HEADS.items()})


def one_step(strategy, clip_norm=0.0, loss_scaling=False, poison=False):
    """(weights before, weights after, the step's loss, the loss scale after) of one step
    of SGD at 0.5, as model.py makes it (optim.make_optimizer, LossScaleOptimizer as under
    mixed_float16, here around float32 weights)."""
    cfg = TrainConfig(optimizer="sgd", momentum=0.0, learning_rate=0.5, schedule="constant", clip_norm=clip_norm)
    with strategy.scope():
        model = model_with(poison)
        optimizer = optim.make_optimizer(cfg, cfg.learning_rate, "mixed_float16" if loss_scaling else "float32", 1)
        optimizer.build(model.trainable_variables)
    before = [w.copy() for w in model.get_weights()]
    images, labels = batch()
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(data))
    step = steps.make_train_step(model, optimizer, strategy, losses.Objective(HEADS),
                                 preprocess.augmentation(SIZE, color_jitter=False), clip_norm=clip_norm)
    loss, _, _ = step(iterator, tf.constant(1, tf.int64))
    scale = float(optimizer.dynamic_scale.numpy()) if loss_scaling else None
    return before, model.get_weights(), float(loss), scale


def race_loss_by_hand():
    """The mean cross-entropy of the race head over its two labelled faces, and the
    gender head's over all eight, from the model's logits before the step."""
    model = model_with(False)
    images, labels = batch()
    logits = model(images.astype(np.float32))
    total = 0.0
    for head in HEADS:
        known = labels[head] >= 0
        log_p = tf.nn.log_softmax(logits[head]).numpy()[known]
        total += float(-np.mean(log_p[np.arange(known.sum()), labels[head][known]]))
    return total


def largest_difference(a, b):
    return float(max(np.max(np.abs(x - y)) for x, y in zip(a, b, strict=True)))


def main():
    one = tf.distribute.get_strategy()
    two = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    out = {"replicas": two.num_replicas_in_sync}
    for clip_norm in (0.0, 0.01):
        before, after_one, loss_one, _ = one_step(one, clip_norm)
        _, after_two, loss_two, _ = one_step(two, clip_norm)
        out[f"clip_{clip_norm}"] = {
            "one_vs_two_replicas": largest_difference(after_one, after_two),
            "update_norm_one": float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after_one, before)))),
            "update_norm_two": float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after_two, before)))),
            "loss_one": loss_one, "loss_two": loss_two}
    out["loss_by_hand"] = race_loss_by_hand()
    _, after_one, _, scale_one = one_step(one, loss_scaling=True)
    _, after_two, _, scale_two = one_step(two, loss_scaling=True)
    out["loss_scaled"] = {"one_vs_two_replicas": largest_difference(after_one, after_two),
                          "scales": [scale_one, scale_two]}
    before, after, _, scale = one_step(two, loss_scaling=True, poison=True)
    out["poisoned"] = {"finite": bool(all(np.isfinite(w).all() for w in after)),
                       "unchanged": largest_difference(before, after) == 0.0,
                       "loss_scale": scale, "initial_scale": 2.0 ** 15}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
