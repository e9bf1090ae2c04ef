"""The compiled steps: one training step on every replica, and prediction of a batch."""

import tensorflow as tf

from input_pipeline import preprocess
from training import losses


def make_train_step(model, optimizer, strategy, heads, global_batch_size, image_size, seed=0, label_smoothing=0.0,
                    class_weights=None):
    """A tf.function that takes the next batch of uint8 faces from a distributed
    iterator, augments it (preprocess.train_batch: crops of `image_size`), trains one step
    on every replica, and returns the summed loss, per-head (correct, one-off, known)
    and the number of replicas asked to stop."""
    class_weights = class_weights or {}

    def replica_step(images, labels, step_seed, stop):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        replica_seed = tf.random.experimental.stateless_fold_in(step_seed, replica)
        images = preprocess.train_batch(images, replica_seed, image_size)
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = 0.0
            for task, num_classes in heads.items():
                loss += losses.masked_cross_entropy(labels[task], tf.cast(logits[task], tf.float32), num_classes,
                                                    global_batch_size, label_smoothing, class_weights.get(task))
            if model.losses:  # Weight decay and head penalties, once per global batch.
                loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(x, tf.float32) for x in model.losses]))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        counts = {}
        for task in heads:
            known = labels[task] >= 0
            predicted = tf.argmax(logits[task], axis=-1, output_type=tf.int32)
            one_off = tf.abs(predicted - labels[task]) <= 1  # Adjacent age groups count (age only).
            counts[task] = tf.stack([tf.reduce_sum(tf.cast((predicted == labels[task]) & known, tf.float32)),
                                     tf.reduce_sum(tf.cast(one_off & known, tf.float32)),
                                     tf.reduce_sum(tf.cast(known, tf.float32))])
        # Every replica of every worker votes; all of them see the same total.
        stops = tf.distribute.get_replica_context().all_reduce("SUM", tf.cast(stop, tf.float32))
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
        return strategy.reduce("SUM", loss, axis=None), counts, strategy.experimental_local_results(stops)[0]

    return train_step


def make_predict_step(model, heads, oversample):
    """A tf.function from a batch of images to per-head softmax probabilities; with
    `oversample`, images are (B, 10, S, S, 3) and the 10 crops' softmaxes are averaged."""

    @tf.function(reduce_retracing=True)  # The last batch of a pass is smaller.
    def predict(images):
        if oversample:
            shape = tf.shape(images)
            images = tf.reshape(images, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))
        logits = model(tf.cast(images, tf.float32), training=False)
        probabilities = {}
        for task in heads:
            p = tf.nn.softmax(tf.cast(logits[task], tf.float32))
            probabilities[task] = tf.reduce_mean(tf.reshape(p, [-1, 10, p.shape[-1]]), axis=1) if oversample else p
        return probabilities

    return predict
