"""The recipe's pieces, each turned off (or on) in its own run, scored on the test fold and
on photos nobody trained on (scripts/ablate.py).

Every variant is the given configuration with a few fields changed (VARIANTS), trained in
<output_dir>/<variant> by training.loop.train_and_evaluate (a finished run of the same
settings resumes at its last step and is only tested and exported again; one of other
settings is refused by reruns.check), then its export predicts the photos through the
Predictor with its default detector, as predict.py does, and serving.score scores the
answers: what a user of that model would get.
"""

import dataclasses
import os
import time

from input_pipeline import labels
from input_pipeline.reader.manifest import ShardsError, load_folds
from serving import report, score
from serving.predictor import Predictor
from training.loop import train_and_evaluate
from training.task import Task

# name: (what changes, {config field: value}); fields are DataConfig's, ModelConfig's or TrainConfig's.
VARIANTS = {
    "recipe": ("the configuration as given", {}),
    "seed": ("the configuration as given, another seed (initial weights, shuffle, augmentation): the "
             "run-to-run noise every other row is to be read against", {"seed": 1}),
    "no_geometry": ("no random zoom, rotation or shift", {"scale_jitter": 0.0, "rotation": 0.0, "shift": 0.0}),
    "no_ema": ("the last weights, not their moving average", {"ema_decay": 0.0}),
    "no_label_smoothing": ("no label smoothing", {"label_smoothing": 0.0}),
    "no_flip_test": ("no test-time flip", {"flip_test": False}),
    "adam": ("Adam with no weight decay instead of AdamW", {"optimizer": "adam"}),
    "mixup": ("with mixup (Beta 0.2)", {"mixup": 0.2}),
    "cutmix": ("with CutMix (Beta 1.0)", {"cutmix": 1.0}),
    "no_age_balance": ("every age bin as the data has it, not weighed by its inverse square-root frequency",
                       {"age_balance": 0.0}),
    "age_balance": ("each face weighed by its age bin's inverse square-root frequency (capped by "
                    "--age_balance_cap), instead of any --age_prior_correction", {"age_balance": 0.5,
                                                                                 "age_prior_correction": 0.0}),
    "no_gender_balance": ("men and women as the data has them, not weighed alike within each age bin",
                          {"gender_balance": 0.0}),
    "no_gender_weight": ("every head's loss weighing 1 (no --head_weights)", {"head_weights": ()}),
    "years_l1": ("with an L1 term on the predicted (expected) age's error, weight 0.2 (DLDL-v2)",
                 {"years_l1": 0.2}),
    "no_age_prior_correction": ("the age heads as trained, the training faces' age prior left in",
                                {"age_prior_correction": 0.0}),
    "age_prior_correction": ("the training faces' age prior taken out of the age heads' predictions at "
                             "tau 0.75 (post-hoc logit adjustment)", {"age_prior_correction": 0.75}),
    "levi_hassner": ("Levi-Hassner instead of the compact network (dropout 0.5)",
                     {"arch": "levi_hassner", "dropout": 0.5}),
}


def variant_configs(configs, name, output_dir):
    """The three configs of variant `name`, its run in <output_dir>/<name>."""
    changes = dict(VARIANTS[name][1], model_dir=os.path.join(output_dir, name))
    out = []
    for cfg in configs:
        fields = {f.name for f in dataclasses.fields(cfg)}
        out.append(dataclasses.replace(cfg, **{k: v for k, v in changes.items() if k in fields}))
    return tuple(out)


def photo_figures(export_dir, photo_paths, labels_csv, adult_age, output, workers=2):
    """(serving.score's figures of the export's answers on the photos, seconds): its default
    detector, single crop, as predict.py --format=csv with no other flag; the answers are
    written to `output` (a CSV as predict.py's)."""
    predictor = Predictor(export_dir)
    start = time.monotonic()
    records = [r for result in predictor.predict_many(photo_paths, workers) for r in result.records]
    seconds = time.monotonic() - start
    with open(output, "w", newline="") as f:
        f.write(report.render(records, "csv", predictor.heads))
    bins = labels.AgeBins.from_dict(predictor.metadata.age_bins)
    truth = score.read_truth(labels_csv, {}, bins, None)
    return score.score(score.read_predictions(output), truth, bins, adult_age), seconds


def changes_nothing(configs, name):
    """True when variant `name` sets every field it changes to the value it already has
    (e.g. mixup on a configuration with mixup): its row would only repeat the recipe's."""
    changes = VARIANTS[name][1]
    return bool(changes) and all(getattr(cfg, k) == v for cfg in configs for k, v in changes.items()
                                 if k in {f.name for f in dataclasses.fields(cfg)})


def selected(configs, names, output_dir):
    """The variants to run: `names` (ValueError naming any that changes_nothing, ShardsError
    from check for any the shards cannot train), or when it is empty every variant that
    changes something in `configs` and whose heads the shards can train (years_l1 needs
    age_years)."""
    if names:
        same = [name for name in names if changes_nothing(configs, name)]
        if same:
            raise ValueError(f"--variants {', '.join(same)} change nothing in this configuration (it has those "
                             "settings already): their rows would only repeat the recipe's")
        check(configs, names, output_dir)
        return list(names)
    manifest = load_folds(configs[0].shards_dir, configs[0].test_fold)[0]
    return [name for name in VARIANTS
            if not changes_nothing(configs, name) and _refusal(configs, name, output_dir, manifest) is None]


def check(configs, names, output_dir):
    """Raises ShardsError naming the first of variants `names` whose task the shards or
    its heads cannot train (years_l1 without age_years), before any variant trains."""
    manifest = load_folds(configs[0].shards_dir, configs[0].test_fold)[0]
    for name in names:
        refusal = _refusal(configs, name, output_dir, manifest)
        if refusal is not None:
            raise ShardsError(f"variant {name}: {refusal}")


def _refusal(configs, name, output_dir, manifest):
    """The ShardsError why variant `name`'s task cannot train on `manifest`'s shards, or None."""
    try:
        Task.of(*variant_configs(configs, name, output_dir), manifest)
    except ShardsError as e:
        return e
    return None


def merge(rows, row):
    """`rows` with `row` in place of the one of its variant, in VARIANTS order."""
    kept = {r["variant"]: r for r in rows}
    kept[row["variant"]] = row
    return [kept[name] for name in VARIANTS if name in kept]


def run(configs, name, output_dir, photo_paths, labels_csv, adult_age=18):
    """The row of variant `name`: its test-fold figures (single crop) and its photos'."""
    configs = variant_configs(configs, name, output_dir)
    results = train_and_evaluate(*configs)
    figures, seconds = photo_figures(results["export_dir"], photo_paths, labels_csv, adult_age,
                                     os.path.join(configs[2].model_dir, "photo_predictions.csv"))
    return {"variant": name, "what": VARIANTS[name][0], "train_minutes": results["train_seconds"] / 60,
            "test": results["single_crop"], "photos": figures, "photo_seconds": seconds}


def table(rows):
    """Markdown: one line per variant, the test fold's figures beside the photos'."""
    def test(row, head, key, percent=True):
        value = row["test"].get(head, {}).get(key)
        return "" if value is None else (f"{100 * value:.1f}%" if percent else f"{value:.2f}")

    def photos(figures, head, key, percent=True):
        value = figures.get(head, {}).get(key)
        return "" if value is None else (f"{100 * value:.1f}%" if percent else f"{value:.2f}")

    lines = ["| variant | what | minutes | test: gender | test: age_years MAE | photos: found | photos: gender "
             "| adults | photos: age_years MAE, adults | children | photos: age exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        p = row["photos"]
        by_age = p.get("by_age", {})
        what = row["what"].replace("|", "\\|")  # A table cell.
        lines.append(f"| {row['variant']} | {what} | {row['train_minutes']:.1f} | "
                     f"{test(row, 'gender', 'accuracy')} | {test(row, 'age_years', 'mae', False)} | "
                     f"{100 * p['with_face'] / max(p['photos'], 1):.1f}% | {photos(p, 'gender', 'accuracy')} | "
                     f"{photos(by_age.get('adults', {}), 'gender', 'accuracy')} | "
                     f"{photos(by_age.get('adults', {}), 'age_years', 'mae', False)} | "
                     f"{photos(by_age.get('children', {}), 'age_years', 'mae', False)} | "
                     f"{photos(p, 'age', 'exact')} |")
    return "\n".join(lines) + "\n"
