"""Named evaluators: each is one ordered pass of a model over one dataset, and returns its
figures and the selection score.

    validation          the validation split, single centre crop: chooses the checkpoint
    test_single_crop    the test fold, single centre crop
    test_over_sampled   the test fold, the paper's 10 crops averaged

Selection, metrics.json, TensorBoard, tuning, cross-validation and the architecture
comparison all read an evaluator's one output, Evaluation: its per-head figures
(metrics.evaluate) and score (metrics.score, None when it saw no labelled face).
"""

import dataclasses

from input_pipeline.reader import dataset
from training import metrics, steps


@dataclasses.dataclass(frozen=True)
class Spec:
    split: str  # "val" or "test": the faces it reads.
    oversample: bool  # The 10 crops averaged, or the centre crop.
    crop: str  # Its name in metrics.json: "single_crop" or "over_sampled".


EVALUATORS = {"validation": Spec("val", False, "single_crop"),
              "test_single_crop": Spec("test", False, "single_crop"),
              "test_over_sampled": Spec("test", True, "over_sampled")}


@dataclasses.dataclass(frozen=True)
class Evaluation:
    name: str
    figures: dict  # {head: figures}, metrics.evaluate's.
    score: float | None  # metrics.score(figures): None when no head saw a labelled face.


class Evaluator:
    """One named pass: `run(model)` predicts every face of its dataset with `model` and
    scores the predictions against the labels."""

    def __init__(self, name, eval_dataset, task):
        self.name, self.spec, self.dataset, self.task = name, EVALUATORS[name], eval_dataset, task
        self._model = self._predict = None  # The last model run and its compiled predict step, traced once.

    def run(self, model):
        if model is not self._model:
            self._model, self._predict = model, steps.make_predict_step(model, self.task.sizes, self.spec.oversample)
        figures = metrics.evaluate(self._predict, self.task.sizes, self.dataset, self.task.all_class_names,
                                   self.task.bins)
        return Evaluation(self.name, figures, metrics.score(figures))


def from_config(name, data_cfg, files, targets, task):
    """The evaluator `name` (EVALUATORS) over `files` as `data_cfg` splits and crops them,
    with the heads and bins of `task` (training.task.Heads); None for the validation
    evaluator when there is no validation split (--val_fraction=0)."""
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}; choose one of {sorted(EVALUATORS)}")
    spec = EVALUATORS[name]
    if spec.split == "val" and not data_cfg.val_fraction:
        return None
    return Evaluator(name, dataset.make_eval_dataset(data_cfg, files, spec.split, targets, spec.oversample), task)
