"""The fairness breakdown of each head: its accuracy (or MAE) per gender and per race
group among the faces whose group is known, and the gap between the best and the worst
group (None with fewer than two groups)."""

import numpy as np

from architectures.heads import expected_years
from evaluation import metrics


def fairness(score, groups, group_names, higher_is_better=True):
    """{"groups": {name: {"num_examples", "value"}}, "gap", "best", "worst"} of a score
    per group: `score(mask)` is the figure over the faces in `mask`; `groups` (N,) ints,
    -1 unknown. The gap is between the best and worst groups that have faces; None when
    fewer than two have."""
    per_group = {}
    for index, name in enumerate(group_names):
        members = groups == index
        if members.any():
            per_group[name] = {"num_examples": int(members.sum()), "value": score(members)}
    if len(per_group) < 2:
        return {"groups": per_group, "gap": None, "best": None, "worst": None}
    ranked = sorted(per_group, key=lambda name: per_group[name]["value"], reverse=higher_is_better)
    return {"groups": per_group, "gap": abs(per_group[ranked[0]]["value"] - per_group[ranked[-1]]["value"]),
            "best": ranked[0], "worst": ranked[-1]}


def breakdown(head, probabilities, labels, group_names):
    """{"gender": fairness(...), "race": fairness(...)} of one head, for the attributes
    with known groups; `labels` has every head's labels (-1 unknown)."""
    target = labels[head]
    if head == "age_years":
        predicted = np.asarray(expected_years(probabilities))

        def score(mask):
            return metrics.mean_absolute_error(target[mask], predicted[mask])
    else:
        predictions = probabilities.argmax(axis=1)

        def score(mask):
            return metrics.exact_accuracy(target[mask], predictions[mask])
    out = {}
    for attribute in ("gender", "race"):
        groups = np.where(target >= 0, labels[attribute], -1)
        if (groups >= 0).any() and group_names.get(attribute):
            out[attribute] = fairness(score, groups, group_names[attribute], higher_is_better=head != "age_years")
    return out


def figures(probabilities, labels, task):
    """{head: {"fairness": breakdown}} of every head of `task` over one pass's predictions
    (metrics.predict_all's pair), by gender and race where their names are known."""
    return {head: {"fairness": breakdown(head, metrics.served(probabilities, head), labels, task.all_class_names)}
            for head in task.sizes}
