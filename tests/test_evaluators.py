"""training/evaluators.py: named passes that return their figures and the selection score."""

import dataclasses

import numpy as np
import pytest

import architectures
from configs import tiny
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import load_folds
from input_pipeline.reader.targets import make_targets
from training import evaluators, metrics, steps
from training.task import Heads


def test_each_named_evaluator_scores_its_own_split_and_crops(small_shards):
    data, model_cfg, _ = tiny(small_shards, task="age_gender")
    manifest, train_files, test_files = load_folds(small_shards, data.test_fold)
    task = Heads.of(data, manifest)
    targets = make_targets(task.bins, task.policy)
    model = architectures.build(model_cfg, task.sizes)

    def run(name, files, cfg=data):
        return evaluators.from_config(name, cfg, files, targets, task).run(model)

    single, over = run("test_single_crop", test_files), run("test_over_sampled", test_files)
    validation = run("validation", train_files)
    # The same figures as a pass written out by hand, and the one score of them.
    by_hand = metrics.evaluate(steps.make_predict_step(model, task.sizes, oversample=False), task.sizes,
                               dataset.make_eval_dataset(data, test_files, "test", targets), task.all_class_names,
                               task.bins)
    assert single.figures["age"]["accuracy"] == by_hand["age"]["accuracy"]
    assert np.array_equal(single.figures["gender"]["confusion_matrix"], by_hand["gender"]["confusion_matrix"])
    for result in (single, over, validation):
        assert result.score == metrics.score(result.figures) is not None
    assert single.figures["age"]["num_examples"] == over.figures["age"]["num_examples"] == sum(
        f["num_examples"] for f in manifest["folds"] if f["fold"] == data.test_fold)
    assert 0 < validation.figures["age"]["num_examples"] < single.figures["age"]["num_examples"] * 4
    assert (single.name, over.name) == ("test_single_crop", "test_over_sampled")
    # No validation split: no validation evaluator, not one that scores an empty pass.
    assert evaluators.from_config("validation", dataclasses.replace(data, val_fraction=0), train_files, targets,
                                  task) is None
    with pytest.raises(ValueError, match="unknown evaluator 'test'"):
        evaluators.from_config("test", data, test_files, targets, task)
