"""--age_prior_correction: the training faces' age prior taken out of the age heads'
predictions (training/age_prior.py), the same in the figures and in every signature of
the export."""

import dataclasses
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import architectures
from architectures.config import ModelConfig
from architectures.heads import expected_years, logits_of
from configs import tiny, with_data
from evaluation import calibration
from input_pipeline import labels
from input_pipeline.config import BuildConfig
from input_pipeline.reader.manifest import ShardsError, load_folds, split_counts
from input_pipeline.sources import sample
from input_pipeline.writer import build
from serving import metadata
from training import age_prior, losses, steps
from training.config import TrainConfig
from training.loop import train_and_evaluate
from training.task import Task

THREE = labels.parse_bins("three")


def manifest_of(age_counts, test_counts=None):
    """A manifest whose training folds 1..4 each hold `age_counts` and test fold 0 `test_counts`."""
    folds = [{"fold": k, "age_counts": age_counts if k else (test_counts or {"90": 1000})} for k in range(5)]
    return {"folds": folds, "label_policy": "strict"}


def test_the_offsets_are_minus_tau_log_prior_with_the_floor():
    manifest = manifest_of({"20": 600, "40": 300, "60": 3, "10-12": 50})
    names = {"age": list(THREE.names)}
    off = age_prior.offsets(manifest, 0, names, THREE, "strict", {"age": 3}, 0.5)
    assert set(off) == {"age"} and off["age"].dtype == np.float32
    # Four folds of 600, 300 and 3 faces (the test fold's 1,000 over-90s are not counted).
    assert off["age"][1] - off["age"][0] == pytest.approx(0.5 * np.log(600 / 300), rel=1e-5)
    # 3 faces are rarer than the floor, 1% of the most common bin's 600: taken as 6.
    assert off["age"][2] - off["age"][0] == pytest.approx(0.5 * np.log(1 / age_prior.FLOOR), rel=1e-5)
    assert age_prior.offsets(manifest, 0, names, THREE, "strict", {"age": 3}, 0.0) == {}
    assert age_prior.offsets(manifest, 0, names, THREE, "strict", {"gender": 2}, 1.0) == {}
    years = age_prior.offsets(manifest, 0, names, THREE, "strict", {"age_years": labels.YEARS}, 1.0)["age_years"]
    assert years.shape == (labels.YEARS,) and years.argmin() == 20  # The most common year.
    assert years[40] - years[20] == pytest.approx(np.log(2), rel=1e-3)  # Twice as many 20s as 40s.
    assert years.max() - years.min() == pytest.approx(np.log(1 / age_prior.FLOOR), rel=1e-5)  # Far years floored.
    assert age_prior.describe(off, 0.5) == f"--age_prior_correction lifts the rarest class over the most common " \
                                           f"by {0.5 * np.log(100):.2f} (age; 1 of 3 classes at the floor)"
    unfloored = age_prior.offsets(manifest_of({"20": 600, "40": 300}), 0, {"age": ["a", "b"]},
                                  labels.parse_bins("a=0-30,b=31+"), "strict", {"age": 2}, 1.0)
    assert age_prior.describe(unfloored, 1.0).endswith("(age; 0 of 2 classes at the floor)")


def test_the_years_prior_sums_the_training_targets_of_exact_ages_only():
    prior = age_prior.years_prior({"30": 10, "130": 2, "20-29": 5, "unknown": 7})
    assert prior.sum() == pytest.approx(12)  # Ranges and unknown ages teach age_years nothing.
    assert prior.argmax() == 30 and prior[100] > prior[99] > 0  # Over 100 counts as 100, as in training.
    np.testing.assert_allclose(prior[25:36], prior[35:24:-1])  # A Gaussian around 30.
    # Made of the targets the head learns: widened with age, so is the prior.
    wide = age_prior.years_prior({"60": 1}, relative=0.1)
    np.testing.assert_allclose(wide, losses.years_targets(tf.constant([60]), 0.1).numpy()[0], rtol=1e-6)
    assert wide[66] / wide[60] == pytest.approx(np.exp(-0.5), rel=1e-4)  # 6 years wide, not 2.


def test_a_task_with_wider_years_targets_learns_and_corrects_with_them(utk_shards):
    """--years_sigma_relative reaches the objective and the age_years offsets alike, and
    needs the age_years head."""
    data, model_cfg, cfg = with_data(tiny(utk_shards, age_prior_correction=0.5, years_sigma_relative=0.1),
                                     heads=("age", "gender", "age_years"), age_bins="utk12")
    manifest = load_folds(utk_shards, data.test_fold)[0]
    task = Task.of(data, model_cfg, cfg, manifest)
    assert task.objective.years_relative == 0.1
    train_ages = split_counts(manifest, data.test_fold, "age_counts")[0]
    prior = age_prior.years_prior(train_ages, 0.1)
    prior = np.maximum(prior, age_prior.FLOOR * prior.max()) / prior.sum()
    np.testing.assert_allclose(task.logit_offsets["age_years"], -0.5 * np.log(prior), rtol=1e-5)
    narrow = Task.of(data, model_cfg, dataclasses.replace(cfg, years_sigma_relative=0.0), manifest)
    assert not np.allclose(task.logit_offsets["age_years"], narrow.logit_offsets["age_years"])
    data, model_cfg, cfg = with_data(tiny(utk_shards, years_sigma_relative=0.1), heads=("age", "gender"),
                                     age_bins="utk12")
    with pytest.raises(ShardsError, match="--years_sigma_relative .* needs age_years"):
        Task.of(data, model_cfg, cfg, manifest)


@pytest.mark.parametrize("flip", [False, True])
def test_the_correction_divides_the_probabilities_calibrated_or_not_by_the_prior_to_the_tau(flip):
    """softmax(logits / T + offsets): the prior comes out at the strength tau whatever the
    temperature (fitted on the logits as trained), in the flipped path too; the temperature
    does not change the predicted class."""
    sizes = {"age": 3, "age_years": labels.YEARS}
    model = architectures.build(ModelConfig(arch="compact"), sizes, 24)
    images = tf.cast(tf.random.uniform((4, 24, 24, 3), 0, 255, seed=1), tf.uint8)
    prior = {"age": np.array([0.6, 0.3, 0.1]), "age_years": np.full(labels.YEARS, 1.0 / labels.YEARS)}
    prior["age_years"][:50] *= 3
    prior["age_years"] /= prior["age_years"].sum()
    offsets = {head: (-0.5 * np.log(p)).astype(np.float32) for head, p in prior.items()}
    temperatures = {"age": 2.0}
    plain = steps.make_predict_step(model, sizes, False, temperatures, flip)(images)
    corrected = steps.make_predict_step(model, sizes, False, temperatures, flip, offsets)(images)
    # Calibrated: the prior ^ 0.5 out. Before the temperature, the same logits times T: the
    # prior ^ (0.5 T) out, and the same predicted class as calibrated.
    for head, power in (("age_years", 0.5), (calibration.CALIBRATED + "age", 0.5), ("age", 0.5 * 2.0)):
        expected = plain[head].numpy() / prior[head.removeprefix(calibration.CALIBRATED)] ** power
        np.testing.assert_allclose(corrected[head].numpy(), expected / expected.sum(-1, keepdims=True), rtol=1e-4)
    np.testing.assert_array_equal(corrected["age"].numpy().argmax(-1),
                                  corrected[calibration.CALIBRATED + "age"].numpy().argmax(-1))
    # The old are rarer in the prior: the expected age moves up.
    assert (expected_years(corrected["age_years"]).numpy() > expected_years(plain["age_years"]).numpy()).all()
    keras.backend.clear_session()


def test_tau_is_checked_and_an_export_without_it_reads_as_none(tmp_path):
    with pytest.raises(ValueError, match="--age_prior_correction must be in"):
        TrainConfig(age_prior_correction=1.5)
    (tmp_path / metadata.FILE).write_text('{"class_names": {"age": ["a"]}, "stored_size": 32, "crop_size": 24}')
    assert metadata.read(str(tmp_path)).age_prior_correction == 0.0


@pytest.fixture(scope="module", autouse=True)
def op_determinism_off_afterwards():
    """The runs here ask for --deterministic, which turns op determinism on for the whole
    process (training/runtime.start), and other modules' XLA runs fail under it (no
    deterministic MaxPool gradient in XLA): it is turned off when this module ends."""
    yield
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()


@pytest.fixture(scope="module")
def utk_root(tmp_path_factory):
    """A folder with the synthetic UTKFace sample (utk/) and its shards (shards/)."""
    root = tmp_path_factory.mktemp("utk_prior")
    sample.generate(str(root / "utk"), sample.SampleConfig(num_faces=80, image_size=48, seed=3), 1, "utkface")
    build.build(BuildConfig(dataset="utkface", data_dir=str(root / "utk"), output_dir=str(root / "shards"),
                            image_size=32, num_shards=1, num_workers=1), synthetic=True)
    return root


@pytest.fixture(scope="module")
def utk_shards(utk_root):
    return str(utk_root / "shards")


def run_with(utk_root, utk_shards, tau):
    """(configs, results) of a deterministic run of the compact net with --age_prior_correction=tau,
    its age_years targets widened with age (--years_sigma_relative=0.1: the prior, made of
    those targets, is then one the sweep must recompute with the run's own width)."""
    configs = tiny(utk_shards, utk_root / f"run_{tau}", arch="compact", train_steps=4, histogram_every=0,
                   age_prior_correction=tau, years_sigma_relative=0.1)
    configs = with_data(configs, heads=("age", "gender", "age_years"), age_bins="utk12", val_fraction=0.2,
                        deterministic=True)
    return configs, train_and_evaluate(*configs)


@pytest.fixture(scope="module")
def corrected_run(utk_root, utk_shards):
    return run_with(utk_root, utk_shards, 0.5)


def test_a_task_without_an_age_head_or_with_the_age_balance_is_refused(utk_shards):
    data, model_cfg, cfg = with_data(tiny(utk_shards, age_prior_correction=0.5), heads=("gender",))
    with pytest.raises(ShardsError, match="needs age or age_years"):
        Task.of(data, model_cfg, cfg, load_folds(utk_shards, data.test_fold)[0])
    for weighed in ({"age_balance": 0.5}, {"class_weights": "balanced"}):
        data, model_cfg, cfg = with_data(tiny(utk_shards, age_prior_correction=0.5, **weighed),
                                         heads=("age", "gender"), age_bins="utk12")
        with pytest.raises(ShardsError, match="one or the other"):
            Task.of(data, model_cfg, cfg, load_folds(utk_shards, data.test_fold)[0])


def test_a_run_exports_the_corrected_age_in_every_signature(utk_shards, corrected_run):
    """A run with --age_prior_correction: metadata.json records tau, and each face
    signature's probabilities are the restored checkpoint's softmax of its logits (age: over
    its temperature) plus the offsets, not the model's own."""
    (data, model_cfg, cfg), results = corrected_run
    info = metadata.read(results["export_dir"])
    assert info.age_prior_correction == 0.5
    task = Task.of(data, model_cfg, cfg, load_folds(utk_shards, data.test_fold)[0])
    assert set(task.logit_offsets) == {"age", "age_years"}
    trained = architectures.build(model_cfg, task.sizes, 24)
    tf.train.Checkpoint(model=trained).restore(results["checkpoint"]).expect_partial()
    faces = tf.cast(tf.random.uniform((3, 24, 24, 3), 0, 255, seed=5), tf.uint8)
    logits = logits_of(trained, tf.cast(faces, tf.float32))
    signatures = tf.saved_model.load(results["export_dir"]).signatures
    served = signatures["serve_crops"](crops=faces)
    temperature = info.temperatures.get("age", 1.0)
    np.testing.assert_allclose(served["age_probabilities"].numpy(),
                               tf.nn.softmax(logits["age"] / temperature + task.logit_offsets["age"]).numpy(),
                               atol=1e-5)
    years = tf.nn.softmax(logits["age_years"] + task.logit_offsets["age_years"]).numpy()
    np.testing.assert_allclose(served["age_years_probabilities"].numpy(), years, atol=1e-5)
    assert not np.allclose(years, tf.nn.softmax(logits["age_years"]).numpy(), atol=1e-4)
    keras.backend.clear_session()


def test_the_sweep_of_a_run_gives_what_a_run_at_another_tau_exports(utk_root, utk_shards, corrected_run):
    """Training and checkpoint selection do not depend on tau: the same run at tau 0
    selects the same weights, and scripts/sweep_age_prior.py, undoing the export's own
    correction, gives at 0.5 what the run at 0.5 predicts (predict.py's records: age in
    years and bin) and at 0 what the run at 0 does."""
    import glob

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts"))
    import sweep_age_prior

    from serving import score
    from serving.predictor import Predictor

    _, corrected = corrected_run
    _, plain = run_with(utk_root, utk_shards, 0.0)
    assert plain["checkpoint"].rsplit("/", 2)[1:] == corrected["checkpoint"].rsplit("/", 2)[1:]
    truth = score.truth_of_utkface(str(utk_root / "utk"))  # The sample's malformed names are left out.
    paths = [p for p in sorted(glob.glob(str(utk_root / "utk" / "*.jpg"))) if os.path.basename(p) in truth]
    groups = labels.parse_bins("18-40,41+")
    rows = dict(sweep_age_prior.sweep(str(utk_root / "run_0.5"), paths, truth, [0.0, 0.5], 18, groups,
                                      detector=None))
    bins = labels.SCHEMES["utk12"]
    for tau, results in ((0.5, corrected), (0.0, plain)):
        records = [(record, truth[os.path.basename(result.input)][0][0])
                   for result in Predictor(results["export_dir"], detector=None).predict_many(paths)
                   for record in result.records]
        adults = [(record, age) for record, age in records if age >= 18]
        assert rows[tau]["faces"] == len(paths) == len(records)
        mae = np.mean([abs(record["age_years"]["years"] - age) for record, age in adults])
        assert rows[tau]["adults' MAE"] == pytest.approx(mae, abs=0.06)  # Records round to 0.1 year.
        exact = np.mean([record["age"]["label"] == bins.names[bins.bin_of(age, age, "nearest")]
                         for record, age in adults])
        assert rows[tau]["age bins exact: adults"] == pytest.approx(exact, abs=1e-9)
    assert rows[0.0]["adults' MAE"] != pytest.approx(rows[0.5]["adults' MAE"], abs=1e-3)
    keras.backend.clear_session()


def test_the_sweep_s_command_line_scores_only_the_fold_its_run_held_out(utk_root, corrected_run):
    """sweep_age_prior.py on the run's own dataset (--photos and --labels its UTKFace
    folder): refused without --fold, a table for --fold=0, the fold the run held out."""
    (data, _, _), _ = corrected_run
    assert data.test_fold == 0
    script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", "sweep_age_prior.py")
    command = [sys.executable, script, f"--model_dir={utk_root / 'run_0.5'}", f"--photos={utk_root / 'utk'}",
               f"--labels={utk_root / 'utk'}", "--taus=0,0.5", "--age_groups=18-40,41+"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "give --fold=0" in refused.stderr, refused.stderr[-2000:]
    scored = subprocess.run(command + ["--fold=0"], capture_output=True, text=True, timeout=300)
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert "| 0.5 |" in scored.stdout, scored.stdout
