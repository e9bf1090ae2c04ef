"""The Adience 5-fold protocol: train with each fold held out, test on it, tabulate.

    python scripts/cross_validate.py --flagfile=configs/demo.flags --cv_dir=runs/cv_demo
    python scripts/cross_validate.py --flagfile=configs/levi_hassner.flags --cv_dir=runs/cv_lh

Takes every flag of model.py (a preset and overrides) plus --cv_dir and --folds. Fold k
trains in <cv_dir>/fold_<k> with --test_fold=k. Resumable: a fold with a metrics.json
is done and skipped; an interrupted fold resumes from its last checkpoint. Writes
<cv_dir>/results.json, results.md (per fold, mean and standard deviation over folds,
next to Levi & Hassner's figures) and results.png (the confusion matrix summed over
folds, and per-fold bars).
"""

import dataclasses
import json
import os
import sys

import numpy as np
from absl import app, flags, logging
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import model as trainer  # noqa: E402  (after the path set-up; defines model.py's flags)

flags.DEFINE_string("cv_dir", "runs/cv", "Folder of the cross-validation: one model_dir per fold, results.")
flags.DEFINE_list("folds", ["0", "1", "2", "3", "4"], "Folds to hold out, in turn.")
FLAGS = flags.FLAGS

# Levi & Hassner 2015, Tables 2 and 3: mean accuracy (%) over the five folds.
PAPER = {
    ("age", "exact", "single_crop"): 49.5,
    ("age", "exact", "over_sampled"): 50.7,
    ("age", "one_off", "over_sampled"): 84.7,
    ("gender", "exact", "single_crop"): 85.9,
    ("gender", "exact", "over_sampled"): 86.8,
}
CROPS = ("single_crop", "over_sampled")


def run_fold(data_cfg, model_cfg, train_cfg, fold, cv_dir):
    """The test metrics of `fold`: read if the fold is done, else trained (or resumed)."""
    model_dir = os.path.join(cv_dir, f"fold_{fold}")
    done = os.path.join(model_dir, "metrics.json")
    if os.path.isfile(done):
        logging.info("fold %d: done already (%s)", fold, done)
        with open(done) as f:
            return json.load(f)
    logging.info("fold %d: training in %s", fold, model_dir)
    return trainer.train_and_evaluate(dataclasses.replace(data_cfg, test_fold=fold), model_cfg,
                                      dataclasses.replace(train_cfg, model_dir=model_dir))


def figures_of(metrics):
    """{(task, measure, crop): percent} of one fold's metrics."""
    figures = {}
    for crop in CROPS:
        for task, f in metrics[crop].items():
            figures[(task, "exact", crop)] = 100 * f["accuracy"]
            if "one_off_accuracy" in f:
                figures[(task, "one_off", crop)] = 100 * f["one_off_accuracy"]
    return figures


def summarize(per_fold):
    """Per-fold figures, their mean and sample standard deviation, and the paper's."""
    keys = sorted(set().union(*(f.keys() for f in per_fold.values())))
    rows = []
    for key in keys:
        values = [per_fold[fold][key] for fold in sorted(per_fold) if key in per_fold[fold]]
        rows.append({"task": key[0], "measure": key[1], "crop": key[2],
                     "per_fold": {str(fold): per_fold[fold].get(key) for fold in sorted(per_fold)},
                     "mean": float(np.mean(values)),
                     "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                     "paper": PAPER.get(key)})
    return rows


def markdown(rows, folds, synthetic):
    header = "| task | measure | crop | " + " | ".join(f"fold {k}" for k in folds) + " | mean ± std | paper |"
    lines = [header, "|" + "---|" * (len(folds) + 5)]
    for r in rows:
        cells = [f"{r['per_fold'][str(k)]:.1f}" if r["per_fold"][str(k)] is not None else "" for k in folds]
        paper = f"{r['paper']:.1f}" if r["paper"] is not None else ""
        lines.append(f"| {r['task']} | {r['measure']} | {r['crop']} | " + " | ".join(cells)
                     + f" | {r['mean']:.1f} ± {r['std']:.1f} | {paper} |")
    note = ("\n\nAccuracy in %; std is the sample standard deviation over folds. The paper's figures are for "
            "real Adience" + (": **this run used the SYNTHETIC sample**, so the two are not comparable." if synthetic
                              else "."))
    return "\n".join(lines) + note + "\n"


def bars_image(rows, folds, task, height=300):
    """Per-fold bars of exact and one-off (over-sampled) accuracy for `task`."""
    series = [r for r in rows if r["task"] == task and r["crop"] == "over_sampled"]
    width = 60 + len(folds) * 90
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), f"{task}, over-sampled: per fold (%)", fill="black")
    colours = {"exact": (60, 90, 200), "one_off": (150, 180, 250)}
    base, top = height - 30, 40
    for i, fold in enumerate(folds):
        for j, r in enumerate(series):
            value = r["per_fold"][str(fold)] or 0.0
            x = 50 + i * 90 + j * 34
            y = base - (base - top) * value / 100
            draw.rectangle((x, y, x + 30, base), fill=colours[r["measure"]])
            draw.text((x + 2, y - 14), f"{value:.0f}", fill="black")
        draw.text((50 + i * 90 + 10, base + 8), f"fold {fold}", fill="black")
    for j, r in enumerate(series):
        draw.text((width - 150, 8 + 14 * j), f"{r['measure']}: {r['mean']:.1f} ± {r['std']:.1f}",
                  fill=colours[r["measure"]])
    return image


def figure(per_fold_metrics, rows, folds, task, path):
    """The confusion matrix summed over folds (over-sampled) beside per-fold bars."""
    matrix = np.sum([m["over_sampled"][task]["confusion_matrix"] for m in per_fold_metrics.values()], axis=0)
    confusion = Image.fromarray(trainer.confusion_image(matrix, trainer.CLASS_NAMES[task],
                                                        f"{task}: confusion summed over folds {','.join(folds)}")[0])
    bars = bars_image(rows, folds, task, height=confusion.height)
    combined = Image.new("RGB", (confusion.width + bars.width, confusion.height), "white")
    combined.paste(confusion, (0, 0))
    combined.paste(bars, (confusion.width, 0))
    combined.save(path)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    trainer.quiet_tensorflow_info()
    data_cfg, model_cfg, train_cfg = trainer.configs_from_flags()
    folds = [int(k) for k in FLAGS.folds]
    os.makedirs(FLAGS.cv_dir, exist_ok=True)
    try:
        metrics = {k: run_fold(data_cfg, model_cfg, train_cfg, k, FLAGS.cv_dir) for k in folds}
    except trainer.Interrupted as e:
        logging.warning("%s", e)
        sys.exit(e.exit_status)
    if any(m is None for m in metrics.values()):  # A multi-worker run's other worker: the chief tabulates.
        return
    rows = summarize({k: figures_of(m) for k, m in metrics.items()})
    synthetic = any(m.get("synthetic_data") for m in metrics.values())
    with open(os.path.join(FLAGS.cv_dir, "results.json"), "w") as f:
        json.dump({"folds": folds, "config": {"data": dataclasses.asdict(data_cfg),
                                              "model": dataclasses.asdict(model_cfg),
                                              "train": dataclasses.asdict(train_cfg)},
                   "synthetic_data": synthetic, "results": rows}, f, indent=2)
    table = markdown(rows, folds, synthetic)
    with open(os.path.join(FLAGS.cv_dir, "results.md"), "w") as f:
        f.write(table)
    task = "age" if data_cfg.task != "gender" else "gender"
    figure(metrics, rows, [str(k) for k in folds], task, os.path.join(FLAGS.cv_dir, "results.png"))
    print(table)
    print(f"written: {FLAGS.cv_dir}/results.md, results.json, results.png")


if __name__ == "__main__":
    app.run(main)
