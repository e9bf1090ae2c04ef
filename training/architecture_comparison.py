"""Architectures side by side: cost (parameters, multiply-adds, training images/s,
inference latency) measured in one run, and accuracy under one training budget."""

import csv
import dataclasses
import json
import os

import keras
import numpy as np
from absl import logging

from training import architecture_cost
from training.loop import train_and_evaluate

COLUMNS = ("arch", "parameters", "mmac_per_image", "train_images_per_s", "latency_ms_batch_1",
           "latency_ms_batch_64", "train_steps", "train_minutes", "accuracy", "figures")


def accuracy_of(metrics):
    """The run's headline on its test fold: the mean over class heads of single-crop
    accuracy (age exact), and for age_years minus its MAE in tens of years as elsewhere."""
    values = [-f["mae"] / 10 if head == "age_years" else f["accuracy"]
              for head, f in metrics["single_crop"].items()]
    return float(np.mean(values))


def run_one(configs, arch, output_dir, train_steps=0, train_minutes=0.0, timed_steps=10):
    """The row of `arch`: its cost, then `train_steps` of training (or as many as its
    measured speed fits in `train_minutes`) in <output_dir>/<arch> and its test figures.
    A finished run (metrics.json) is read back, its cost measured again."""
    data_cfg, model_cfg, train_cfg = configs
    model_cfg = dataclasses.replace(model_cfg, arch=arch)
    keras.utils.clear_session()
    speed, model = architecture_cost.training_speed(data_cfg, model_cfg, train_cfg, timed_steps)
    row = {"arch": arch, "parameters": int(model.count_params()),
           "mmac_per_image": architecture_cost.multiply_adds(model) / 1e6, "train_images_per_s": speed,
           "latency_ms_batch_1": architecture_cost.inference_latency(model, 1, data_cfg.image_size),
           "latency_ms_batch_64": architecture_cost.inference_latency(model, 64, data_cfg.image_size)}
    del model
    steps = train_steps or max(1, int(train_minutes * 60 * speed / data_cfg.batch_size))
    model_dir = os.path.join(output_dir, arch)
    done = os.path.join(model_dir, "metrics.json")
    if os.path.isfile(done):  # Trained by an earlier run, perhaps to another budget: report its steps.
        with open(done) as f:
            metrics = json.load(f)
        with open(os.path.join(model_dir, "config.json")) as f:
            steps = json.load(f)["train"]["train_steps"]
        logging.info("%s: %.1f images/s; trained before (%d steps in %s)", arch, speed, steps, model_dir)
    else:
        logging.info("%s: %.1f images/s, training %d steps in %s", arch, speed, steps, model_dir)
        metrics = train_and_evaluate(data_cfg, model_cfg, dataclasses.replace(
            train_cfg, model_dir=model_dir, train_steps=steps, warmup_steps=min(train_cfg.warmup_steps, steps // 10)))
    figures = {head: (f"MAE {f['mae']:.2f}" if head == "age_years" else f"{100 * f['accuracy']:.1f}%")
               for head, f in metrics["single_crop"].items()}
    row.update(train_steps=steps, train_minutes=metrics["train_seconds"] / 60, accuracy=accuracy_of(metrics),
               figures=", ".join(f"{head} {text}" for head, text in figures.items()))
    return row


def cheapest(rows, target):
    """The row with the fewest multiply-adds whose accuracy reaches `target`, else None."""
    reaching = [r for r in rows if r["accuracy"] >= target]
    return min(reaching, key=lambda r: r["mmac_per_image"]) if reaching else None


def markdown(rows, target=None):
    lines = ["| architecture | parameters | MMAC / image | train images/s | latency b=1 (ms) | latency b=64 (ms) "
             "| steps | train min | test accuracy | per head |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['parameters']:,} | {r['mmac_per_image']:,.0f} "
                     f"| {r['train_images_per_s']:.1f} | {r['latency_ms_batch_1']:.1f} "
                     f"| {r['latency_ms_batch_64']:.0f} | {r['train_steps']} "
                     f"| {r['train_minutes']:.1f} | {100 * r['accuracy']:.1f}% | {r['figures']} |")
    if target is not None:
        best = cheapest(rows, target)
        lines.append("")
        lines.append(f"cheapest reaching {100 * target:.1f}%: " + (
            f"{best['arch']} ({best['mmac_per_image']:,.0f} MMAC per image)" if best else "none of them"))
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
    """Test accuracy against multiply-adds per image (log scale), one labelled point each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    placed = []  # (log10 x, y) of the labels so far: a neighbour's label goes below its point.
    for r in sorted(rows, key=lambda r: r["mmac_per_image"]):
        x, y = r["mmac_per_image"], 100 * r["accuracy"]
        axes.scatter(x, y, s=40)
        crowded = any(abs(np.log10(x) - px) < 0.25 and abs(y - py) < 8 for px, py in placed)
        axes.annotate(f"{r['arch']}\n{r['train_images_per_s']:.0f} img/s", (x, y), textcoords="offset points",
                      xytext=(6, -24) if crowded else (6, 4), fontsize=8)
        placed.append((np.log10(x), y))
    axes.margins(x=0.12, y=0.2)  # Room for the labels of the outermost points.
    if target is not None:
        axes.axhline(100 * target, color="gray", linestyle="--", linewidth=1)
        axes.annotate(f"target {100 * target:.0f}%", (0.01, 100 * target), xycoords=("axes fraction", "data"),
                      textcoords="offset points", xytext=(0, 3), fontsize=8, color="gray")
    axes.set_xscale("log")
    axes.set_xlabel("multiply-adds per image (millions, log scale)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("accuracy against cost, one training budget")
    axes.grid(True, alpha=0.3)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
