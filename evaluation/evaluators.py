"""Named evaluators: each is one ordered pass of a predict function over one dataset, and
returns its figures and the selection score.

    validation          the validation split, single centre crop: chooses the checkpoint
    test_single_crop    the test fold, single centre crop
    test_over_sampled   the test fold, the paper's 10 crops averaged

Each pass's predictions are scored by the named figure sets it lists (FIGURES):

    accuracy      evaluation/metrics.py: accuracy, one-off, confusion matrix; MAE for age_years
    calibration   evaluation/calibration.py: ECE and the reliability bins of each class head
    fairness      evaluation/fairness.py: each head's figure per gender and race group

so calibration and fairness cost no pass of their own. Selection, metrics.json,
TensorBoard, tuning, cross-validation and the architecture comparison all read an
evaluator's one output, Evaluation: its per-head figures (every set's, merged) and score
(metrics.score, None when it saw no labelled face).
"""

import dataclasses

from evaluation import calibration, fairness, metrics
from input_pipeline.reader import dataset

FIGURES = {"accuracy": metrics.figures, "calibration": calibration.figures, "fairness": fairness.figures}
ALL_FIGURES = tuple(FIGURES)


@dataclasses.dataclass(frozen=True)
class Spec:
    split: str  # "val" or "test": the faces it reads.
    oversample: bool  # The 10 crops averaged, or the centre crop.
    crop: str  # Its name in metrics.json: "single_crop" or "over_sampled".
    figures: tuple = ALL_FIGURES  # The FIGURES it computes; "accuracy" (the score's) first.


EVALUATORS = {"validation": Spec("val", False, "single_crop"),
              "test_single_crop": Spec("test", False, "single_crop"),
              "test_over_sampled": Spec("test", True, "over_sampled")}


@dataclasses.dataclass(frozen=True)
class Evaluation:
    name: str
    figures: dict  # {head: figures}: every figure set's for the head, merged.
    score: float | None  # metrics.score(figures): None when no head saw a labelled face.


class Evaluator:
    """One named pass: `run(predict)` predicts every face of its dataset with `predict`
    (training.steps.make_predict_step of the model, with `spec.oversample`) and scores
    the predictions against the labels."""

    def __init__(self, name, eval_dataset, task):
        self.name, self.spec, self.dataset, self.task = name, EVALUATORS[name], eval_dataset, task

    def run(self, predict):
        probabilities, labels = metrics.predict_all(predict, self.task.sizes, self.dataset)
        figures = {head: {} for head in self.task.sizes}
        for name in self.spec.figures:
            for head, found in FIGURES[name](probabilities, labels, self.task).items():
                figures[head].update(found)
        return Evaluation(self.name, figures, metrics.score(figures))


def from_config(name, data_cfg, files, task):
    """The evaluator `name` (EVALUATORS) over `files` as `data_cfg` splits and crops them,
    with the heads, bins and label targets of `task` (training.task.Task); None for the
    validation evaluator when there is no validation split (--val_fraction=0)."""
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}; choose one of {sorted(EVALUATORS)}")
    spec = EVALUATORS[name]
    if spec.split == "val" and not data_cfg.val_fraction:
        return None
    return Evaluator(name, dataset.make_eval_dataset(data_cfg, files, spec.split, task.targets, spec.oversample),
                     task)
