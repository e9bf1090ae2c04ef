"""The loss of each head, with unknown labels masked out; class weights and head weights."""

import numpy as np
import tensorflow as tf

from input_pipeline import labels
from input_pipeline.reader.manifest import ShardsError, split_counts

# age_years learns a distribution over 0..100 years: the target is a Gaussian of this
# many years around the true age rather than a single year (label distribution
# learning, Gao et al. 2017), so a guess a year off is not as wrong as one forty years
# off. The prediction is the expected value (Rothe et al., DEX, 2015).
YEARS_SIGMA = 2.0


def years_sigma(years, relative=0.0):
    """The width in years of the age_years head's target Gaussian around each age `years`
    (B,) float32: YEARS_SIGMA, or `relative` times the age where that is wider (older
    faces' ages are less certain, in their labels and their looks alike), but no wider
    than half the years left to the last class: the grid ends at YEARS - 1, and a Gaussian
    cut there has its mean, the head's prediction, below the age (6 years at 100 were 0.08
    times 100 wide; capped, no more than 0.3 below up to 97, and 0.4 at 98 as at YEARS_SIGMA)."""
    return tf.maximum(YEARS_SIGMA, tf.minimum(relative * years, (labels.YEARS - 1 - years) / 2))


def targets_of(head, labels_, outputs, label_smoothing=0.0, years_relative=0.0):
    """((B, outputs) float32 target distributions, (B,) bool known) of a head's labels
    (B,) int, -1 unknown: one-hot (smoothed) for a class head, years_targets (their
    width `years_relative`) for age_years."""
    known = labels_ >= 0
    safe = tf.where(known, labels_, 0)
    if head == "age_years":
        return years_targets(safe, years_relative), known
    targets = tf.one_hot(safe, outputs)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / outputs
    return targets, known


def mixed_targets(targets, weights, mix):
    """Mixup's (or CutMix's) targets: each face's `targets` (B, C) mixed with those of its
    partner `mix.partner` (B,) in the shares `mix.share` (B,) and 1 - share, the shares
    scaled by `weights` (B,) (0: unknown label, else its class weight), and renormalised:
    ((B, C) targets summing to 1 where any label is known, (B,) the example's weight)."""
    mine = mix.share * weights
    theirs = (1.0 - mix.share) * tf.gather(weights, mix.partner)
    total = mine + theirs
    mixed = (mine[:, None] * targets + theirs[:, None] * tf.gather(targets, mix.partner)) / tf.maximum(total, 1e-12)[
        :, None]
    return mixed, total


def head_loss(head, labels_, logits, labelled, label_smoothing=0.0, class_weights=None, mix=None,
              example_weights=None, years_l1=0.0, years_relative=0.0):
    """Summed cross-entropy of a head's logits (B, outputs) float32 against its targets
    (targets_of; mixed with `mix`, a mixing.Mix, when given) over the faces whose label is
    known (>= 0), each weighted by its class's weight (`class_weights` (C,) or None),
    divided by `labelled`, the number of faces with this head's label in the whole batch
    (every replica's), so that summing over replicas gives the mean over the labelled
    faces (0 when none is). `example_weights` (B,) weighs each face besides (age_weights).
    The age_years head adds `years_l1` times expected_age_error to each face's loss; its
    targets are years_targets `years_relative` wide."""
    targets, known = targets_of(head, labels_, logits.shape[-1], label_smoothing, years_relative)
    weights = tf.cast(known, tf.float32)
    if class_weights is not None:
        weights *= tf.gather(tf.constant(class_weights, tf.float32), tf.where(known, labels_, 0))
    if example_weights is not None:
        weights *= example_weights
    l1 = head == "age_years" and years_l1
    if l1:  # The ages ride as the targets' last column, so mixing mixes them in the same shares.
        targets = tf.concat([targets, tf.cast(tf.where(known, labels_, 0), tf.float32)[:, None]], axis=-1)
    if mix is not None:
        targets, weights = mixed_targets(targets, weights, mix)
    if l1:
        targets, years = targets[:, :-1], targets[:, -1]
    per_example = -tf.reduce_sum(targets * tf.nn.log_softmax(logits), axis=-1)
    if l1:
        per_example += years_l1 * expected_age_error(logits, years)
    return tf.reduce_sum(per_example * weights) / tf.maximum(tf.cast(labelled, tf.float32), 1.0)


def expected_age_error(logits, years):
    """(B,) |expected age - years| in years of the age_years head's logits (B, YEARS):
    the prediction's error itself (the expected value is what the head predicts), so its
    gradient moves the distribution's mean, which the cross-entropy against a Gaussian
    does only indirectly (DLDL-v2, Gao et al., "Age Estimation Using Expectation of Label
    Distribution Learning", 2018). Mixed faces are scored against their ages mixed in the
    targets' shares."""
    grid = tf.range(labels.YEARS, dtype=tf.float32)
    return tf.abs(tf.reduce_sum(tf.nn.softmax(logits) * grid, axis=-1) - years)


def masked_cross_entropy(labels_, logits, num_classes, labelled, label_smoothing=0.0, class_weights=None):
    """head_loss of a class head of `num_classes` (labels_ (B,) int, -1 unknown)."""
    del num_classes  # The logits' width.
    return head_loss("class", labels_, logits, labelled, label_smoothing, class_weights)


def years_targets(years, relative=0.0):
    """(B, YEARS) float32: a Gaussian around each age `years` (B,), years_sigma(years,
    `relative`) wide, summing to 1 over 0..YEARS - 1."""
    grid = tf.range(labels.YEARS, dtype=tf.float32)
    years = tf.cast(years, tf.float32)
    sigma = years_sigma(years, relative)
    weights = tf.exp(-tf.square(grid[None, :] - years[:, None]) / (2 * tf.square(sigma)[:, None]))
    return weights / tf.reduce_sum(weights, axis=-1, keepdims=True)


def masked_years_loss(years, logits, labelled):
    """head_loss of the age_years head: against years_targets, over the faces whose exact
    age is known (`years` (B,) int, -1 unknown)."""
    return head_loss("age_years", years, logits, labelled)


class Objective:
    """A run's training loss: the sum over `heads` of each head's weight (`head_weights`,
    1 when not named) times its masked loss (head_loss, with `label_smoothing` and the
    head's `class_weights`). Called in the train step on one replica's batch: `labels_`
    and `logits` {head: (B, ...)}, `labelled` (heads,) the faces of the whole batch with
    each head's label, and `mix` (mixing.Mix or None) when the images were mixed."""

    def __init__(self, heads, class_weights=None, head_weights=None, label_smoothing=0.0, age_weights=None,
                 gender_weights=None, years_l1=0.0, years_relative=0.0):
        self.heads, self.label_smoothing, self.years_l1 = tuple(heads), label_smoothing, years_l1
        self.years_relative = years_relative  # The age_years targets' width (years_sigma).
        self.class_weights, self.head_weights = class_weights or {}, head_weights or {}
        self.age_weights = age_weights  # Per age bin, weighing every head's loss of a face (age_weights()).
        self.gender_weights = gender_weights  # Per age bin and gender, besides (gender_weights()).

    def describe_weights(self, age_names):
        """Lines for the log of what each age bin (`age_names`) weighs, and each gender in it."""
        lines = []
        if self.age_weights is not None:
            lines.append("--age_balance weights: " + ", ".join(
                f"{name} {w:.2f}" for name, w in zip(age_names, self.age_weights)))
        if self.gender_weights is not None:
            lines.append("--gender_balance weights (m/f): " + ", ".join(
                f"{name} {m:.2f}/{f:.2f}" for name, (m, f) in zip(age_names, self.gender_weights)))
            cells = np.array(self.gender_weights) * (
                1.0 if self.age_weights is None else np.array(self.age_weights)[:, None])
            a, g = np.unravel_index(cells.argmax(), cells.shape)
            lines.append(f"the heaviest face: {labels.GENDER_CLASSES[g]} aged {age_names[a]}, weighing "
                         f"{cells[a, g]:.2f}")
        return lines

    def __call__(self, labels_, logits, labelled, mix=None):
        example = None
        if self.age_weights is not None:
            age = labels_["age"]
            example = tf.where(age >= 0, tf.gather(tf.constant(self.age_weights, tf.float32), tf.maximum(age, 0)), 1.0)
        if self.gender_weights is not None:
            age, gender = labels_["age"], labels_["gender"]
            cell = tf.gather_nd(tf.constant(self.gender_weights, tf.float32),
                                tf.stack([tf.maximum(age, 0), tf.maximum(gender, 0)], axis=-1))
            cell = tf.where((age >= 0) & (gender >= 0), cell, 1.0)
            example = cell if example is None else example * cell
        loss = 0.0
        for i, head in enumerate(self.heads):
            loss += self.head_weights.get(head, 1.0) * head_loss(
                head, labels_[head], tf.cast(logits[head], tf.float32), labelled[i], self.label_smoothing,
                self.class_weights.get(head), mix, example, self.years_l1, self.years_relative)
        return loss


def parse_head_weights(items, heads):
    """{head: weight} of --head_weights ["age=1", "gender=0.5"]; heads not named weigh 1."""
    weights = dict.fromkeys(heads, 1.0)
    for item in items:
        head, sep, value = (x.strip() for x in item.partition("="))
        if not sep or head not in heads:
            raise ValueError(f"--head_weights: {item!r} is not <head>=<weight> for a head among {', '.join(heads)}")
        try:
            weights[head] = float(value)
        except ValueError:
            raise ValueError(f"--head_weights: {value!r} of {head} is not a number") from None
        if weights[head] < 0:
            raise ValueError(f"--head_weights: {head}'s weight {value} is negative")
    return weights


def age_weights(manifest, test_fold, age_names, age_bins, policy, power, cap=0.0):
    """Per age bin, (N / (C n_c)) ** power over the training folds, at most `cap` times the
    most common bin's (0: no cap), scaled so the training faces' mean weight is 1
    (--age_balance, --age_balance_cap): each face's loss in every head is weighed by its
    age bin's, so the ages a dataset has few of (UTKFace's over-70s) count for more in
    gender and race too, and the years head is pulled less towards the common ages (Yang
    et al., "Delving into Deep Imbalanced Regression", 2021: inverse square-root weights
    at power 0.5). The cap keeps a bin of a face or two from weighing hundreds of times
    the others. A bin with no face gets 0."""
    counts = labels.bin_counts(split_counts(manifest, test_fold, "age_counts")[0], age_bins, policy)
    n = np.array([counts.get(name, 0) for name in age_names], dtype=np.float64)
    raw = np.where(n > 0, (n.sum() / (len(n) * np.maximum(n, 1))) ** power, 0.0)
    if cap and n.any():
        raw = np.minimum(raw, cap * raw[n.argmax()])
    return (raw * n.sum() / max((raw * n).sum(), 1e-12)).tolist()


def gender_weights(manifest, test_fold, age_names, age_bins, policy, power):
    """(age bins, genders) weights, within each age bin (n_a / (G n_ag)) ** power over the
    training folds (G: the genders the bin has faces of), rescaled so that the bin's faces
    keep their total weight (--gender_balance): a face's loss in every head is weighed by
    its cell's. UTKFace's 60-74 year-olds are 12% women and its 20-29 year-olds 55%: a
    network learns "old, so a man", which no one's photos bear out; balanced within each
    age, age is no cue to gender (group-balanced reweighting, as in Sagawa et al., 2020).
    ShardsError when the shards predate the manifest's gender_age_counts."""
    if any("gender_age_counts" not in fold for fold in manifest["folds"]):
        raise ShardsError("--gender_balance needs the ages of each gender's faces, which manifests written "
                          "before it do not count: rebuild the shards with build_input.py")
    per_gender = [labels.bin_counts(split_counts(manifest, test_fold, "gender_age_counts", g)[0], age_bins, policy)
                  for g in labels.GENDER_CLASSES]
    n = np.array([[counts[name] for counts in per_gender] for name in age_names], dtype=np.float64)
    bin_total = n.sum(axis=1, keepdims=True)
    present = np.maximum((n > 0).sum(axis=1, keepdims=True), 1)
    raw = np.where(n > 0, (bin_total / (present * np.maximum(n, 1))) ** power, 0.0)
    scale = bin_total / np.maximum((raw * n).sum(axis=1, keepdims=True), 1e-12)
    return np.where(n > 0, raw * scale, 1.0).tolist()


def balanced_class_weights(manifest, test_fold, class_names, age_bins, policy):
    """N / (C * n_c) per classification head over the training folds (0 for a class with
    no examples); the age head counts the chosen bins."""
    weights = {}
    for head, names in class_names.items():
        counts = split_counts(manifest, test_fold, f"{head}_counts")[0]
        if head == "age":
            counts = labels.bin_counts(counts, age_bins, policy)
        n = np.array([counts.get(name, 0) for name in names], dtype=np.float64)
        weights[head] = np.where(n > 0, n.sum() / (len(names) * np.maximum(n, 1)), 0.0).tolist()
    return weights
