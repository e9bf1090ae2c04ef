"""The robustness study's outputs: robustness.csv, robustness.md (the table and the limits
summary) and robustness_<family>.png (a curve per head figure)."""

import csv
import os

from absl import logging

from experiments import robustness

PERCENT = ("found", "face_area", "changed", "unsure", "age_exact", "age_one_off", "gender_accuracy", "race_accuracy")


def _percent(column):
    return column in PERCENT or column.endswith(("_unsure", "_changed"))


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, robustness.columns(rows), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)


def _cell(column, value):
    if value is None:
        return ""
    if _percent(column):
        return f"{100 * value:.1f}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def interval(faces):
    """Half the width, in points, of a 95% interval of a share measured on `faces` faces (at
    50%, where it is widest)."""
    return 100 * 1.96 * (0.25 / max(faces, 1)) ** 0.5


def markdown(rows, source, input_size=None):
    names = robustness.columns(rows)
    model_input = f" The model sees each face at {input_size}×{input_size} pixels." if input_size else ""
    scored = sorted({r["scored"] for r in rows if r.get("scored")})
    noise = (f"Sampling noise: a share's 95% interval is up to ±{interval(scored[-1]):.1f} points on the "
             f"{scored[-1]} faces of the largest rows" + (f", ±{interval(scored[0]):.1f} on the {scored[0]} of the "
                                                          "smallest" if scored[0] != scored[-1] else "")
             + ". A head scored on fewer labelled faces (its <head>_n) is noisier. Two rows share their photos, "
             "so compare them by `changed`, the share of faces whose answer moved, rather than by the difference "
             "of two accuracies." if scored else "No face was scored.")
    lines = [f"# Robustness of {source}", "",
             "Shares in %: found (face_share only: a face found inside the pasted photo and classified), face_area "
             "(face_share only: the found face box's share of the picture), changed (faces whose answer differs "
             "from the same photo's undegraded), unsure (faces with a class head's answer under --min_confidence; "
             "per head in <head>_unsure), accuracies; scored: the faces found and classified, <head>_n the labelled "
             f"faces behind a head's figure when fewer (a figure over fewer than {robustness.MIN_SCORED} is left out); MAE in years; shifts: the mean change "
             "of the predicted age group (bins) or age (years) against the same photo undegraded. Severity none is "
             "the photos as they are; resolution is the side, in pixels, of the face photo (the face and the margin "
             f"around it) after shrinking.{model_input}", "", noise, "",
             "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(c, r.get(c)) for c in names) + " |" for r in rows]
    lines += ["", "## Limits", "",
              "The smallest face photo (pixels a side) and the lowest JPEG quality at which each figure stays within "
              "2 points (1 year of MAE) of the photos as they are; \"never\" when the mildest step already "
              "leaves that band.", "", "| figure | smallest face photo | lowest JPEG quality |", "|---|---|---|"]
    for column, found in robustness.limits(rows).items():
        cells = [("never" if found.get(f) is None else str(found[f])) if f in found else "not run"
                 for f in ("resolution", "jpeg")]
        lines.append(f"| {column} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def plot_family(path, family, rows):
    """A panel of the shares (%) against the severity, and beside it, for the curves the
    rows have, one of the age in years (MAE, mean shift) and one of the mean shift in age
    groups: each on its own scale."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    family_rows = [r for r in rows if r["family"] == family]
    present = [c for c in robustness.columns(rows)[3:] if any(r.get(c) is not None for r in family_rows)]
    shares = [c for c in present if _percent(c)]
    years = [c for c in ("age_years_mae", "age_years_shift_years") if c in present]
    groups = [c for c in ("age_shift_bins",) if c in present]
    panels = [p for p in (shares, years, groups) if p]
    if not panels:
        logging.warning("%s: no figure to draw (no face scored), no %s", family, os.path.basename(path))
        return
    labels = [str(r["severity"]) for r in family_rows]
    fig, axes = pyplot.subplots(1, len(panels), figsize=(4 + 3.5 * len(panels), 4.2), squeeze=False,
                                gridspec_kw={"width_ratios": [3] + [2] * (len(panels) - 1)})
    for axis, columns in zip(axes[0], panels):
        for column in columns:
            values = [r.get(column) for r in family_rows]
            if columns is shares:
                style = "o:" if column.endswith(("unsure", "changed")) else "o-"
                axis.plot(labels, [None if v is None else 100 * v for v in values], style, label=column)
            else:
                axis.plot(labels, values, "s--" if "shift" in column else "o-", label=column)
        if columns is shares:
            axis.set(title=f"{family} (none: as they are)", ylabel="%", ylim=(0, 100))
        else:
            axis.set(title="age in years" if columns is years else "age: mean shift in groups",
                     ylabel="years" if columns is years else "age groups")
            axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_xlabel("severity")
        axis.grid(alpha=0.3)
        axis.tick_params(axis="x", labelrotation=30)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot.close(fig)


def write(output_dir, rows, source, input_size=None):
    """robustness.csv, robustness.md and a PNG per family in `output_dir`; returns the markdown."""
    os.makedirs(output_dir, exist_ok=True)
    write_csv(os.path.join(output_dir, "robustness.csv"), rows)
    text = markdown(rows, source, input_size)
    with open(os.path.join(output_dir, "robustness.md"), "w") as f:
        f.write(text)
    for family in dict.fromkeys(r["family"] for r in rows):
        plot_family(os.path.join(output_dir, f"robustness_{family}.png"), family, rows)
    return text
