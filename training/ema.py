"""An exponential moving average of the weights (Polyak averaging): evaluated, selected,
calibrated, tested and exported in place of the last step's weights when --ema_decay > 0.

    ema = WeightAverage(model, decay=0.999)   # in the strategy's scope; checkpointed
    ema.update()                              # in the train step, after the optimizer's
    with ema.swapped(model): evaluate(...)    # the averages in the model, then back
    ema.assign_to(copy)                       # the averages into another build of the model

Every floating-point weight is averaged, BatchNorm's moving statistics too (as timm's
ModelEmaV2 does), so the averaged model's normalisation matches its averaged kernels. The
decay ramps up as min(decay, (1 + n) / (10 + n)) over the n updates so far (TensorFlow's
ExponentialMovingAverage with num_updates): early averages are not dominated by the
random initial weights, which a short run would otherwise export. So a decay of 0.999 is
only reached after ~9,000 steps; metrics.json records the one the exported average had
reached (3,000 steps: 0.9970, an average over the last ~330 steps).
"""

import contextlib

import tensorflow as tf


def _floats(model):
    return [w for w in model.weights if w.dtype in ("float16", "bfloat16", "float32", "float64")]


class WeightAverage(tf.Module):
    def __init__(self, model, decay):
        super().__init__(name="ema")
        self.decay = decay
        self._weights = _floats(model)
        self.averages = [tf.Variable(tf.convert_to_tensor(w.value), trainable=False, name=f"ema_{i}")
                         for i, w in enumerate(self._weights)]
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_updates")

    def update(self):
        """One averaging step (in the train step's cross-replica context, after the weights changed)."""
        count = tf.cast(self.updates.assign_add(1), tf.float32)
        decay = tf.minimum(self.decay, (1.0 + count) / (10.0 + count))
        for average, weight in zip(self.averages, self._weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * tf.cast(weight.value, average.dtype))

    def reached(self):
        """The decay of the last update: under 0.999 until ~9,000 updates (the ramp)."""
        count = float(self.updates.numpy())
        return min(self.decay, (1.0 + count) / (10.0 + count)) if count else 0.0

    def assign_to(self, model):
        """Puts the averages into `model`, a build of the same architecture (float32_copy's)."""
        weights = _floats(model)
        if [tuple(w.shape) for w in weights] != [tuple(a.shape) for a in self.averages]:
            raise ValueError("the moving averages do not fit this model's weights")
        for weight, average in zip(weights, self.averages, strict=True):
            weight.assign(tf.cast(average, weight.dtype))

    @contextlib.contextmanager
    def swapped(self, model):
        """The averages in `model` for the duration; its own weights back after."""
        kept = [tf.convert_to_tensor(w.value) for w in self._weights]
        self.assign_to(model)
        try:
            yield
        finally:
            for weight, value in zip(self._weights, kept, strict=True):
                weight.assign(value)
