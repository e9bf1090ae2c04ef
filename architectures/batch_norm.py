"""BatchNorm that trains through TensorFlow's fused kernel.

Keras 3's BatchNormalization computes the batch moments and the normalisation as separate
ops, several passes over every feature map; TensorFlow's FusedBatchNormV3 does it in one,
forward and backward. On 2 CPU cores the compact network's training step is 1.15-1.26
times as fast with it (scripts/bench_batch_norm.py prints the ratio). Inference, export
and TFLite take Keras's own path (moving statistics, plain ops), and the variables are
Keras's, so checkpoints of either class load into the other.

The fused kernel takes channels-last 4-D inputs with a centre and a float32 scale (any
mixed policy); anything else (masks, renorm, a frozen layer, a pure half-precision policy,
inference) goes through Keras unchanged. The kernel's variance output is Bessel-corrected;
Keras keeps the biased one in its moving variance, and so does this layer.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="architectures")
class BatchNorm(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training step runs FusedBatchNormV3."""

    def _fusable(self, inputs, training, mask):
        return (training and self.trainable and mask is None and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.center and self.scale and not self.renorm
                and not self.synchronized and self.gamma.dtype == "float32")

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        # Half-precision inputs stay half: the kernel accumulates in float32 (scale, offset
        # and the moments are float32), as Keras does by casting up.
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=self.gamma.value, offset=self.beta.value,
            mean=tf.constant([], tf.float32), variance=tf.constant([], tf.float32),
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
        variance = variance * ((n - 1.0) / n)  # Back to the biased variance Keras keeps.
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)
