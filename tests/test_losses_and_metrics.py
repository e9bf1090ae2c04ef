import numpy as np
import tensorflow as tf

from training import losses, metrics


def test_one_off_counts_adjacent_groups_only():
    labels = np.array([0, 3, 3, 3, 7, 5])
    predictions = np.array([1, 3, 2, 5, 7, 7])  # off by 1, exact, 1, 2, exact, 2
    assert metrics.exact_accuracy(labels, predictions) == 2 / 6
    assert metrics.one_off_accuracy(labels, predictions) == 4 / 6


def test_summary_ignores_unknown_labels_and_builds_the_confusion_matrix():
    probabilities = np.eye(3)[[0, 1, 2, 2, 0]]
    labels = np.array([0, 1, 1, -1, 2])
    figures = metrics.summarize(probabilities, labels, ["a", "b", "c"], one_off=True)
    assert figures["num_examples"] == 4
    assert figures["accuracy"] == 0.5
    assert figures["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    assert figures["per_class_accuracy"] == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert figures["one_off_accuracy"] == 0.75  # b->c is one off; c->a is two.


def test_masked_loss_skips_unknown_labels():
    logits = tf.constant([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    labels = tf.constant([0, 0, -1])
    loss = losses.masked_cross_entropy(labels, logits, 2, global_batch_size=3)
    expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(2.0))) / 3
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    all_unknown = losses.masked_cross_entropy(tf.constant([-1, -1, -1]), logits, 2, 3)
    assert float(all_unknown) == 0.0


def test_multi_task_masking_each_head_sees_only_its_labels():
    """An example with only a gender label adds nothing to the age loss, and vice versa."""
    age_logits = tf.constant([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    gender_logits = tf.constant([[1.0, -1.0], [-2.0, 2.0]])
    age = losses.masked_cross_entropy(tf.constant([0, -1]), age_logits, 3, 2)
    gender = losses.masked_cross_entropy(tf.constant([-1, 1]), gender_logits, 2, 2)
    only_first = losses.masked_cross_entropy(tf.constant([0]), age_logits[:1], 3, 2)
    only_second = losses.masked_cross_entropy(tf.constant([1]), gender_logits[1:], 2, 2)
    np.testing.assert_allclose(float(age), float(only_first), rtol=1e-6)
    np.testing.assert_allclose(float(gender), float(only_second), rtol=1e-6)


def test_label_smoothing_and_class_weights():
    logits = tf.constant([[3.0, 0.0]])
    plain = float(losses.masked_cross_entropy(tf.constant([0]), logits, 2, 1))
    smoothed = float(losses.masked_cross_entropy(tf.constant([0]), logits, 2, 1, label_smoothing=0.2))
    log_p = tf.nn.log_softmax(logits).numpy()[0]
    np.testing.assert_allclose(smoothed, -(0.9 * log_p[0] + 0.1 * log_p[1]), rtol=1e-6)
    weighted = float(losses.masked_cross_entropy(tf.constant([0]), logits, 2, 1, class_weights=[3.0, 1.0]))
    np.testing.assert_allclose(weighted, 3 * plain, rtol=1e-6)
