"""Architectures side by side: cost (parameters, multiply-adds, training images/s,
inference latency) measured in one run, and the headline score under one training budget.

The score is metrics.score, the figure that picks checkpoints and ranks tuning trials:
the cheapest architecture reaching a target is chosen on the validation split, and the
test fold (evaluated once, at the end of each run) is reported beside it, never used to
choose.
"""

import csv
import dataclasses
import json
import os

import keras
import numpy as np
from absl import logging

from evaluation import metrics
from experiments import architecture_cost
from training import reruns
from training.config import RunError
from training.loop import train_and_evaluate

COLUMNS = ("arch", "parameters", "mmac_per_image", "train_images_per_s", "latency_ms_batch_1",
           "latency_ms_batch_64", "train_steps", "train_minutes", "val_score", "test_score", "figures")
BUDGET = "budget.json"  # In each architecture's folder: the --train_minutes its steps came from.
BUDGET_SETTINGS = ("train_steps", "warmup_steps")  # What a --train_minutes budget sets per architecture.


def run_configs(configs, arch, output_dir, steps):
    """The configs of `arch`'s run in <output_dir>/<arch>: `steps` steps, the warm-up cut
    to a tenth of them."""
    data_cfg, model_cfg, train_cfg = configs
    return (data_cfg, dataclasses.replace(model_cfg, arch=arch),
            dataclasses.replace(train_cfg, model_dir=os.path.join(output_dir, arch), train_steps=steps,
                                warmup_steps=min(train_cfg.warmup_steps, steps // 10)))


def recorded_run(configs, arch, output_dir, train_steps, train_minutes):
    """(the steps of the run in <output_dir>/<arch> if it is this command's, the settings
    on which it differs). Under --train_minutes the run is this command's when it was
    started under the same minutes (budget.json) and the same other settings: it keeps the
    steps that budget gave it (its speed measured now would give a few more or less)."""
    model_dir = os.path.join(output_dir, arch)
    found = reruns.recorded(model_dir)
    if found is None:
        return None, []
    if train_steps:
        changed = reruns.differences(found, reruns.fingerprint(*run_configs(configs, arch, output_dir, train_steps)))
        return (None, changed) if changed else (train_steps, [])
    try:
        with open(os.path.join(model_dir, BUDGET)) as f:
            budget = json.load(f)
    except (OSError, ValueError):
        budget = {}
    steps = budget.get("train_steps", found.get("train_steps", 1))
    changed = reruns.differences(found, reruns.fingerprint(*run_configs(configs, arch, output_dir, steps)),
                                 ignore=BUDGET_SETTINGS)
    if budget.get("train_minutes") != train_minutes:
        changed.append(f"--train_minutes: {budget.get('train_minutes', 'not recorded')!r} there, "
                       f"{train_minutes!r} now")
    return (None, changed) if changed else (steps, [])


def refuse_other_runs(configs, archs, output_dir, train_steps, train_minutes):
    """RunError, before anything trains, naming every architecture folder that holds a run
    of other settings (without --retrain)."""
    stale = {arch: changed for arch in archs
             if (changed := recorded_run(configs, arch, output_dir, train_steps, train_minutes)[1])}
    if stale:
        raise RunError("these folders hold runs of other settings, whose figures are not this command's: "
                       + "; ".join(f"{os.path.join(output_dir, arch)} ({', '.join(c)})" for arch, c in stale.items())
                       + ". Pass --retrain to train them again with these settings, or another --output_dir")


def run_one(configs, arch, output_dir, train_steps=0, train_minutes=0.0, timed_steps=10, retrain=False):
    """The row of `arch`: its cost, then `train_steps` of training (or as many as its
    measured speed fits in `train_minutes`) in <output_dir>/<arch>, its best validation
    score and its test fold's. A finished run of the same settings is read back (its cost
    measured again); one of other settings raises RunError, or with `retrain` trains again."""
    data_cfg, model_cfg, train_cfg = configs
    keras.utils.clear_session()
    speed, model = architecture_cost.training_speed(data_cfg, dataclasses.replace(model_cfg, arch=arch), train_cfg,
                                                    timed_steps)
    row = {"arch": arch, "parameters": int(model.count_params()),
           "mmac_per_image": architecture_cost.multiply_adds(model) / 1e6, "train_images_per_s": speed,
           "latency_ms_batch_1": architecture_cost.inference_latency(model, 1, data_cfg.image_size),
           "latency_ms_batch_64": architecture_cost.inference_latency(model, 64, data_cfg.image_size)}
    del model
    model_dir = os.path.join(output_dir, arch)
    steps, changed = recorded_run(configs, arch, output_dir, train_steps, train_minutes)
    if changed:
        if not retrain:
            raise RunError(f"{model_dir} holds a run of other settings ({', '.join(changed)}): its figures are not "
                           "this command's. Pass --retrain to train it again with these settings")
        reruns.discard(model_dir, changed)
    steps = steps or train_steps or max(1, int(train_minutes * 60 * speed / data_cfg.batch_size))
    if os.path.isfile(os.path.join(model_dir, "metrics.json")):
        with open(os.path.join(model_dir, "metrics.json")) as f:
            found = json.load(f)
        logging.info("%s: %.1f images/s; trained before with these settings (%d steps in %s)", arch, speed, steps,
                     model_dir)
    else:
        logging.info("%s: %.1f images/s, training %d steps in %s", arch, speed, steps, model_dir)
        if train_minutes and not train_steps:
            os.makedirs(model_dir, exist_ok=True)
            reruns.write_whole(os.path.join(model_dir, BUDGET), {"train_minutes": train_minutes, "train_steps": steps})
        found = train_and_evaluate(*run_configs(configs, arch, output_dir, steps))
    figures = {head: ("no labelled faces" if not f["num_examples"] else f"MAE {f['mae']:.2f}"
                      if head == "age_years" else f"{100 * f['accuracy']:.1f}%")
               for head, f in found["single_crop"].items()}
    row.update(train_steps=steps, train_minutes=found["train_seconds"] / 60,
               val_score=found["selection"].get("score"), test_score=metrics.recorded_score(found, "single_crop"),
               figures=", ".join(f"{head} {text}" for head, text in figures.items()))
    return row


def cheapest(rows, target):
    """The row with the fewest multiply-adds whose validation score reaches `target`, else None."""
    reaching = [r for r in rows if r["val_score"] is not None and r["val_score"] >= target]
    return min(reaching, key=lambda r: r["mmac_per_image"]) if reaching else None


def _score(value):
    return "n/a" if value is None else f"{100 * value:.1f}"


def markdown(rows, target=None):
    lines = ["| architecture | parameters | MMAC / image | train images/s | latency b=1 (ms) | latency b=64 (ms) "
             "| steps | train min | validation score | test score | test, per head |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['parameters']:,} | {r['mmac_per_image']:,.0f} "
                     f"| {r['train_images_per_s']:.1f} | {r['latency_ms_batch_1']:.1f} "
                     f"| {r['latency_ms_batch_64']:.0f} | {r['train_steps']} "
                     f"| {r['train_minutes']:.1f} | {_score(r['val_score'])} | {_score(r['test_score'])} "
                     f"| {r['figures']} |")
    lines += ["", "Scores: metrics.score times 100, the mean over heads of accuracy (or -MAE/10 for age_years): the "
              "best of the run's validation passes (one per --eval_every: a run of more steps has more of them), "
              "which chose the checkpoint and the architecture, and the test fold's (single crop), evaluated once "
              "and never used to choose."]
    if target is not None:
        best = cheapest(rows, target)
        lines.append("")
        lines.append(f"cheapest reaching a validation score of {100 * target:.1f}: " + (
            f"{best['arch']} ({best['mmac_per_image']:,.0f} MMAC per image; test score {_score(best['test_score'])})"
            if best else "none of them"))
    return "\n".join(lines) + "\n"


def write(output_dir, rows, target=None):
    """comparison.md, comparison.csv and comparison.png; returns the markdown."""
    text = markdown(rows, target)
    with open(os.path.join(output_dir, "comparison.md"), "w") as f:
        f.write(text)
    with open(os.path.join(output_dir, "comparison.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    scatter(rows, os.path.join(output_dir, "comparison.png"), target)
    return text


def scatter(rows, path, target=None):
    """Validation score (what the choice is made on) against multiply-adds per image
    (log scale), one labelled point each, with the test score in its label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    placed = []  # (log10 x, y) of the labels so far: a neighbour's label goes below its point.
    for r in sorted(rows, key=lambda r: r["mmac_per_image"]):
        if r["val_score"] is None:
            continue
        x, y = r["mmac_per_image"], 100 * r["val_score"]
        axes.scatter(x, y, s=40)
        crowded = any(abs(np.log10(x) - px) < 0.25 and abs(y - py) < 8 for px, py in placed)
        axes.annotate(f"{r['arch']}, test {_score(r['test_score'])}\n{r['train_images_per_s']:.0f} img/s", (x, y),
                      textcoords="offset points", xytext=(6, -24) if crowded else (6, 4), fontsize=8)
        placed.append((np.log10(x), y))
    axes.margins(x=0.12, y=0.2)  # Room for the labels of the outermost points.
    if target is not None:
        axes.axhline(100 * target, color="gray", linestyle="--", linewidth=1)
        axes.annotate(f"target {100 * target:.0f}%", (0.01, 100 * target), xycoords=("axes fraction", "data"),
                      textcoords="offset points", xytext=(0, 3), fontsize=8, color="gray")
    axes.set_xscale("log")
    axes.set_xlabel("multiply-adds per image (millions, log scale)")
    axes.set_ylabel("validation score (x100)")
    axes.set_title("validation score against cost, one training budget")
    axes.grid(True, alpha=0.3)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
