"""One face, one prediction, whichever way it goes in.

The synthetic sample's test faces (their stored JPEG bytes) go through the evaluation
pipeline (as metrics.json is computed), each export signature, the Python predictor,
predict.py's command line and TFLite, with and without --resize (the demo preset sets
it). Every path must give the same class, with probabilities within 1e-4.
"""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import architectures
from configs import tiny, with_data
from datasets import targets_of
from evaluation import calibration, metrics
from evaluation.calibration import CALIBRATED
from input_pipeline import preprocess
from input_pipeline.config import BuildConfig
from input_pipeline.labels import head_sizes
from input_pipeline.reader import dataset
from input_pipeline.reader.manifest import load_folds
from input_pipeline.sources import sample
from input_pipeline.writer import build
from processes import ROOT
from serving import metadata, tflite
from serving.predictor import Predictor
from training import steps
from training.loop import train_and_evaluate

TOLERANCE = 1e-4
HEADS = ("age", "gender")
STORED = 64


@pytest.fixture(scope="module")
def sample_shards(tmp_path_factory):
    """A small synthetic sample built as build_input builds it, faces stored at 64 px."""
    root = tmp_path_factory.mktemp("agreement")
    sample.generate(str(root / "sample"), sample.SampleConfig(num_faces=150, image_size=96), num_workers=1)
    shards = str(root / "shards")
    build.build(BuildConfig(data_dir=str(root / "sample"), output_dir=shards, image_size=STORED, num_shards=2,
                            num_workers=1), synthetic=True)
    return root, shards


def trained(root, shards, resize, crop):
    """(configs, metrics) of a tiny age-and-gender model trained a few steps."""
    configs = with_data(tiny(shards, root / f"run_{resize}", task="age_gender", image_size=crop, train_steps=6,
                             eval_every=3, checkpoint_every=3, histogram_every=0, log_every=3),
                        resize=resize, val_fraction=0.2)
    return configs, train_and_evaluate(*configs)


def stored_test_faces(shards, data_cfg):
    """(JPEG bytes as stored, {head: label}) of every test-fold face evaluation reads, in its
    order (the records the evaluation pipeline decodes)."""
    _, _, test_files = load_folds(shards, data_cfg.test_fold)
    records = dataset.read_records(test_files, data_cfg, "test", targets_of(data_cfg))
    return [(r["encoded"].numpy(), {task: int(r[task]) for task in HEADS}) for r in records]


def evaluation_probabilities(configs, results, oversample):
    """What finish() computes metrics.json from: the eval pipeline and the best weights in
    float32, each head's probabilities temperature-scaled as the export's are (its raw
    ones under "raw/<head>")."""
    data_cfg, model_cfg, _ = configs
    heads = head_sizes(data_cfg.head_names, data_cfg.bins, [])
    model = architectures.build(model_cfg, heads, data_cfg.image_size)
    tf.train.Checkpoint(model=model).restore(results["checkpoint"]).assert_existing_objects_matched()
    _, _, test_files = load_folds(data_cfg.shards_dir, data_cfg.test_fold)
    eval_ds = dataset.make_eval_dataset(data_cfg, test_files, "test", targets_of(data_cfg), oversample=oversample)
    temperatures = results["calibration"]["temperatures"]
    probabilities, labels = metrics.predict_all(steps.make_predict_step(model, heads, oversample, temperatures),
                                                heads, eval_ds)
    for head in heads:
        probabilities[f"raw/{head}"] = probabilities[head]
        probabilities[head] = probabilities.pop(CALIBRATED + head)
    return probabilities, labels


def fitted_temperatures(configs, results, split):
    """{head: the temperature fit_temperature gives} on the raw probabilities of `split`
    ("val": the validation split of the training folds; "test": the test fold) under the
    weights metrics.json names."""
    data_cfg, model_cfg, _ = configs
    heads = head_sizes(data_cfg.head_names, data_cfg.bins, [])
    model = architectures.build(model_cfg, heads, data_cfg.image_size)
    tf.train.Checkpoint(model=model).restore(results["checkpoint"]).assert_existing_objects_matched()
    _, train_files, test_files = load_folds(data_cfg.shards_dir, data_cfg.test_fold)
    ds = dataset.make_eval_dataset(data_cfg, train_files if split == "val" else test_files, split,
                                   targets_of(data_cfg), oversample=False)
    probabilities, labels = metrics.predict_all(steps.make_predict_step(model, heads, False), heads, ds)
    return {head: calibration.fit_temperature(probabilities[head][labels[head] >= 0], labels[head][labels[head] >= 0])
            for head in heads}


def assert_agree(reference, other, path):
    for task in HEADS:
        np.testing.assert_array_equal(other[task].argmax(axis=1), reference[task].argmax(axis=1),
                                      err_msg=f"{path}: {task} class")
        np.testing.assert_allclose(other[task], reference[task], atol=TOLERANCE, rtol=0, err_msg=f"{path}: {task}")


@pytest.mark.parametrize("resize,crop", [(48, 40), (0, 56)])
def test_every_path_gives_the_same_prediction(sample_shards, tmp_path, resize, crop):
    root, shards = sample_shards
    configs, results = trained(root, shards, resize, crop)
    export_dir = results["export_dir"]
    faces = stored_test_faces(shards, configs[0])
    jpegs = [jpeg for jpeg, _ in faces]
    assert len(faces) >= 20
    reference, labels = evaluation_probabilities(configs, results, oversample=False)
    for task in HEADS:  # The same faces in the same order.
        np.testing.assert_array_equal(labels[task], [face_labels[task] for _, face_labels in faces])
        # Every path below gives the calibrated probabilities: scaled by a temperature fitted on
        # validation, recorded in the export's metadata, with the raw model's predicted class.
        t = results["calibration"]["temperatures"][task]
        assert t and abs(t - 1) > 1e-3 and metadata.read(export_dir).temperatures[task] == t
        assert not np.allclose(reference[task], reference[f"raw/{task}"], atol=1e-3)
        np.testing.assert_array_equal(reference[task].argmax(axis=1), reference[f"raw/{task}"].argmax(axis=1))
        known = labels[task] >= 0
        assert results["single_crop"][task]["ece_calibrated"] == calibration.calibration(
            reference[task][known], labels[task][known])[0]

    # The temperature is the one the validation split gives, not the test fold's.
    on_validation, on_test = (fitted_temperatures(configs, results, split) for split in ("val", "test"))
    for task in HEADS:
        t = results["calibration"]["temperatures"][task]
        assert abs(on_validation[task] / t - 1) < 1e-3, (t, on_validation[task])
        assert calibration.at_edge(t) or abs(on_test[task] / t - 1) > 1e-3, (t, on_test[task])

    loaded = tf.saved_model.load(export_dir)
    stored = np.stack([np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")) for jpeg in jpegs])
    assert stored.shape[1:] == (STORED, STORED, 3)
    paths = {
        "serving_default (JPEG bytes)": loaded.signatures["serving_default"](tf.constant(jpegs)),
        "serve_images (uint8 as stored)": loaded.signatures["serve_images"](images=tf.constant(stored)),
        "serve_probabilities": loaded.signatures["serve_probabilities"](images=tf.constant(stored)),
    }
    for path, out in paths.items():
        assert_agree(reference, {task: out[f"{task}_probabilities"].numpy() for task in HEADS}, path)

    predictor = Predictor(export_dir, detector=None)
    assert_agree(reference, predictor.probabilities([Image.open(io.BytesIO(jpeg)) for jpeg in jpegs]), "Predictor")
    over_reference, _ = evaluation_probabilities(configs, results, oversample=True)
    for task in HEADS:  # metrics.json's over-sampled figures are those of what Predictor serves.
        known = labels[task] >= 0
        assert results["over_sampled"][task]["accuracy"] == metrics.exact_accuracy(
            labels[task][known], over_reference[task][known].argmax(axis=1))
    assert_agree(over_reference, predictor.probabilities(list(stored), oversample=True), "Predictor, over-sampled")

    files = []
    for i, jpeg in enumerate(jpegs):
        files.append(str(tmp_path / f"face_{i:03d}.jpg"))
        with open(files[-1], "wb") as f:
            f.write(jpeg)
    results_ = list(predictor.predict_many(files, workers=2))
    assert not any(r.error for r in results_)
    rows = [rec for r in results_ for rec in r.records]
    assert [r["input"] for r in rows] == files
    assert rows == predictor.predict(files)  # Batched in threads, or one call: the same records.
    names = predictor.class_names
    for task in HEADS:
        predicted = [names[task][i] for i in reference[task].argmax(axis=1)]
        assert [r[task]["label"] for r in rows] == predicted, f"predict_many(): {task}"
        np.testing.assert_allclose([list(r[task]["probabilities"].values()) for r in rows], reference[task],
                                   atol=TOLERANCE + 1e-4)  # Records round to 4 places.

    command = [sys.executable, os.path.join(ROOT, "scripts", "predict.py"), f"--model={export_dir}", "--no_detect",
               "--format=json", *files]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == rows  # The command line prints what the Python API returns.

    tflite_model, output_names = tflite.convert(export_dir)
    runner = tf.lite.Interpreter(model_content=tflite_model).get_signature_runner()
    lite = {task: [] for task in HEADS}
    for face in stored:
        out = runner(images=face[None])
        for i, name in enumerate(output_names):
            lite[name.removesuffix("_probabilities")].append(out[f"output_{i}"][0])
    assert_agree(reference, {task: np.stack(p) for task, p in lite.items()}, "TFLite")


def test_a_face_of_another_size_goes_through_the_same_resize(sample_shards):
    """A face larger or smaller than the stored size reaches the model through
    preprocess.resize in the export and in the predictor alike."""
    root, shards = sample_shards
    configs, results = trained(root, shards, 48, 40)
    loaded = tf.saved_model.load(results["export_dir"])
    predictor = Predictor(results["export_dir"], detector=None)
    jpeg, _ = stored_test_faces(shards, configs[0])[0]
    face = Image.open(io.BytesIO(jpeg))
    for size in ((150, 130), (37, 41)):
        other = np.asarray(face.resize(size))
        direct = loaded.signatures["serve_crops"](crops=preprocess.serving_crop(other[None], 48, 40))
        expected = {task: direct[f"{task}_probabilities"].numpy() for task in HEADS}
        images = loaded.signatures["serve_images"](images=tf.constant(other[None]))
        assert_agree(expected, {task: images[f"{task}_probabilities"].numpy() for task in HEADS}, f"{size} images")
        assert_agree(expected, predictor.probabilities([other]), f"{size} predictor")
