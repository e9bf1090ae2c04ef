"""The training recipe's pieces: geometric augmentation, mixup and CutMix with their
mixed targets, the moving average of the weights, and the test-time flip; each in a
real training run where it changes what is tested and exported."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import architectures
from architectures.config import ModelConfig
from architectures.heads import logits_of
from configs import tiny
from input_pipeline import preprocess
from serving import metadata
from training import ema as ema_lib
from training import losses, mixing
from training.config import TrainConfig
from training.loop import train_and_evaluate

SEED = tf.constant([3, 4], tf.int64)


def gradient_images(batch=4, size=32):
    """Images whose pixel (y, x) is (8x, 8y, 0) in uint8: a transform tells where it sampled."""
    y, x = np.mgrid[0:size, 0:size]
    one = np.stack([x * 255 // (size - 1), y * 255 // (size - 1), np.zeros_like(x)], axis=-1).astype(np.uint8)
    return tf.constant(np.repeat(one[None], batch, axis=0))


def test_the_geometric_transform_is_the_identity_at_zero_and_moves_the_face_otherwise():
    images = gradient_images()
    same = preprocess.geometric(images, SEED)
    np.testing.assert_allclose(same.numpy(), images.numpy().astype(np.float32), atol=1e-3)
    moved = preprocess.geometric(images, SEED, scale=0.2, rotation=20, shift=0.1).numpy()
    assert moved.shape == (4, 32, 32, 3) and not np.allclose(moved, images.numpy())
    assert len({moved[i].tobytes() for i in range(4)}) == 4  # Each face its own transform.
    turned = preprocess.geometric(images, SEED, rotation=45).numpy()
    assert (turned[:, 0, 0] == 128).all()  # Mid-gray where it reaches past the border.
    # Seeded: the same seed, the same result; eagerly and inside a dataset.
    np.testing.assert_array_equal(moved, preprocess.geometric(images, SEED, 0.2, 20, 0.1).numpy())
    ds = tf.data.Dataset.from_tensors(images).map(lambda x: preprocess.geometric(x, SEED, 0.2, 20, 0.1))
    np.testing.assert_allclose(next(iter(ds)).numpy(), moved, atol=1e-4)


def test_a_zoom_scales_about_the_centre():
    images = gradient_images(1, 33)
    zoomed = preprocess.geometric(images, SEED, scale=0.5).numpy()[0]
    # Whatever factor was drawn, the centre pixel stays where it was.
    np.testing.assert_allclose(zoomed[16, 16], images.numpy()[0, 16, 16], atol=1.0)


def test_train_batch_with_geometry_off_is_what_it_was():
    images = tf.constant(np.random.default_rng(0).integers(0, 255, (4, 40, 40, 3)), tf.uint8)
    before = preprocess.train_batch(images, SEED, 32)
    np.testing.assert_array_equal(before.numpy(), preprocess.train_batch(images, SEED, 32, True, 0, 0, 0).numpy())
    with_geometry = preprocess.train_batch(images, SEED, 32, True, 0.1, 10, 0.05)
    assert with_geometry.shape == (4, 32, 32, 3) and not np.array_equal(before.numpy(), with_geometry.numpy())


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixed_images_and_targets_sum_to_one(kind):
    images = tf.constant(np.random.default_rng(1).uniform(0, 255, (6, 16, 16, 3)), tf.float32)
    mixer = mixing.make_mixer(mixup_alpha=0.4 if kind == "mixup" else 0, cutmix_alpha=1.0 if kind == "cutmix" else 0)
    mixed, mix = mixer(images, SEED)
    share = float(mix.share[0])
    np.testing.assert_array_equal(mix.partner.numpy(), [5, 4, 3, 2, 1, 0])
    assert 0 <= share <= 1
    if kind == "mixup":
        np.testing.assert_allclose(mixed.numpy(), share * images.numpy() + (1 - share) * images.numpy()[::-1],
                                   rtol=1e-5, atol=1e-3)
    else:  # Every pixel is its own or its partner's, in the shares the Mix says.
        own = np.isclose(mixed.numpy(), images.numpy()).all(axis=-1)
        theirs = np.isclose(mixed.numpy(), images.numpy()[::-1]).all(axis=-1)
        assert (own | theirs).all() and abs(own[0].mean() - share) < 1e-6
    labels = tf.constant([0, 1, 2, -1, 1, 0])
    for head, outputs in (("age", 3), ("age_years", 101)):
        targets, known = losses.targets_of(head, labels if head == "age" else labels * 20, outputs, 0.1)
        mixed_targets, weights = losses.mixed_targets(targets, tf.cast(known, tf.float32), mix)
        np.testing.assert_allclose(mixed_targets.numpy().sum(axis=1), 1.0, rtol=1e-5)
        # Face 3 has no label: its weight is its partner's share; face 2 (partner 3) keeps its own.
        np.testing.assert_allclose(weights.numpy()[[2, 3]], [share, 1 - share], rtol=1e-5)
        np.testing.assert_allclose(mixed_targets.numpy()[2], targets.numpy()[2], rtol=1e-5)


def test_the_mixed_loss_is_the_mixed_losses_and_unmixed_is_unchanged():
    logits = tf.constant(np.random.default_rng(2).normal(size=(4, 3)), tf.float32)
    labels = tf.constant([0, 1, 2, 1])
    mix = mixing.Mix(tf.fill([4], 0.7), tf.constant([3, 2, 1, 0]))
    mixed = float(losses.head_loss("age", labels, logits, 4.0, mix=mix))
    own = float(losses.head_loss("age", labels, logits, 4.0))
    partners = float(losses.head_loss("age", tf.gather(labels, mix.partner), logits, 4.0))
    assert mixed == pytest.approx(0.7 * own + 0.3 * partners, rel=1e-5)
    log_p = tf.nn.log_softmax(logits).numpy()
    assert own == pytest.approx(-np.mean(log_p[np.arange(4), labels.numpy()]), rel=1e-5)


def test_the_moving_average_lags_the_weights_and_swaps_back():
    model = architectures.build(ModelConfig(arch="compact"), {"gender": 2}, 32)
    average = ema_lib.WeightAverage(model, decay=0.9)
    start = [w.numpy().copy() for w in model.weights]
    for weight in model.trainable_weights:
        weight.assign(weight + 1.0)
    average.update()  # First update: decay (1 + 1) / (10 + 1) = 0.18.
    kernel = model.get_layer("fc_gender").kernel
    index = [id(w) for w in model.weights].index(id(kernel))
    np.testing.assert_allclose(average.averages[index].numpy(), start[index] + (1 - 2 / 11), rtol=1e-5)
    trained = kernel.numpy().copy()
    with average.swapped(model):
        np.testing.assert_allclose(kernel.numpy(), average.averages[index].numpy())
    np.testing.assert_array_equal(kernel.numpy(), trained)


def test_flip_averages_a_face_and_its_mirror():
    model = architectures.build(ModelConfig(arch="compact"), {"gender": 2}, 32)
    images = tf.random.uniform((3, 32, 32, 3), 0, 255, seed=4)
    plain, mirrored = logits_of(model, images), logits_of(model, tf.reverse(images, [2]))
    both = logits_of(model, images, flip=True)
    np.testing.assert_allclose(both["gender"].numpy(), (plain["gender"] + mirrored["gender"]).numpy() / 2, atol=1e-5)
    np.testing.assert_allclose(logits_of(model, tf.reverse(images, [2]), flip=True)["gender"].numpy(),
                               both["gender"].numpy(), atol=1e-5)  # A face and its mirror: one answer.


def test_a_run_with_the_recipe_exports_the_moving_average_with_the_flip(small_shards, tmp_path):
    """mixup, CutMix, geometry, EMA and the flip in one run of the compact net: the export's
    weights are the best checkpoint's moving averages, not its trained weights, and every
    signature flips."""
    data, model_cfg, cfg = tiny(small_shards, tmp_path / "run", arch="compact", train_steps=6, mixup=0.2,
                                cutmix=1.0, ema_decay=0.9, flip_test=True)
    import dataclasses

    data = dataclasses.replace(data, scale_jitter=0.1, rotation=10, shift=0.05)
    results = train_and_evaluate(data, model_cfg, cfg)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    step = int(results["checkpoint"].rsplit("-", 1)[1])  # The best checkpoint's: its average's updates.
    assert saved["weights"] == f"moving average (--ema_decay=0.9, reached {(1 + step) / (10 + step):.4f})"
    info = metadata.read(results["export_dir"])
    assert info.flip_test
    heads = {"age": 8}
    trained = architectures.build(model_cfg, heads, 24)
    average = ema_lib.WeightAverage(trained, 0.9)
    tf.train.Checkpoint(model=trained, ema=average).restore(results["checkpoint"]).assert_existing_objects_matched()
    signatures = tf.saved_model.load(results["export_dir"]).signatures
    faces = tf.cast(tf.random.uniform((3, 24, 24, 3), 0, 255, seed=5), tf.uint8)
    temperature = info.temperatures.get("age", 1.0)

    def probabilities(flip=True):
        return tf.nn.softmax(logits_of(trained, tf.cast(faces, tf.float32), flip)["age"] / temperature).numpy()

    raw = probabilities()
    average.assign_to(trained)
    # A face's signature: the moving averages, flipped (the 24-pixel crop of a face resized to 32).
    served = signatures["serve_probabilities"](images=faces)["age_probabilities"].numpy()
    mirrored = signatures["serve_probabilities"](images=tf.reverse(faces, [2]))["age_probabilities"].numpy()
    np.testing.assert_allclose(mirrored, served, atol=1e-5)  # A face and its mirror: one answer.
    # serve_crops, the 10 crops' path, takes each crop as it is: the averages, not flipped.
    crops = signatures["serve_crops"](crops=faces)["age_probabilities"].numpy()
    np.testing.assert_allclose(crops, probabilities(flip=False), atol=1e-5)
    assert not np.allclose(crops, probabilities(flip=True), atol=1e-4)
    assert not np.allclose(probabilities(flip=False), raw, atol=1e-4)  # Not the trained weights.
    keras.backend.clear_session()


def test_age_balance_weighs_every_head_by_the_age_bin_and_keeps_the_mean_at_one():
    from input_pipeline import labels as label_lib

    bins = label_lib.parse_bins("three")
    counts = {"age_counts": {"20": 60, "40": 30, "60": 10}}
    manifest = {"folds": [dict(counts, fold=k) for k in range(5)], "label_policy": "strict"}
    weights = losses.age_weights(manifest, 0, list(bins.names), bins, "strict", 0.5)
    n = np.array([60, 30, 10])
    np.testing.assert_allclose((np.array(weights) * n).sum() / n.sum(), 1.0)  # Mean 1 over the faces.
    np.testing.assert_allclose(weights[2] / weights[0], np.sqrt(60 / 10))  # Inverse square root.
    objective = losses.Objective({"age": 3, "gender": 2}, age_weights=weights)
    logits = {"age": tf.zeros((2, 3)), "gender": tf.zeros((2, 2))}
    old, young = {"age": tf.constant([2, 0]), "gender": tf.constant([1, -1])}, {"age": tf.constant([0, 0]),
                                                                               "gender": tf.constant([1, -1])}
    # Face 0's gender loss weighs its age bin's weight: the old face's counts sqrt(6) times the young one's.
    gender_old = float(objective(old, logits, tf.constant([2.0, 1.0]))) - float(
        losses.head_loss("age", old["age"], logits["age"], 2.0, example_weights=tf.constant(
            [weights[2], weights[0]])))
    gender_young = float(objective(young, logits, tf.constant([2.0, 1.0]))) - float(
        losses.head_loss("age", young["age"], logits["age"], 2.0, example_weights=tf.constant(
            [weights[0], weights[0]])))
    assert gender_old / gender_young == pytest.approx(np.sqrt(6), rel=1e-4)


def test_age_balance_caps_a_bin_of_one_face():
    """utkface_dev's 4-10 bin holds a face or two: uncapped, it weighs 25 times the common
    ages at power 0.5 and 450 at 1 (a run at 1 failed); capped, at most `cap` times the
    most common bin's, and the others keep their ratios."""
    from input_pipeline import labels as label_lib

    bins = label_lib.parse_bins("three")
    manifest = {"folds": [dict({"age_counts": {"20": 1000, "40": 250, "60": 1}}, fold=k) for k in range(5)],
                "label_policy": "strict"}
    uncapped = np.array(losses.age_weights(manifest, 0, list(bins.names), bins, "strict", 1.0))
    assert uncapped[2] / uncapped[0] == pytest.approx(1000)
    capped = np.array(losses.age_weights(manifest, 0, list(bins.names), bins, "strict", 1.0, cap=3.0))
    assert capped[2] / capped[0] == pytest.approx(3.0)
    assert capped[1] / capped[0] == pytest.approx(3.0)  # 1000 / 250 = 4 > 3: capped too.
    n = np.array([1000, 250, 1])
    np.testing.assert_allclose((capped * n).sum() / n.sum(), 1.0)  # Mean 1 over the faces.
    half = np.array(losses.age_weights(manifest, 0, list(bins.names), bins, "strict", 0.5, cap=3.0))
    assert half[1] / half[0] == pytest.approx(2.0)  # sqrt(4), under the cap.
    assert half[2] / half[0] == pytest.approx(3.0)
    objective = losses.Objective({"age": 3}, age_weights=capped.tolist())
    assert objective.describe_weights(list(bins.names)) == [
        "--age_balance weights: " + ", ".join(f"{name} {w:.2f}" for name, w in zip(bins.names, capped))]


def test_years_l1_adds_the_expected_age_error_in_years():
    """--years_l1: the age_years loss is its cross-entropy plus this times |E[age] - age|,
    the error of what the head predicts; mixed faces against their ages mixed in the
    targets' shares; nothing without age_years."""
    from training import mixing

    logits = tf.random.stateless_normal((3, 101), (1, 2))
    years = tf.constant([20, 70, -1])
    grid = np.arange(101)
    expected = (tf.nn.softmax(logits).numpy() * grid).sum(-1)
    plain = float(losses.head_loss("age_years", years, logits, 2.0))
    with_l1 = float(losses.head_loss("age_years", years, logits, 2.0, years_l1=0.5))
    assert with_l1 - plain == pytest.approx(0.5 * (abs(expected[0] - 20) + abs(expected[1] - 70)) / 2, rel=1e-5)
    # The gradient moves the mean towards the age: one step lowers the error.
    variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        l1 = losses.head_loss("age_years", years, variable, 2.0, years_l1=1.0) - losses.head_loss(
            "age_years", years, variable, 2.0)
    variable.assign_sub(10.0 * tape.gradient(l1, variable))
    after = (tf.nn.softmax(variable).numpy() * grid).sum(-1)
    assert abs(after[0] - 20) < abs(expected[0] - 20) and abs(after[1] - 70) < abs(expected[1] - 70)
    # Mixed: face 0 a quarter itself and three quarters face 1 scores against 0.25*20 + 0.75*70.
    mix = mixing.Mix(share=tf.constant([0.25, 1.0, 1.0]), partner=tf.constant([1, 1, 2]))
    both = float(losses.head_loss("age_years", years[:2], logits[:2], 2.0, mix=mixing.Mix(
        share=mix.share[:2], partner=mix.partner[:2]), years_l1=1.0)) - float(losses.head_loss(
            "age_years", years[:2], logits[:2], 2.0, mix=mixing.Mix(share=mix.share[:2], partner=mix.partner[:2])))
    assert both == pytest.approx((abs(expected[0] - 57.5) + abs(expected[1] - 70)) / 2, rel=1e-5)
    assert float(losses.head_loss("gender", tf.constant([0]), logits[:1, :2], 1.0, years_l1=1.0)) == pytest.approx(
        float(losses.head_loss("gender", tf.constant([0]), logits[:1, :2], 1.0)))


def test_years_sigma_relative_widens_the_age_years_targets_with_age():
    """--years_sigma_relative: each face's age_years target is a Gaussian max(2, r * age)
    years wide around its age, summing to 1, but no wider than half the years left to 100,
    so that its mean, the head's prediction, stays at the age for the very old; the
    Objective's loss scores against it."""
    grid = np.arange(101)
    ages = tf.constant([10, 20, 60, 90, 96])
    for relative, widths in ((0.0, (2, 2, 2, 2, 2)), (0.1, (2, 2, 6, 5, 2))):
        targets = losses.years_targets(ages, relative).numpy()
        np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)
        means = (targets * grid).sum(-1)
        np.testing.assert_allclose(means, [10, 20, 60, 90, 96], atol=0.3)  # Cut at 100: 90 within 0.3.
        np.testing.assert_allclose(means[:3], [10, 20, 60], atol=1e-3)
        spread = np.sqrt((targets * (grid - means[:, None]) ** 2).sum(-1))
        np.testing.assert_allclose(spread[:3], widths[:3], rtol=1e-3)
        np.testing.assert_allclose(spread[3:], widths[3:], rtol=0.1)  # Less than its sigma where cut.
    uncapped = np.exp(-(grid - 95.0) ** 2 / (2 * 9.5 ** 2))  # 0.1 * 95 wide, cut at 100: 4.5 years low.
    assert (uncapped / uncapped.sum() * grid).sum() < 91
    logits = tf.random.stateless_normal((2, 101), (3, 4))
    years = {"age_years": tf.constant([20, 60])}
    wide = losses.years_targets(years["age_years"], 0.1).numpy()
    expected = -(wide * tf.nn.log_softmax(logits).numpy()).sum(-1).mean()
    assert float(losses.head_loss("age_years", years["age_years"], logits, 2.0, years_relative=0.1)) == \
        pytest.approx(expected, rel=1e-5)
    objective = losses.Objective({"age_years": 101}, years_relative=0.1)
    assert float(objective(years, {"age_years": logits}, [2.0])) == pytest.approx(expected, rel=1e-5)
    assert float(losses.Objective({"age_years": 101})(years, {"age_years": logits}, [2.0])) != \
        pytest.approx(expected)
    with pytest.raises(ValueError, match="--years_sigma_relative must be in"):
        TrainConfig(years_sigma_relative=1.5)


def test_gender_balance_weighs_men_and_women_alike_within_each_age_bin():
    from input_pipeline import labels as label_lib
    from input_pipeline.reader.manifest import ShardsError

    bins = label_lib.parse_bins("three")  # young 13-30, middle 31-50, old 51+.
    fold = {"age_counts": {"20": 100, "40": 50, "60": 50},
            "gender_age_counts": {"m": {"20": 50, "40": 25, "60": 40}, "f": {"20": 50, "40": 25, "60": 10}}}
    manifest = {"folds": [dict(fold, fold=k) for k in range(5)], "label_policy": "strict"}
    table = np.array(losses.gender_weights(manifest, 0, list(bins.names), bins, "strict", 1.0))
    np.testing.assert_allclose(table[:2], 1.0)  # Balanced bins are left alone.
    np.testing.assert_allclose(table[2], [50 / 80, 50 / 20])  # The old men and the old women weigh alike...
    np.testing.assert_allclose((table[2] * [40, 10]).sum(), 50)  # ... and the bin keeps its weight.
    half = np.array(losses.gender_weights(manifest, 0, list(bins.names), bins, "strict", 0.5))
    np.testing.assert_allclose(half[2, 1] / half[2, 0], 2.0)  # sqrt(40 / 10).
    np.testing.assert_allclose((half[2] * [40, 10]).sum(), 50)
    # In the loss: an old woman's gender loss counts four times an old man's; a face
    # without a gender label, or an age, weighs 1.
    objective = losses.Objective({"age": 3, "gender": 2}, gender_weights=table.tolist())
    assert objective.describe_weights(list(bins.names))[-1] == f"the heaviest face: f aged {bins.names[2]}, weighing 2.50"
    both = losses.Objective({"age": 3, "gender": 2}, age_weights=[1.0, 3.5, 1.5], gender_weights=table.tolist())
    assert both.describe_weights(list(bins.names))[-1] == f"the heaviest face: f aged {bins.names[2]}, weighing 3.75"
    logits = {"age": tf.zeros((1, 3)), "gender": tf.zeros((1, 2))}

    def loss(age, gender):
        return float(objective({"age": tf.constant([age]), "gender": tf.constant([gender])}, logits,
                               tf.constant([1.0, 1.0])))

    assert loss(2, 1) / loss(2, 0) == pytest.approx(4.0, rel=1e-5)
    assert loss(0, 1) == pytest.approx(loss(0, 0))
    unweighted = losses.Objective({"age": 3, "gender": 2})
    assert loss(-1, 1) == pytest.approx(float(unweighted({"age": tf.constant([-1]), "gender": tf.constant([1])},
                                                         logits, tf.constant([1.0, 1.0]))))
    del fold["gender_age_counts"]  # Shards built before the manifest counted genders by age.
    with pytest.raises(ShardsError, match="rebuild the shards"):
        losses.gender_weights({"folds": [dict(fold, fold=0)]}, 0, list(bins.names), bins, "strict", 1.0)


def test_the_augmentation_and_mixing_run_outside_xla():
    """ImageProjectiveTransformV3 and the Gamma draws have no XLA kernel: --jit_compile
    compiles the forward and backward pass only."""
    from training import steps

    model = architectures.build(ModelConfig(arch="compact"), {"gender": 2}, 24)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    images = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3)).astype(np.uint8)
    data = tf.data.Dataset.from_tensors((images, {"gender": np.array([0, 1] * 4, np.int32)})).repeat()
    step = steps.make_train_step(model, optimizer, tf.distribute.get_strategy(), losses.Objective({"gender": 2}),
                                 preprocess.augmentation(24, True, 0.1, 10, 0.05), jit_compile=True,
                                 mixer=mixing.make_mixer(0.2, 1.0))
    iterator = iter(data)
    for i in range(2):
        loss, _, _ = step(iterator, tf.constant(i, tf.int64))
        assert np.isfinite(float(loss))
