"""Pictures of a run's results (Pillow): the confusion matrix and the reliability diagram."""

import numpy as np
from PIL import Image, ImageDraw


def _short(name):
    return name.strip("()").replace(", ", "-")  # "(25, 32)" -> "25-32"


def confusion_image(matrix, class_names, title):
    """The confusion matrix as a (1, H, W, 3) uint8 image (rows: truth, columns: prediction),
    each row shaded by the share of that true class."""
    matrix = np.asarray(matrix, dtype=np.float64)
    n, cell, margin = len(class_names), 44, 70
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = Image.new("RGB", (margin + n * cell + 10, margin + n * cell + 10), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), title, fill="black")
    draw.text((margin, 28), "predicted ->", fill="black")
    draw.text((8, 28), "true", fill="black")
    for i, name in enumerate(class_names):
        draw.text((8, margin + i * cell + cell // 3), _short(name), fill="black")
        draw.text((margin + i * cell + 4, margin - 16), _short(name), fill="black")
        for j in range(n):
            shade = int(255 * (1 - rows[i, j]))
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell - 1, margin + (i + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255))
            draw.text((box[0] + 4, box[1] + cell // 3), str(int(matrix[i, j])),
                      fill="white" if rows[i, j] > 0.5 else "black")
    return np.asarray(image)[None]


def reliability_image(bins, ece, title, size=300, calibrated=None):
    """A reliability diagram as a (1, H, W, 3) uint8 image: per confidence bin, the
    accuracy of the faces whose top class had that confidence (bars; their share of
    faces as the shade) with the bin's mean confidence in red, against the grey diagonal
    of perfect calibration. With `calibrated` (bins, ECE, temperature) of the same faces
    after temperature scaling, that diagram beside it."""
    if calibrated is not None:
        bins_after, ece_after, temperature = calibrated
        before = reliability_image(bins, ece, f"{title}: raw", size)
        after = reliability_image(bins_after, ece_after, f"{title}: calibrated, T={temperature:.2f}", size)
        return np.concatenate([before, after], axis=2)
    margin, top, plot = 40, 58, size - 70
    image = Image.new("RGB", (margin + plot + 20, top + plot + 40), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), title, fill="black")
    draw.text((8, 20), f"ECE {100 * ece:.1f}%. Blue bars: accuracy; red: mean confidence", fill="black")
    draw.text((8, top - 16), "accuracy", fill="black")
    x0, y0 = margin, top + plot  # The plot's bottom-left corner.

    def point(confidence, accuracy):
        return x0 + confidence * plot, y0 - accuracy * plot

    total = max(sum(b["count"] for b in bins), 1)
    for b in bins:
        if not b["count"]:
            continue
        shade = int(200 - 140 * min(1.0, 4 * b["count"] / total))  # Darker: more faces.
        left, bar_top = point(b["low"], b["accuracy"])
        right, _ = point(b["high"], 0)
        draw.rectangle((left + 1, bar_top, right - 1, y0), fill=(shade, shade, 255), outline=(40, 40, 160))
        mean = point(0, b["confidence"])[1]
        draw.line((left + 1, mean, right - 1, mean), fill=(200, 40, 40), width=2)
    draw.line((*point(0, 0), *point(1, 1)), fill=(120, 120, 120), width=1)
    draw.rectangle((x0, y0 - plot, x0 + plot, y0), outline="black")
    for v in (0.0, 0.5, 1.0):
        draw.text((x0 + v * plot - 8, y0 + 4), f"{v:.1f}", fill="black")
        draw.text((x0 - 26, y0 - v * plot - 6), f"{v:.1f}", fill="black")
    draw.text((x0 + plot / 2 - 30, y0 + 20), "confidence", fill="black")
    return np.asarray(image)[None]
