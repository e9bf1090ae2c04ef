"""The CNN of Levi & Hassner (CVPR 2015 workshops), as in their released Caffe model.

conv1 96@7x7/4 -> ReLU -> max-pool 3/2 -> LRN; conv2 256@5x5 pad 2 -> ReLU -> max-pool
3/2 -> LRN; conv3 384@3x3 pad 1 -> ReLU -> max-pool 3/2; fc6 512 -> ReLU -> dropout;
fc7 512 -> ReLU -> dropout; fc8 per task. At 227x227 the last feature map is 7x7x384.
"""

import keras
import tensorflow as tf

# ImageNet mean in RGB: Caffe subtracts a mean image and does not scale.
MEAN_RGB = (123.68, 116.78, 103.94)
# Caffe LRN: x / (1 + alpha / n * sum over n = local_size channels of x^2) ^ beta with
# local_size 5, alpha 1e-4, beta 0.75. TF sums over 2 * depth_radius + 1 channels and
# does not divide alpha by n: depth_radius 2, alpha 1e-4 / 5 = 2e-5.
LRN = dict(depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75)


@keras.saving.register_keras_serializable(package="architectures")
class LocalResponseNorm(keras.layers.Layer):
    """Caffe's across-channel LRN. Always float32: TF has no bfloat16 CPU kernel for it."""

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"  # Inputs are cast up, whatever the global policy.
        super().__init__(**kwargs)

    def call(self, x):
        return tf.nn.local_response_normalization(x, **LRN)


def _gauss(std):
    return keras.initializers.RandomNormal(stddev=std)


def _const(value):
    return keras.initializers.Constant(value)


def build(cfg, heads, size):
    """Levi-Hassner for inputs of `size` a side; `heads` maps task -> number of classes.

    Returns a model from float32 [0, 255] images to {task: float32 logits}.
    """
    decay = keras.regularizers.L2(cfg.weight_decay / 2)  # d/dw (wd/2 |w|^2) = wd * w.

    def conv(filters, kernel, strides, padding, bias, name):
        return keras.layers.Conv2D(filters, kernel, strides, padding=padding, activation="relu",
                                   kernel_initializer=_gauss(0.01), bias_initializer=_const(bias),
                                   kernel_regularizer=decay, name=name)

    def dense(units, std, bias, name, **kwargs):
        return keras.layers.Dense(units, kernel_initializer=_gauss(std), bias_initializer=_const(bias),
                                  kernel_regularizer=decay, name=name, **kwargs)

    images = keras.Input((size, size, 3), name="image")
    x = keras.layers.Normalization(mean=MEAN_RGB, variance=(1.0, 1.0, 1.0), name="mean")(images)
    x = conv(96, 7, 4, "valid", 0.0, "conv1")(x)  # (B, 56, 56, 96) at 227.
    # Caffe's pooling rounds up; "same" pooling gives the same sizes (and pads only
    # where Caffe's extra window reaches past the edge).
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)  # (B, 28, 28, 96)
    x = LocalResponseNorm(name="norm1")(x)
    x = conv(256, 5, 1, "same", 1.0, "conv2")(x)  # pad 2: (B, 28, 28, 256)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="pool2")(x)  # (B, 14, 14, 256)
    x = LocalResponseNorm(name="norm2")(x)
    x = conv(384, 3, 1, "same", 0.0, "conv3")(x)  # pad 1: (B, 14, 14, 384)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="pool5")(x)  # (B, 7, 7, 384)
    x = keras.layers.Flatten(name="flatten")(x)
    x = dense(512, 0.005, 1.0, "fc6", activation="relu")(x)
    x = keras.layers.Dropout(cfg.dropout, name="drop6")(x)
    x = dense(512, 0.005, 1.0, "fc7", activation="relu")(x)
    x = keras.layers.Dropout(cfg.dropout, name="drop7")(x)
    logits = {task: dense(n, 0.01, 0.0, f"fc8_{task}", dtype="float32")(x) for task, n in heads.items()}
    return keras.Model(images, logits, name="levi_hassner")
