"""The Adience 5-fold protocol: train with each fold held out, test on it, tabulate.

Fold k trains in <cv_dir>/fold_<k> with test_fold=k. A fold with a metrics.json of the
same settings (training/reruns.py) is done; an interrupted fold resumes from its last
checkpoint; a fold trained with other settings is refused, or trained again with
`retrain`. The table gives each fold, the mean and sample standard deviation over folds,
and Levi & Hassner's figures, under the headline score (metrics.score, single crop). With
several heads, compare_heads also trains one network per head
(<cv_dir>/only_<head>/fold_<k>) and sets it beside the joint network: each head's
headline figure, parameters, training time.
"""

import dataclasses
import json
import os

import numpy as np
from absl import logging

from evaluation import metrics
from experiments import plots
from input_pipeline import labels
from training import reruns
from training.config import RunError
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
# metrics.json key -> the table's measure; all in % except the MAE, in years.
MEASURES = {"accuracy": "exact", "one_off_accuracy": "one_off", "mae": "mae", "within_5": "within_5", "ece": "ece",
            "ece_calibrated": "ece_calibrated", "nll": "nll", "nll_calibrated": "nll_calibrated"}
UNSCALED = ("mae", "nll", "nll_calibrated")  # Not shares: not times 100.


def fold_configs(data_cfg, model_cfg, train_cfg, fold, cv_dir):
    """The configs of fold `fold`'s run in <cv_dir>/fold_<fold>."""
    return (dataclasses.replace(data_cfg, test_fold=fold), model_cfg,
            dataclasses.replace(train_cfg, model_dir=os.path.join(cv_dir, f"fold_{fold}")))


def refuse_other_runs(configs, folds, cv_dir, compare_heads=False):
    """RunError, before anything trains, naming every fold folder (and with
    `compare_heads` every one-head network's) that holds a run of other settings."""
    data_cfg, model_cfg, train_cfg = configs
    runs = [(data_cfg, cv_dir)]
    if compare_heads:
        runs += [(dataclasses.replace(data_cfg, heads=(head,)), directory)
                 for head, directory in separate_dirs(cv_dir, data_cfg.head_names).items()]
    stale = {}
    for data, directory in runs:
        for fold in folds:
            fold_run = fold_configs(data, model_cfg, train_cfg, fold, directory)
            found = reruns.recorded(fold_run[2].model_dir)
            if found is not None and (changed := reruns.differences(found, reruns.fingerprint(*fold_run))):
                stale[fold_run[2].model_dir] = changed
    if stale:
        raise RunError("these folders hold runs of other settings, whose figures are not this command's: "
                       + "; ".join(f"{directory} ({', '.join(changed)})" for directory, changed in stale.items())
                       + ". Pass --retrain to train them again with these settings, or another --cv_dir")


def run_fold(data_cfg, model_cfg, train_cfg, fold, cv_dir, retrain=False):
    """The test metrics of `fold`: read if the fold is done with these settings, else
    trained (or resumed). A fold trained with other settings raises RunError, or with
    `retrain` is trained again."""
    configs = fold_configs(data_cfg, model_cfg, train_cfg, fold, cv_dir)
    model_dir = configs[2].model_dir
    if reruns.reusable(model_dir, reruns.fingerprint(*configs), retrain):
        logging.info("fold %d: done already with these settings (%s)", fold, model_dir)
        with open(os.path.join(model_dir, "metrics.json")) as f:
            return json.load(f)
    logging.info("fold %d: training in %s", fold, model_dir)
    return train_and_evaluate(*configs)


def figures_of(fold_metrics):
    """{(task, measure, crop): percent} of one fold's metrics (a figure of no faces is
    left out), with the headline ("all heads", "score", "single_crop"): the test single
    crop's score (metrics.score) times 100."""
    figures = {}
    score = metrics.recorded_score(fold_metrics, "single_crop")
    if score is not None:
        figures[("all heads", "score", "single_crop")] = 100 * score
    for crop in CROPS:
        for head, f in fold_metrics[crop].items():
            for key, measure in MEASURES.items():
                if f.get(key) is not None:
                    figures[(head, measure, crop)] = f[key] if key in UNSCALED else 100 * f[key]
    return figures


def summarize(per_fold, age_bins=labels.ADIENCE):
    """Per-fold figures, their mean and sample standard deviation (None for one fold), and
    the paper's (for the age head only with its 8 groups)."""
    keys = sorted(set().union(*(f.keys() for f in per_fold.values())), key=lambda k: (k[0] != "all heads", k))
    rows = []
    for key in keys:
        values = [per_fold[fold][key] for fold in sorted(per_fold) if key in per_fold[fold]]
        rows.append({"task": key[0], "measure": key[1], "crop": key[2],
                     "per_fold": {str(fold): per_fold[fold].get(key) for fold in sorted(per_fold)},
                     "mean": float(np.mean(values)),
                     "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                     "paper": PAPER.get(key) if key[0] != "age" or age_bins == labels.ADIENCE else None})
    return rows


def markdown(rows, folds, synthetic):
    header = "| task | measure | crop | " + " | ".join(f"fold {k}" for k in folds) + " | mean ± std | paper |"
    lines = [header, "|" + "---|" * (len(folds) + 5)]
    for r in rows:
        digits = 3 if r["measure"].startswith("nll") else 1  # NLL in nats: 0.35 and 0.30 differ.
        cells = [f"{r['per_fold'][str(k)]:.{digits}f}" if r["per_fold"][str(k)] is not None else "" for k in folds]
        paper = f"{r['paper']:.1f}" if r["paper"] is not None else ""
        spread = f" ± {r['std']:.{digits}f}" if r["std"] is not None else ""
        lines.append(f"| {r['task']} | {r['measure']} | {r['crop']} | " + " | ".join(cells)
                     + f" | {r['mean']:.{digits}f}{spread} | {paper} |")
    note = ("\n\nAccuracy, within-5-years and ECE in %, MAE in years, NLL in nats (ece_calibrated, "
            "nll_calibrated: after temperature scaling fitted on each fold's validation split); std is the sample "
            "standard deviation over "
            "folds. The score is the headline figure that picks checkpoints and ranks runs (metrics.score: the mean "
            "over heads of accuracy, or of -MAE/10 for age_years), times 100. The paper's figures are for "
            "real Adience" + (": **this run used the SYNTHETIC sample**, so the two are not comparable." if synthetic
                              else "."))
    return "\n".join(lines) + note + "\n"


def write_results(cv_dir, fold_metrics, configs):
    """results.json, results.md and results.png of the folds' `fold_metrics` ({fold:
    metrics}); returns the markdown table. Folds are listed in the order of `fold_metrics`."""
    folds = list(fold_metrics)
    data_cfg, model_cfg, train_cfg = configs
    rows = summarize({k: figures_of(m) for k, m in fold_metrics.items()}, data_cfg.bins)
    synthetic = any(m.get("synthetic_data") for m in fold_metrics.values())
    with open(os.path.join(cv_dir, "results.json"), "w") as f:
        json.dump({"folds": folds, "config": {"data": dataclasses.asdict(data_cfg),
                                              "model": dataclasses.asdict(model_cfg),
                                              "train": dataclasses.asdict(train_cfg)},
                   "synthetic_data": synthetic, "results": rows}, f, indent=2)
    table = markdown(rows, folds, synthetic)
    with open(os.path.join(cv_dir, "results.md"), "w") as f:
        f.write(table)
    first = next(iter(fold_metrics.values()))["over_sampled"]
    shown = [head for head in first if "confusion_matrix" in first[head]]  # Class heads; age first.
    if shown:
        plots.cross_validation_figure(fold_metrics, rows, [str(k) for k in folds], shown[0],
                                      list(first[shown[0]]["per_class_accuracy"]), os.path.join(cv_dir, "results.png"))
    return table


def separate_dirs(cv_dir, heads):
    """{head: the cross-validation folder of the network that learns `head` alone}."""
    return {head: os.path.join(cv_dir, f"only_{head}") for head in heads}


def run_separate(configs, folds, cv_dir, retrain=False):
    """{head: {fold: metrics}} of one network per head of configs' data config."""
    data_cfg, model_cfg, train_cfg = configs
    out = {}
    for head, directory in separate_dirs(cv_dir, data_cfg.head_names).items():
        logging.info("one network for %s alone, in %s", head, directory)
        alone = dataclasses.replace(data_cfg, heads=(head,))
        out[head] = {k: run_fold(alone, model_cfg, train_cfg, k, directory, retrain) for k in folds}
    return out


def compare_heads(joint, separate):
    """Rows of the joint network (`joint` {fold: metrics}) and of one network per head
    (`separate` {head: {fold: metrics}}): each head's headline figure (metrics.headline on
    the single crop, mean over the folds where the head saw faces: accuracy in %, MAE in
    years), the parameters and the training time summed over folds."""

    def headline(per_fold, head):
        values = [value for m in per_fold.values()
                  if (value := metrics.headline(head, m["single_crop"][head])) is not None]
        if not values:
            return None
        return -10 * float(np.mean(values)) if head == "age_years" else 100 * float(np.mean(values))

    heads = list(separate)
    joint_row = {"network": f"one for {'+'.join(heads)}",
                 "figures": {head: headline(joint, head) for head in heads},
                 "parameters": int(next(iter(joint.values()))["num_parameters"]),
                 "train_seconds": float(sum(m["train_seconds"] for m in joint.values()))}
    separate_row = {"network": f"one per head ({len(heads)} networks)",
                    "figures": {head: headline(separate[head], head) for head in heads},
                    "parameters": int(sum(next(iter(separate[head].values()))["num_parameters"] for head in heads)),
                    "train_seconds": float(sum(m["train_seconds"] for head in heads for m in separate[head].values()))}
    return [joint_row, separate_row]


def comparison_markdown(rows):
    heads = list(rows[0]["figures"])
    names = [f"{head} MAE (years)" if head == "age_years" else f"{head} (%)" for head in heads]
    lines = ["| network | " + " | ".join(names) + " | parameters | training time (s) |",
             "|" + "---|" * (len(heads) + 3)]
    for r in rows:
        cells = ["" if r["figures"][h] is None else f"{r['figures'][h]:.2f}" if h == "age_years"
                 else f"{r['figures'][h]:.1f}" for h in heads]
        lines.append(f"| {r['network']} | " + " | ".join(cells)
                     + f" | {r['parameters']:,} | {r['train_seconds']:.0f} |")
    return ("\n".join(lines) + "\n\nEach head's headline figure (single crop; accuracy, MAE for age_years), the "
            "mean over folds; parameters of one fold's network(s); training time summed over folds.\n")


def write_comparison(cv_dir, rows):
    """Adds the joint-versus-separate table to results.md and results.json; returns it."""
    table = comparison_markdown(rows)
    with open(os.path.join(cv_dir, "results.md"), "a") as f:
        f.write("\n## One network for all heads, or one per head\n\n" + table)
    path = os.path.join(cv_dir, "results.json")
    with open(path) as f:
        results = json.load(f)
    results["heads_comparison"] = rows
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    return table
