"""The Adience 5-fold protocol: train with each fold held out, test on it, tabulate.

Fold k trains in <cv_dir>/fold_<k> with test_fold=k. A fold with a metrics.json is done;
an interrupted fold resumes from its last checkpoint. The table gives each fold, the mean
and sample standard deviation over folds, and Levi & Hassner's figures.
"""

import dataclasses
import json
import os

import numpy as np
from absl import logging

from training import plots
from training.loop import train_and_evaluate

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
    return train_and_evaluate(dataclasses.replace(data_cfg, test_fold=fold), model_cfg,
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


def write_results(cv_dir, metrics, configs):
    """results.json, results.md and results.png of the folds' `metrics` ({fold: metrics});
    returns the markdown table. Folds are listed in the order of `metrics`."""
    folds = list(metrics)
    data_cfg, model_cfg, train_cfg = configs
    rows = summarize({k: figures_of(m) for k, m in metrics.items()})
    synthetic = any(m.get("synthetic_data") for m in metrics.values())
    with open(os.path.join(cv_dir, "results.json"), "w") as f:
        json.dump({"folds": folds, "config": {"data": dataclasses.asdict(data_cfg),
                                              "model": dataclasses.asdict(model_cfg),
                                              "train": dataclasses.asdict(train_cfg)},
                   "synthetic_data": synthetic, "results": rows}, f, indent=2)
    table = markdown(rows, folds, synthetic)
    with open(os.path.join(cv_dir, "results.md"), "w") as f:
        f.write(table)
    task = "age" if data_cfg.task != "gender" else "gender"
    plots.cross_validation_figure(metrics, rows, [str(k) for k in folds], task, os.path.join(cv_dir, "results.png"))
    return table
