"""The compiled steps: one training step on every replica, and prediction of a batch."""

import keras
import tensorflow as tf

from architectures.heads import expected_years, logits_of, probabilities_of
from evaluation.calibration import CALIBRATED


class StepTotals:
    """Training figures summed on the device over the steps since the last read(): the
    loss, each head's counts, the replicas' stop votes, and the first step whose loss was
    not finite. The loop reads them back only when it logs, validates, checkpoints or
    may have to stop, so a fast accelerator is never held up by a per-step round trip to
    Python. Made in the strategy's scope."""

    def __init__(self, heads):
        def zeros(shape=(), dtype=tf.float32):
            return tf.Variable(tf.zeros(shape, dtype), trainable=False)

        self.steps, self.first_nonfinite = zeros(dtype=tf.int64), zeros(dtype=tf.int64)
        self.loss, self.stops = zeros(), zeros()
        self.counts = {head: zeros((3,)) for head in heads}

    def add(self, step, loss, counts, stops):
        """In the step (cross-replica context): adds one step's reduced figures."""
        self.steps.assign_add(1)
        self.loss.assign_add(loss)
        self.stops.assign_add(stops)
        first = tf.logical_not(tf.math.is_finite(loss)) & tf.equal(self.first_nonfinite, 0)
        self.first_nonfinite.assign(tf.where(first, step, self.first_nonfinite))
        for head, value in counts.items():
            self.counts[head].assign_add(value)

    def _variables(self):
        return [self.steps, self.first_nonfinite, self.loss, self.stops, *self.counts.values()]

    def read(self):
        """{"steps", "loss" (summed), "counts" {head: 3 floats}, "stops" (votes), "first_nonfinite"
        (0: none)} since the last read, which it zeroes: the loop's one trip to the host."""
        steps, first, loss, stops, *counts = [v.numpy() for v in self._variables()]
        for variable in self._variables():
            variable.assign(tf.zeros_like(variable))
        return {"steps": int(steps), "loss": float(loss), "stops": float(stops), "first_nonfinite": int(first),
                "counts": dict(zip(self.counts, counts, strict=True))}


def make_train_step(model, optimizer, strategy, objective, augment, seed=0, clip_norm=0.0, totals=None,
                    jit_compile=False, mixer=None, ema=None):
    """A tf.function that takes the next batch of uint8 faces from a distributed
    iterator, augments each replica's share (`augment(images, seed)`, e.g.
    preprocess.augmentation), trains one step on every replica, and returns the summed
    loss, per-head counts and the number of replicas asked to stop. The counts are
    (correct, one-off, known) for a class head and (summed absolute error in years,
    within 5 years, known) for age_years.

    The loss is `objective` (losses.Objective: the sum over its heads of each head's
    weight times its mean loss over the faces of the whole batch, all replicas, that
    carry its label: a head labelled on few faces of a batch learns at the rate of one
    labelled on all of them) plus the model's regularization losses. `clip_norm` > 0
    clips the whole batch's gradient to that global norm. `seed` and the step number
    seed the augmentation.

    With `totals` (a StepTotals) the step also adds its figures to them on the device;
    the results need not be read. `jit_compile` compiles each replica's forward and
    backward pass with XLA (the augmentation, the gradient update and the stop vote stay
    outside: some augmentation ops have no XLA kernel, and the rest talk to the other
    replicas). `mixer` (mixing.make_mixer) mixes each
    replica's augmented faces and the objective mixes their targets alike; the counts
    stay those of each face's own labels. `ema` (ema.WeightAverage) is updated after
    every step."""
    heads = objective.heads
    # Keras 3's TF optimizer sums over the replicas the gradients each one hands it, but
    # clips them (global_clipnorm) and, under LossScaleOptimizer, decides "finite?" (from
    # the first replica alone) before that sum, on each replica's partial gradient: one
    # replica's inf went into the weights, and each replica clipped its own share. So
    # with clipping the step sums the gradients first: every replica holds the whole
    # batch's gradient, clips it, and hands the optimizer 1/N of it, which the optimizer's
    # own sum makes whole again (one more all-reduce of the gradients). With loss scaling
    # alone the replicas only agree on one number: when any replica's gradient is not
    # finite, every replica's is made so, and all of them skip the step and halve the scale.
    loss_scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def prepare(images, replica_seed):
        """Augmented (and mixed) faces; outside XLA: ImageProjectiveTransformV3 and the Gamma
        draws of mixing have no XLA kernel."""
        images = augment(images, replica_seed)
        if mixer is None:
            return images, None
        return mixer(images, tf.random.experimental.stateless_fold_in(replica_seed, 11))

    def gradients(images, labels, mix, labelled):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = objective(labels, logits, labelled, mix)
            if model.losses:  # Weight decay and head penalties, once per global batch.
                loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(x, tf.float32) for x in model.losses]))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        counts = {head: _counts(head, labels[head], tf.cast(logits[head], tf.float32)) for head in heads}
        return loss, grads, counts

    if jit_compile:
        gradients = tf.function(gradients, jit_compile=True)

    def replica_step(images, labels, step_seed, stop):
        context = tf.distribute.get_replica_context()
        # Each head's faces with a label in the whole batch: its loss is the mean over them.
        labelled = context.all_reduce("SUM", tf.stack([tf.reduce_sum(tf.cast(labels[h] >= 0, tf.float32))
                                                       for h in heads]))
        replica_seed = tf.random.experimental.stateless_fold_in(step_seed, context.replica_id_in_sync_group)
        images, mix = prepare(images, replica_seed)
        loss, grads, counts = gradients(images, labels, mix, labelled)
        if clip_norm > 0:
            grads = context.all_reduce("SUM", grads)
            # The gradients are of the scaled loss: so is the limit. inf stays inf.
            grads, _ = tf.clip_by_global_norm(grads, optimizer.scale_loss(clip_norm))
            grads = [g / context.num_replicas_in_sync for g in grads]
        elif loss_scaling:
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            all_finite = context.all_reduce("SUM", 1.0 - tf.cast(finite, tf.float32)) == 0  # No replica's is not.
            grads = [grads[0] + tf.cast(tf.where(all_finite, 0.0, float("nan")), grads[0].dtype), *grads[1:]]
        optimizer.apply(grads, model.trainable_variables)
        # Every replica of every worker votes; all of them see the same total.
        stops = context.all_reduce("SUM", tf.cast(stop, tf.float32))
        return loss, counts, stops

    @tf.function
    def train_step(iterator, step, stop=False):
        """`step` (int64 scalar) seeds this step's augmentation (with the seed of the run).
        `stop` (bool) is this worker's wish to stop; the third result, summed over every
        replica of every worker, is > 0 when any worker wants to, so all stop together."""
        images, labels = next(iterator)
        step_seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), step)
        loss, counts, stops = strategy.run(replica_step, args=(images, labels, step_seed, stop))
        # One reduce per tensor: MultiWorkerMirroredStrategy cannot reduce a dict across workers.
        counts = {task: strategy.reduce("SUM", value, axis=None) for task, value in counts.items()}
        loss, stops = strategy.reduce("SUM", loss, axis=None), strategy.experimental_local_results(stops)[0]
        if ema is not None:
            ema.update()
        if totals is not None:
            totals.add(step, loss, counts, stops)
        return loss, counts, stops

    return train_step


def _counts(head, labels, logits):
    """This batch's (correct, one-off, known) of a class head; (summed absolute error,
    within 5 years, known) of age_years."""
    known = labels >= 0
    if head == "age_years":
        error = tf.abs(expected_years(tf.nn.softmax(logits)) - tf.cast(labels, tf.float32))
        hits, near = tf.where(known, error, 0.0), error <= 5
    else:
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        hits = tf.cast((predicted == labels) & known, tf.float32)
        near = tf.abs(predicted - labels) <= 1  # Adjacent age bins count (reported for age only).
    return tf.stack([tf.reduce_sum(hits), tf.reduce_sum(tf.cast(near & known, tf.float32)),
                     tf.reduce_sum(tf.cast(known, tf.float32))])


def make_predict_step(model, heads, oversample, temperatures=None, flip=False, offsets=None):
    """A tf.function from a batch of uint8 images (B, S, S, 3) to per-head softmax
    probabilities; with `oversample`, images are (B, 10, S, S, 3) and the 10 crops'
    softmaxes are averaged; with `flip` (and not oversample, whose crops hold their
    mirrors already) each face's logits are averaged with its mirror's (heads.logits_of).
    With `temperatures` {head: T} (None or a missing head: none), also each such head's
    softmax of logits / T under calibration.CALIBRATED + head, as the export computes it.
    `offsets` {head: (C,)} take the age prior out of both (heads.probabilities_of;
    training/age_prior.py). Traced once, for any batch size (a pass ends on a smaller one)."""
    temperatures = {head: t for head, t in (temperatures or {}).items() if t and head in heads}
    offsets = offsets or {}
    crop = tuple(model.inputs[0].shape[1:])
    spec = tf.TensorSpec((None, 10, *crop) if oversample else (None, *crop), tf.uint8)

    @tf.function(input_signature=[spec])
    def predict(images):
        if oversample:
            shape = tf.shape(images)
            images = tf.reshape(images, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))
        logits = logits_of(model, tf.cast(images, tf.float32), flip and not oversample)

        def softmax(head, calibrate):
            p = probabilities_of(logits[head], temperatures.get(head, 1.0), offsets.get(head), calibrate)
            return tf.reduce_mean(tf.reshape(p, [-1, 10, p.shape[-1]]), axis=1) if oversample else p

        probabilities = {}
        for head in heads:
            probabilities[head] = softmax(head, calibrate=False)
            if head in temperatures:
                probabilities[CALIBRATED + head] = softmax(head, calibrate=True)
        return probabilities

    return predict
