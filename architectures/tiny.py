"""A minimal network (one small convolution, global pooling, a Dense layer per head) for
smoke tests and for measuring what the training loop itself costs: with so little to
compute, a step's time is the loop's overhead (scripts/bench_train.py --arch=tiny)."""

import keras


def build(cfg, heads, size):
    """From float32 [0, 255] images of `size` a side to {task: float32 logits}."""
    images = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="scale")(images)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(cfg.dropout, name="drop")(x)
    logits = {task: keras.layers.Dense(n, name=f"fc_{task}", dtype="float32")(x) for task, n in heads.items()}
    return keras.Model(images, logits, name="tiny")
