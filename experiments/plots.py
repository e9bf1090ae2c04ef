"""Pictures of an experiment's results (Pillow): per-fold bars of a cross-validation
beside its summed confusion matrix."""

import numpy as np
from PIL import Image, ImageDraw

from training import plots


def bars_image(rows, folds, task, height=300):
    """Per-fold bars of exact and one-off (over-sampled) accuracy for `task`."""
    series = [r for r in rows
              if r["task"] == task and r["crop"] == "over_sampled" and r["measure"] in ("exact", "one_off")]
    width = max(220, 60 + len(folds) * 90)  # The title fits over one fold's bars too.
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), f"{task}, over-sampled: per fold (%)", fill="black")
    colours = {"exact": (60, 90, 200), "one_off": (150, 180, 250)}
    base, top = height - 30, 40 + 14 * len(series)  # The legend sits under the title.
    for i, fold in enumerate(folds):
        for j, r in enumerate(series):
            value, x = r["per_fold"][str(fold)], 50 + i * 90 + j * 34
            if value is None:  # A fold without faces of this head: no bar, not a bar at 0.
                draw.text((x + 2, base - 14), "n/a", fill="black")
                continue
            y = base - (base - top) * value / 100
            draw.rectangle((x, y, x + 30, base), fill=colours[r["measure"]])
            draw.text((x + 2, y - 14), f"{value:.0f}", fill="black")
        draw.text((50 + i * 90 + 10, base + 8), f"fold {fold}", fill="black")
    for j, r in enumerate(series):
        spread = f" ± {r['std']:.1f}" if r["std"] is not None else ""
        draw.text((8, 24 + 14 * j), f"{r['measure']}: {r['mean']:.1f}{spread}",
                  fill=colours[r["measure"]])
    return image


def cross_validation_figure(per_fold_metrics, rows, folds, task, class_names, path):
    """The confusion matrix summed over folds (over-sampled) beside per-fold bars."""
    matrix = np.sum([m["over_sampled"][task]["confusion_matrix"] for m in per_fold_metrics.values()], axis=0)
    title = f"{task}: confusion summed over folds {','.join(folds)}"
    confusion = Image.fromarray(plots.confusion_image(matrix, class_names, title)[0])
    bars = bars_image(rows, folds, task, height=confusion.height)
    combined = Image.new("RGB", (confusion.width + bars.width, confusion.height), "white")
    combined.paste(confusion, (0, 0))
    combined.paste(bars, (confusion.width, 0))
    combined.save(path)
