"""How --age_prior_correction moves a trained model's age figures, tau by tau, without
training again: the training faces' age prior taken out of the age heads' predictions
(training/age_prior.py), from not at all (0) to as if every age were equally common (1).

    .venv/bin/python scripts/sweep_age_prior.py --model_dir=runs/real_faces_fold0 \\
        --photos=../shared/utkface_dev --labels=../shared/utkface_dev --fold=0
    .venv/bin/python scripts/sweep_age_prior.py --model_dir=runs/real_faces \\
        --photos=../shared/realfaces_dev/images --labels=../shared/realfaces_dev/labels.csv

The first is how configs/real_faces.flags's tau was chosen: on a run's test fold, here
the preset's with fold 0 held out (model.py --flagfile=configs/real_faces.flags
--test_fold=0 --model_dir=runs/real_faces_fold0; the preset itself trains on every fold) (a
UTKFace folder's file names are its labels; --fold keeps the faces build_input.py put in
that fold, and must be the run's test fold), each adult age group weighing alike, as in
photos of all ages. The run's export finds and frames each photo's face as predict.py does
(its default detector, single crop); the prior is recomputed from the run's shards
(config.json; run from the folder the run was started in, and the shards must be the ones
it trained on: their manifest's hash is checked), and the export's own correction
(metadata.json) is undone first, so any run's export can be swept. For each tau it prints
the age_years MAE of adults and children (--adult_age) and the mean of the adult groups'
MAE (--age_groups), and the age head's exact accuracy alike (an age range's bin is the
nearest to its middle, as score_predictions.py reads it; MAEs are of exact ages only). Checkpoint selection
does not depend on tau (validation during training sees the model as trained), so each
row is what a run trained with that tau would export.
"""

import json
import os
import sys

import numpy as np
from absl import app, flags

from architectures.heads import expected_years, probabilities_of
from input_pipeline import labels, schema
from input_pipeline.reader.manifest import load_manifest
from input_pipeline.sources.rows import DatasetError
from serving import inputs, metadata, photos, score
from serving.predictor import Predictor
from training import age_prior, reruns

flags.DEFINE_string("model_dir", "runs/real_faces", "A run of model.py: its config.json, shards and export.")
flags.DEFINE_list("photos", [], "Photos or folders of photos to predict.")
flags.DEFINE_string("labels", "", "Their labels: a CSV (path, age, ...) or a UTKFace folder, as score_predictions.py "
                    "reads them.")
flags.DEFINE_integer("fold", -1, "Only the labelled photos of this fold (-1: all).", lower_bound=-1, upper_bound=4)
flags.DEFINE_list("taus", ["0", "0.25", "0.5", "0.75", "1"], "The corrections to score.")
flags.DEFINE_integer("adult_age", 18, "Adults are at least this old.", lower_bound=1)
flags.DEFINE_string("age_groups", "18-29,30-44,45-59,60-74,75+",
                    "The adult age groups whose figures are averaged, each weighing alike.")
FLAGS = flags.FLAGS


def probabilities(predictor, paths, truth):
    """(age_years (N, YEARS), age (N, bins) or None, true ages (N, 2): low and high) of the
    first face found in each photo with a known age."""
    faces, ages = [], []
    for path in paths:
        age = truth.get(os.path.basename(path), ((labels.UNKNOWN, labels.UNKNOWN),))[0]
        if age[0] < 0:
            continue
        try:
            found = [face for _, status, face in predictor.faces(inputs.pixels(path)) if status == "ok"]
        except photos.PhotoError as e:
            print(f"skipped: {e}", file=sys.stderr)
            continue
        if found:
            faces.append(found[0])
            ages.append(age)
    if not faces:
        raise ValueError("no photo with a known age had a face")
    p = predictor.probabilities(faces)
    return p["age_years"], p.get("age"), np.array(ages, np.float64).reshape(-1, 2)


def sweep(model_dir, paths, truth, taus, adult_age, groups, detector="auto"):
    """[(tau, {figure: value})] of the run in `model_dir` on the photos `paths` ({file name:
    read_truth's labels} `truth`), faces found by `detector` (Predictor's); `groups` an
    AgeBins of adult age groups. ValueError when the run's shards are not where config.json
    says or not the ones it trained on."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    data = config["data"]
    if not os.path.isfile(os.path.join(data["shards_dir"], schema.MANIFEST)):
        raise ValueError(f"{model_dir} trained on the shards in {data['shards_dir']!r}, not found from "
                         f"{os.getcwd()}: run this from the folder the run was started in")
    recorded = config.get("fingerprint", {}).get(reruns.SHARDS)
    if recorded and recorded != reruns.manifest_sha256(data["shards_dir"]):
        raise ValueError(f"the shards in {data['shards_dir']} are not the ones {model_dir} trained on (their "
                         "manifest changed since): the age prior cannot be recomputed")
    predictor = Predictor(os.path.join(model_dir, "export"), detector=detector)
    meta = predictor.metadata
    if not meta.age_years:
        raise ValueError(f"{model_dir}'s export has no age_years head")
    manifest = load_manifest(data["shards_dir"])
    bins = labels.AgeBins.from_dict(meta.age_bins)
    heads = {head: len(meta.class_names.get(head, ())) or labels.YEARS for head in meta.heads}
    # -log prior of each age head: the offsets at tau 1.
    unit = age_prior.offsets(manifest, data["test_fold"], meta.class_names, bins, manifest["label_policy"], heads, 1.0,
                             config["train"].get("years_sigma_relative", 0.0))
    years, age, truth_ages = probabilities(predictor, paths, truth)
    own = meta.age_prior_correction
    raw_years = np.log(np.maximum(years, 1e-30)) - own * unit["age_years"]
    raw_age = None
    if age is not None:
        # The export's age probabilities are softmax(logits / T + own * unit): its bins at
        # another tau are the argmax of logits / T + tau * unit.
        raw_age = np.log(np.maximum(age, 1e-30)) - own * unit["age"]
        true_bins = np.array([bins.bin_of(int(low), int(high), "nearest") for low, high in truth_ages])
    exact = truth_ages[:, 0] == truth_ages[:, 1]
    middle = truth_ages.mean(axis=1)
    adult = truth_ages[:, 0] >= adult_age
    group = np.array([groups.bin_of(int(low), int(high), "strict") for low, high in truth_ages])
    rows = []
    for tau in taus:
        # The export's age_years_expected at this tau: raw_years is logits / T plus a constant.
        expected = expected_years(probabilities_of(raw_years, 1.0, tau * unit["age_years"]))
        error = np.abs(np.asarray(expected, np.float64) - middle)
        figures = {"faces": int(exact.sum()), "adults' MAE": _mean(error[exact & adult]),
                   "children's MAE": _mean(error[exact & ~adult]),
                   "adult groups alike: MAE": _group_mean(error, exact & adult, group)}
        if raw_age is not None:
            known = true_bins >= 0
            hit = (raw_age + tau * unit["age"]).argmax(axis=1) == true_bins
            figures["age bins exact: adults"] = _mean(hit[known & adult])
            figures["adult groups alike: exact"] = _group_mean(hit, known & adult, group)
        rows.append((tau, figures))
    return rows


def _group_mean(values, keep, group):
    """The mean over the groups (group >= 0) of each group's mean of `values` where `keep`."""
    means = [_mean(values[keep & (group == g)]) for g in np.unique(group[keep & (group >= 0)])]
    return float(np.mean(means)) if means else float("nan")


def _cell(name, value):
    if isinstance(value, int):
        return str(value)
    return f"{value:.1%}" if "exact" in name else f"{value:.2f}"


def _mean(x):
    return float(x.mean()) if len(x) else float("nan")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.photos or not FLAGS.labels:
        raise app.UsageError("give --photos and --labels")
    try:
        taus = [float(t) for t in FLAGS.taus]
    except ValueError as e:
        raise app.UsageError(f"--taus are numbers: {e}") from None
    if any(not 0 <= t <= 1 for t in taus):
        raise app.UsageError("--taus must be in [0, 1]")
    try:
        groups = labels.parse_bins(FLAGS.age_groups, "--age_groups")
        fold = None if FLAGS.fold < 0 else FLAGS.fold
        if not score.check_held_out(os.path.join(FLAGS.model_dir, "export"), fold, FLAGS.labels, *FLAGS.photos):
            print("note: " + score.UNCHECKED.format(FLAGS.model_dir), file=sys.stderr)
        bins = labels.AgeBins.from_dict(metadata.read(os.path.join(FLAGS.model_dir, "export")).age_bins)
        truth = (score.truth_of_utkface(FLAGS.labels, fold) if os.path.isdir(FLAGS.labels) else
                 score.read_truth(FLAGS.labels, {}, bins, fold))
        rows = sweep(FLAGS.model_dir, list(photos.expand(FLAGS.photos)), truth, taus, FLAGS.adult_age, groups)
    except (OSError, ValueError, DatasetError) as e:
        print(f"sweep_age_prior: {e}", file=sys.stderr)
        return 1
    names = list(rows[0][1])
    print("| tau | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for tau, figures in rows:
        print(f"| {tau:g} | " + " | ".join(_cell(name, figures[name]) for name in names) + " |")
    return 0


if __name__ == "__main__":
    app.run(main)
