"""A compact residual network for faces of 64-128 pixels, trained from scratch on a few
thousand faces (configs/real_faces.flags), beside Levi-Hassner (the paper's model).

    stem     conv 3x3/2 -> BN -> ReLU -> conv 3x3 -> BN -> ReLU        (B, S/2, S/2, 32)
    stages   WIDTHS channels, BLOCKS basic residual blocks each; the first block of every
             stage halves the resolution (its shortcut a 1x1/2 conv with BN)
    head     global average pooling -> dropout -> one Dense per head (float32 logits)

A basic block is conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN, plus the shortcut, -> ReLU (He
et al., 2016), with the last BN of each block starting at zero so every block starts as
the identity (Goyal et al., 2017, "zero-gamma"), which lets a deep net train from the
first steps without warm-up tricks. Plain 3x3 convolutions rather than MobileFaceNet's
depthwise ones: on 2 CPU cores TensorFlow runs dense 3x3 convolutions several times as
efficiently per operation, and a face at 112 pixels needs no more than ~0.3 GFLOPs
(scripts/compare_architectures.py prints each network's cost).

BatchNorm is architectures/batch_norm.py's, which trains through TensorFlow's fused kernel
(1.15-1.26 times as fast a step on 2 CPU cores as Keras's; the same variables and inference).

At 112x112 the last feature map is 7x7x256 and the network has ~2.8 M parameters.
Inputs are float32 [0, 255], scaled to [-1, 1] inside the model.
"""

import keras

from architectures.batch_norm import BatchNorm

WIDTHS = (64, 128, 256)
BLOCKS = (2, 2, 2)
STEM = 32


def build(cfg, heads, size, norm_layer=BatchNorm):
    """The compact network for inputs of `size` a side; `heads` maps task -> outputs.
    Returns a model from float32 [0, 255] images to {task: float32 logits}. `norm_layer`:
    the BatchNorm class (scripts/bench_batch_norm.py times Keras's against the fused one)."""
    decay = keras.regularizers.L2(cfg.weight_decay / 2) if cfg.weight_decay else None  # d/dw = wd * w.

    def conv(x, filters, kernel, strides, name):
        return keras.layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False,
                                   kernel_initializer="he_normal", kernel_regularizer=decay, name=name)(x)

    def norm(x, name, zero=False):
        return norm_layer(momentum=0.9, epsilon=1e-5, name=name,
                          gamma_initializer="zeros" if zero else "ones")(x)

    def block(x, filters, strides, name):
        shortcut = x
        if strides != 1 or x.shape[-1] != filters:
            shortcut = norm(conv(x, filters, 1, strides, f"{name}_down"), f"{name}_down_bn")
        y = keras.layers.ReLU(name=f"{name}_relu1")(norm(conv(x, filters, 3, strides, f"{name}_conv1"), f"{name}_bn1"))
        y = norm(conv(y, filters, 3, 1, f"{name}_conv2"), f"{name}_bn2", zero=True)
        return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([shortcut, y]))

    images = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(images)
    x = keras.layers.ReLU(name="stem_relu1")(norm(conv(x, STEM, 3, 2, "stem_conv1"), "stem_bn1"))  # (B, S/2, S/2, 32)
    x = keras.layers.ReLU(name="stem_relu2")(norm(conv(x, STEM, 3, 1, "stem_conv2"), "stem_bn2"))
    for stage, (width, count) in enumerate(zip(WIDTHS, BLOCKS), start=1):
        for i in range(count):
            x = block(x, width, 2 if i == 0 else 1, f"stage{stage}_block{i + 1}")  # Last: (B, S/16, S/16, 256).
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)  # (B, 256)
    x = keras.layers.Dropout(cfg.dropout, name="drop")(x)
    logits = {task: keras.layers.Dense(n, kernel_regularizer=decay, name=f"fc_{task}", dtype="float32")(x)
              for task, n in heads.items()}
    return keras.Model(images, logits, name="compact")
