import numpy as np
import pytest
import tensorflow as tf

from evaluation import calibration, fairness, metrics
from input_pipeline import labels
from training import losses


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


def test_masked_loss_is_the_mean_over_the_labelled_faces():
    logits = tf.constant([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    labels = tf.constant([0, 0, -1])
    loss = losses.masked_cross_entropy(labels, logits, 2, labelled=2.0)
    expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(2.0))) / 2  # Two labelled faces, not three.
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    all_unknown = losses.masked_cross_entropy(tf.constant([-1, -1, -1]), logits, 2, labelled=0.0)
    assert float(all_unknown) == 0.0


def test_a_sparse_head_learns_at_the_rate_of_a_full_one():
    """The loss of a head labelled on 1 face of 8 is that face's loss, not an eighth of it
    (a race or age_years head beside a fully labelled one was down-weighted that way)."""
    logits = tf.constant([[1.0, -1.0]] * 8)
    sparse = tf.constant([1] + [-1] * 7)
    full = tf.constant([1] * 8)
    np.testing.assert_allclose(float(losses.head_loss("race", sparse, logits, 1.0)),
                               float(losses.head_loss("race", full, logits, 8.0)), rtol=1e-6)


def test_multi_task_masking_each_head_sees_only_its_labels():
    """An example with only a gender label adds nothing to the age loss, and vice versa."""
    age_logits = tf.constant([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    gender_logits = tf.constant([[1.0, -1.0], [-2.0, 2.0]])
    age = losses.masked_cross_entropy(tf.constant([0, -1]), age_logits, 3, 1.0)
    gender = losses.masked_cross_entropy(tf.constant([-1, 1]), gender_logits, 2, 1.0)
    only_first = losses.masked_cross_entropy(tf.constant([0]), age_logits[:1], 3, 1.0)
    only_second = losses.masked_cross_entropy(tf.constant([1]), gender_logits[1:], 2, 1.0)
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


def test_years_loss_masks_unknown_ages_and_prefers_the_true_age():
    logits = np.full((3, 101), -5.0, np.float32)
    logits[0, 30] = logits[1, 70] = logits[2, 10] = 5.0
    years = tf.constant([30, 30, -1])
    loss = losses.masked_years_loss(years, tf.constant(logits), labelled=3.0)
    right = losses.masked_years_loss(tf.constant([30]), tf.constant(logits[:1]), 3)
    wrong = losses.masked_years_loss(tf.constant([30]), tf.constant(logits[1:2]), 3)
    np.testing.assert_allclose(float(loss), float(right) + float(wrong), rtol=1e-5)  # The third adds nothing.
    assert float(right) < float(wrong)
    target = losses.years_targets(tf.constant([30])).numpy()[0]
    assert target.argmax() == 30 and abs(target.sum() - 1) < 1e-6 and target[28] == target[32] > target[35]


def test_head_weights_are_parsed_and_checked():
    assert losses.parse_head_weights(["gender=0.5"], ["age", "gender"]) == {"age": 1.0, "gender": 0.5}
    for bad, message in ((["race=1"], "for a head"), (["age=x"], "not a number"), (["age=-1"], "negative")):
        with pytest.raises(ValueError, match=message):
            losses.parse_head_weights(bad, ["age", "gender"])


def test_mae_and_within_5_on_hand_made_ages():
    years = np.array([20, 30, 40, 50])
    predicted = np.array([25.0, 30.0, 34.0, 60.0])  # errors 5, 0, 6, 10
    assert metrics.mean_absolute_error(years, predicted) == 21 / 4
    assert metrics.within(years, predicted) == 0.5  # 5 counts as within 5; 6 does not.
    probabilities = np.zeros((2, 101))
    probabilities[0, [20, 30]] = 0.5  # Expected age 25.
    probabilities[1, 60] = 1.0
    figures = metrics.summarize_years(probabilities, np.array([27, -1]), labels.ADIENCE, np.array([4, 7]))
    assert figures["num_examples"] == 1 and figures["mae"] == 2.0 and figures["within_5"] == 1.0
    assert figures["bin_accuracy"] == 1.0  # 25 -> (25, 32); 60 -> (60, 100).


def test_ece_on_hand_made_cases():
    # Two confidence bins: 4 faces at 0.9 with 3 right, 4 at 0.6 with 2 right.
    p = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 4)
    y = np.array([0, 0, 0, 1, 0, 0, 1, 1])
    ece, bins = calibration.calibration(p, y)
    np.testing.assert_allclose(ece, 0.5 * abs(0.75 - 0.9) + 0.5 * abs(0.5 - 0.6))
    filled = [b for b in bins if b["count"]]
    assert [(b["count"], b["accuracy"]) for b in filled] == [(4, 0.5), (4, 0.75)]
    assert len(bins) == calibration.ECE_BINS and bins[-1]["high"] == 1.0
    perfect, _ = calibration.calibration(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))
    assert perfect == 0.0


def test_temperature_scaling_lowers_the_nll_of_an_over_confident_set_and_keeps_every_argmax():
    rng = np.random.default_rng(0)
    labels_ = rng.integers(0, 4, size=2000)
    logits = rng.normal(size=(2000, 4))
    logits[np.arange(2000), labels_] += 1.0  # Right about half the time ...
    over_confident = np.exp(4 * logits) / np.exp(4 * logits).sum(axis=1, keepdims=True)  # ... sure every time.
    t = calibration.fit_temperature(over_confident, labels_)
    assert 3.5 < t < 4.5  # It undoes the factor 4.
    after = calibration.scaled(over_confident, t)
    assert calibration.nll(after, labels_) < 0.8 * calibration.nll(over_confident, labels_)
    assert calibration.calibration(after, labels_)[0] < 0.3 * calibration.calibration(over_confident, labels_)[0]
    np.testing.assert_array_equal(after.argmax(axis=1), over_confident.argmax(axis=1))
    np.testing.assert_allclose(calibration.scaled(over_confident, 1.0), over_confident, atol=1e-9)
    assert calibration.fit_temperature(np.zeros((0, 4)), np.zeros((0,), np.int64)) is None
    assert calibration.nll(np.zeros((0, 4)), np.zeros((0,), np.int64)) is None


def test_the_temperature_of_a_very_confident_head_is_the_one_its_logits_give():
    """A float32 softmax of logit gaps of 30-60 (a confident two-class head) holds the
    losing class's probability down to 1e-26; a log floor of 1e-12 cut those gaps to 27.6,
    made the confident mistakes look less wrong and fitted T about a third too low."""
    rng = np.random.default_rng(1)
    labels_ = rng.integers(0, 2, size=1000)
    gap = rng.uniform(30, 60, size=1000) * np.where(rng.random(1000) < 0.9, 1, -1)  # 10% confidently wrong.
    logits = np.zeros((1000, 2))
    logits[np.arange(1000), labels_] = gap
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = (np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)).astype(np.float32)

    def nll_of_logits(t):  # The reference: the NLL computed from the logits themselves, in float64.
        z = logits / t
        return np.mean(np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)) + z.max(axis=1)
                       - z[np.arange(1000), labels_])

    grid = np.exp(np.linspace(np.log(1), np.log(100), 4001))
    reference = grid[np.argmin([nll_of_logits(t) for t in grid])]
    assert abs(calibration.fit_temperature(probabilities, labels_) / reference - 1) < 0.01, reference
    assert abs(calibration.nll(probabilities, labels_) - nll_of_logits(1.0)) < 0.01 * nll_of_logits(1.0)


def test_an_empty_set_has_no_figures_not_zeros():
    """An empty validation split scored 0.0, beat -inf and was kept as the best checkpoint."""
    none = metrics.summarize(np.zeros((0, 3)), np.zeros((0,), np.int64), ["a", "b", "c"], one_off=True)
    assert none["num_examples"] == 0
    assert none["accuracy"] is None and none["one_off_accuracy"] is None
    assert calibration.calibration(np.zeros((0, 3)), np.zeros((0,), np.int64))[0] is None
    unlabelled = metrics.summarize(np.eye(3)[[0, 1]], np.array([-1, -1]), ["a", "b", "c"], one_off=False)
    assert unlabelled["accuracy"] is None
    years = metrics.summarize_years(np.zeros((1, 101)), np.array([-1]), labels.ADIENCE, np.array([-1]))
    assert years["mae"] is None and years["within_5"] is None and years["bin_accuracy"] is None
    assert metrics.headline("age", none) is None and metrics.headline("age_years", years) is None
    assert metrics.score({"age": none, "age_years": years}) is None
    assert "no labelled faces" in metrics.describe("age", none)


def test_the_score_averages_the_heads_that_saw_faces():
    right = metrics.summarize(np.eye(2)[[0, 1]], np.array([0, 1]), ["m", "f"], one_off=False)  # 100%
    half = metrics.summarize(np.eye(2)[[0, 0]], np.array([0, 1]), ["m", "f"], one_off=False)  # 50%
    empty = metrics.summarize(np.eye(3)[[0]], np.array([-1]), ["A", "B", "C"], one_off=False)
    probabilities = np.zeros((1, 101))
    probabilities[0, 30] = 1.0
    years = metrics.summarize_years(probabilities, np.array([50]), labels.ADIENCE, np.array([-1]))  # MAE 20
    assert metrics.headline("age_years", years) == -2.0
    # The race head with no labelled face adds nothing: it does not pull every run's score down alike.
    assert metrics.score({"gender": right, "age": half, "race": empty}) == 0.75
    assert metrics.score({"gender": right, "age_years": years}) == (1.0 - 2.0) / 2


def test_the_recorded_test_score_is_read_and_an_older_metrics_json_still_scores():
    figures = {"gender": metrics.summarize(np.eye(2)[[0, 0]], np.array([0, 1]), ["m", "f"], one_off=False)}
    assert metrics.recorded_score({"score": {"single_crop": 0.25}, "single_crop": figures}) == 0.25
    assert metrics.recorded_score({"single_crop": figures}) == 0.5  # Written before "score" was.


def test_fairness_breakdown_on_hand_made_groups():
    head_labels = {"gender": np.array([0, 0, 1, 1, 1, -1]), "race": np.array([0, 1, 0, 1, -1, 1]),
                   "age": np.array([0, 1, 0, 1, 1, 0])}
    predicted = np.eye(2)[[0, 1, 1, 0, 1, 1]]  # Right, right, wrong, wrong, right, wrong.
    out = fairness.breakdown("age", predicted, head_labels, {"gender": ["m", "f"], "race": ["A", "B", "C"]})
    gender = out["gender"]
    assert gender["groups"] == {"m": {"num_examples": 2, "value": 1.0}, "f": {"num_examples": 3, "value": 1 / 3}}
    assert gender["best"] == "m" and gender["worst"] == "f" and abs(gender["gap"] - 2 / 3) < 1e-9
    race = out["race"]  # The unknown-race face is left out; C has no faces and is not a group.
    assert race["groups"] == {"A": {"num_examples": 2, "value": 0.5}, "B": {"num_examples": 3, "value": 1 / 3}}
    years = {"gender": np.array([0, 1]), "race": np.array([-1, -1]), "age_years": np.array([20, 40])}
    p = np.zeros((2, 101))
    p[0, 22] = p[1, 30] = 1.0
    mae = fairness.breakdown("age_years", p, years, {"gender": ["m", "f"], "race": ["A"]})
    assert mae["gender"]["best"] == "m" and mae["gender"]["gap"] == 8.0 and "race" not in mae  # Lower MAE is better.
