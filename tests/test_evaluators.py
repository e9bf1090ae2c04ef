"""evaluation/evaluators.py: named passes that return their figures and the selection score."""

import dataclasses

import numpy as np
import pytest

import architectures
from configs import tiny
from evaluation import calibration, evaluators, fairness, metrics
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import load_folds
from training import steps
from training.task import Task


def test_each_named_evaluator_scores_its_own_split_and_crops(small_shards):
    data, model_cfg, train_cfg = tiny(small_shards, task="age_gender")
    manifest, train_files, test_files = load_folds(small_shards, data.test_fold)
    task = Task.of(data, model_cfg, train_cfg, manifest)
    model = architectures.build(model_cfg, task.sizes, data.image_size)

    def run(name, files, cfg=data):
        evaluator = evaluators.from_config(name, cfg, files, task)
        return evaluator.run(steps.make_predict_step(model, task.sizes, evaluator.spec.oversample))

    single, over = run("test_single_crop", test_files), run("test_over_sampled", test_files)
    validation = run("validation", train_files)
    # The same figures as a pass written out by hand, and the one score of them.
    probabilities, labels = metrics.predict_all(steps.make_predict_step(model, task.sizes, oversample=False),
                                                task.sizes, dataset.make_eval_dataset(data, test_files, "test",
                                                                                      task.targets))
    by_hand = metrics.figures(probabilities, labels, task)
    assert single.figures["age"]["accuracy"] == by_hand["age"]["accuracy"]
    assert np.array_equal(single.figures["gender"]["confusion_matrix"], by_hand["gender"]["confusion_matrix"])
    # Calibration and fairness are figure sets of the same pass, merged into each head's figures.
    known = labels["age"] >= 0
    ece, bins = calibration.calibration(probabilities["age"][known], labels["age"][known])
    assert single.figures["age"]["ece"] == ece and single.figures["age"]["reliability"] == bins
    assert single.figures["gender"]["fairness"] == fairness.breakdown("gender", probabilities["gender"], labels,
                                                                      task.all_class_names)
    for result in (single, over, validation):
        assert result.score == metrics.score(result.figures) is not None
        assert set(result.figures["age"]) >= {"accuracy", "one_off_accuracy", "ece", "reliability", "fairness"}
    assert single.figures["age"]["num_examples"] == over.figures["age"]["num_examples"] == sum(
        f["num_examples"] for f in manifest["folds"] if f["fold"] == data.test_fold)
    assert 0 < validation.figures["age"]["num_examples"] < single.figures["age"]["num_examples"] * 4
    assert (single.name, over.name) == ("test_single_crop", "test_over_sampled")
    # No validation split: no validation evaluator, not one that scores an empty pass.
    assert evaluators.from_config("validation", dataclasses.replace(data, val_fraction=0), train_files, task) is None
    with pytest.raises(ValueError, match="unknown evaluator 'test'"):
        evaluators.from_config("test", data, test_files, task)


def test_an_empty_pass_has_no_score_and_no_calibration():
    class Task:
        sizes, class_names = {"age": 3, "gender": 2}, {"age": ["a", "b", "c"], "gender": ["m", "f"]}
        all_class_names, bins = class_names, None

    evaluator = evaluators.Evaluator("validation", [], Task)
    result = evaluator.run(lambda images: None)
    assert result.score is None
    assert result.figures["age"]["num_examples"] == 0 and result.figures["age"]["ece"] is None
    assert result.figures["gender"]["fairness"] == {}
