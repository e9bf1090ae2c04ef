"""training/steps.py across replicas: two logical CPUs stand in for two GPUs (in a process
of their own: tests/two_replicas.py), and one step must do what it does on one device."""

import json
import os
import subprocess
import sys

import pytest

from processes import ROOT


@pytest.fixture(scope="module")
def probe():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "two_replicas.py")], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["replicas"] == 2
    return found


def test_two_replicas_take_the_step_one_device_takes(probe):
    plain = probe["clip_0.0"]
    assert plain["one_vs_two_replicas"] < 1e-6
    assert abs(plain["loss_one"] - plain["loss_two"]) < 1e-5


def test_each_heads_loss_is_its_mean_over_the_faces_that_carry_its_label(probe):
    """Race is labelled on 2 of the 8 faces, both on the first replica: its loss is their
    mean (it was divided by the batch, 8, so a sparse head learnt at a quarter of the rate)."""
    assert abs(probe["clip_0.0"]["loss_two"] - probe["loss_by_hand"]) < 1e-5
    assert abs(probe["clip_0.0"]["loss_one"] - probe["loss_by_hand"]) < 1e-5


def test_clip_norm_clips_the_whole_batchs_gradient(probe):
    """Each replica used to clip its own partial gradient: the combined step was up to N
    times the limit, and replicas clipped differently."""
    clipped = probe["clip_0.01"]
    assert abs(clipped["update_norm_one"] - 0.5 * 0.01) < 1e-6  # Learning rate 0.5 times the limit.
    assert abs(clipped["update_norm_two"] - 0.5 * 0.01) < 1e-6
    assert clipped["one_vs_two_replicas"] < 1e-6


def test_with_loss_scaling_two_replicas_also_take_the_step_one_device_takes(probe):
    scaled = probe["loss_scaled"]
    assert scaled["one_vs_two_replicas"] < 1e-6 and scaled["scales"] == [2.0 ** 15, 2.0 ** 15]


def test_an_inf_on_one_replica_skips_the_step_on_every_replica(probe):
    """LossScaleOptimizer judged "finite?" by the first replica's own gradients: replica 1's
    inf went into the weights and the loss scale was not halved."""
    poisoned = probe["poisoned"]
    assert poisoned["finite"] and poisoned["unchanged"]
    assert poisoned["loss_scale"] == poisoned["initial_scale"] / 2
