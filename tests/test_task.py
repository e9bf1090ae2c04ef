"""training/task.py: the label space, objective, model and phases of a run, worked out once."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import architectures
from architectures import transfer
from configs import tiny
from input_pipeline.reader.manifest import ShardsError, load_folds
from training.task import Task


def task_of(shards, **train):
    data, model_cfg, cfg = tiny(shards, **{"task": "age_gender", **train})
    return Task.of(data, model_cfg, cfg, load_folds(shards, data.test_fold)[0]), data, model_cfg, cfg


def test_the_label_space_and_objective_come_from_the_configs_and_manifest(small_shards):
    task, data, _, _ = task_of(small_shards, class_weights="balanced", head_weights=("gender=0.5",),
                               label_smoothing=0.1)
    assert task.sizes == {"age": 8, "gender": 2} and task.image_size == data.image_size
    assert list(task.class_names["gender"]) == ["m", "f"] and "race" in task.all_class_names
    assert task.objective.heads == ("age", "gender") and task.objective.label_smoothing == 0.1
    assert task.objective.head_weights == {"age": 1.0, "gender": 0.5}
    assert set(task.objective.class_weights) == {"age", "gender"}
    train = task.label_counts["train"]
    assert train["age"]["known"] + train["age"]["unknown"] > 0 and train["gender"]["known"] > 0
    # The loss it hands the step: each head's weight times its mean over its labelled faces.
    labels = {"age": tf.constant([0, -1]), "gender": tf.constant([1, 1])}
    logits = {"age": tf.zeros((2, 8)), "gender": tf.zeros((2, 2))}
    plain = task_of(small_shards)[0].objective
    np.testing.assert_allclose(float(plain(labels, logits, tf.constant([1.0, 2.0]))), np.log(8) + np.log(2), rtol=1e-6)


def test_heads_the_shards_cannot_train_are_refused(small_shards):
    data, model_cfg, cfg = tiny(small_shards)
    manifest = load_folds(small_shards, data.test_fold)[0]
    with pytest.raises(ShardsError, match="no race labels"):
        Task.of(dataclasses.replace(data, heads=("race",)), model_cfg, cfg, manifest)
    with pytest.raises(ShardsError, match="no exact ages"):
        Task.of(dataclasses.replace(data, heads=("age_years",)), model_cfg, cfg, manifest)


def test_loss_weights_and_terms_refuse_a_missing_head(small_shards):
    data, model_cfg, cfg = tiny(small_shards)
    manifest = load_folds(small_shards, data.test_fold)[0]
    gender = dataclasses.replace(data, heads=("gender",))
    with pytest.raises(ShardsError, match="--age_balance .* needs the age head"):
        Task.of(gender, model_cfg, dataclasses.replace(cfg, age_balance=0.5), manifest)
    with pytest.raises(ShardsError, match="--gender_balance .* needs the age and gender heads"):
        Task.of(gender, model_cfg, dataclasses.replace(cfg, gender_balance=1.0), manifest)
    with pytest.raises(ShardsError, match="--years_l1 .* needs age_years in --heads"):
        Task.of(gender, model_cfg, dataclasses.replace(cfg, years_l1=0.1), manifest)


@pytest.mark.parametrize("weights,fine_tune_layers,head_steps,expected", [
    ("none", 0, 0, [("train", 1, None)]),  # From scratch: every layer throughout.
    ("file", 0, 0, [("head", 1, 0)]),  # Pretrained, never fine-tuned: the head throughout.
    ("file", 5, 2, [("head", 1, 0), ("fine_tune", 3, 5)]),
    ("file", 5, 0, [("head", 1, 0), ("fine_tune", 1, 5)]),  # Fine-tuning from the first step.
])
def test_phases_and_their_optimizers(small_shards, tmp_path, weights, fine_tune_layers, head_steps, expected):
    data, model_cfg, cfg = tiny(small_shards, arch="mobilenetv2", image_size=32, head_steps=head_steps,
                                fine_tune_layers=fine_tune_layers, train_steps=4)
    if weights == "file":
        path = str(tmp_path / "backbone.weights.h5")
        architectures.build(model_cfg, {"age": 8}, 32).get_layer(transfer.BACKBONE).save_weights(path)
        model_cfg = dataclasses.replace(model_cfg, weights=path)
    task = Task.of(data, model_cfg, cfg, load_folds(small_shards, data.test_fold)[0])
    assert [(p.name, p.first_step, p.backbone_layers) for p in task.phases] == expected
    assert task.phase_at(1).name == [name for name, first, _ in expected if first == 1][-1]
    assert task.phase_at(4) == task.phases[-1]
    model, optimizers = task.build("float32")
    assert list(optimizers) == [name for name, _, _ in expected]
    if len(expected) == 2:  # Each optimizer's schedule spans its phase's steps, at its own rate.
        fine = optimizers["fine_tune"]
        assert float(fine.learning_rate) == pytest.approx(cfg.learning_rate * cfg.fine_tune_lr_factor)
        task.enter(model, task.phases[-1])
        assert any(v.trainable for v in model.get_layer(transfer.BACKBONE).trainable_weights)
    task.enter(model, task.phases[0])
    backbone_trains = bool(model.get_layer(transfer.BACKBONE).trainable_weights)
    assert backbone_trains == (weights == "none")
