"""The robustness study's outputs: robustness.csv, robustness.md (the table and the limits
summary) and robustness_<family>.png (a curve per head figure)."""

import csv
import os

from experiments import robustness

PERCENT = ("found", "unsure", "age_exact", "age_one_off", "gender_accuracy", "race_accuracy")


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, robustness.columns(rows), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)


def _cell(column, value):
    if value is None:
        return ""
    if column in PERCENT:
        return f"{100 * value:.1f}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown(rows, source):
    names = robustness.columns(rows)
    lines = [f"# Robustness of {source}", "",
             "Shares in %: found (face_share only: a face found and classified), unsure (answers under --min_confidence), "
             "accuracies; MAE in years; shifts: the mean change of the predicted age group (bins) or age (years) "
             "against the same photo undegraded. Severity none is the photos as they are.", "",
             "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(c, r.get(c)) for c in names) + " |" for r in rows]
    lines += ["", "## Limits", "",
              "The smallest face (pixels a side) and the lowest JPEG quality at which each figure stays within "
              "2 points (1 year of MAE) of the photos as they are; \"never\" when the mildest step already "
              "leaves that band.", "", "| figure | smallest face | lowest JPEG quality |", "|---|---|---|"]
    for column, found in robustness.limits(rows).items():
        cells = [("never" if found.get(f) is None else str(found[f])) if f in found else "not run"
                 for f in ("resolution", "jpeg")]
        lines.append(f"| {column} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def plot_family(path, family, rows):
    """A curve (or, for named severities, markers) per figure against the severity."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    family_rows = [r for r in rows if r["family"] == family]
    figures = [c for c in robustness.columns(rows)[3:] if c not in robustness.SHIFTS and c != "unsure"
               and any(r.get(c) is not None for r in family_rows)]
    labels = [str(r["severity"]) for r in family_rows]
    fig, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for column in figures:
        values = [r.get(column) for r in family_rows]
        if column.endswith("mae"):
            right.plot(labels, values, "o-", label=column)
        else:
            left.plot(labels, [None if v is None else 100 * v for v in values], "o-", label=column)
    shifts = [c for c in robustness.SHIFTS if any(r.get(c) is not None for r in family_rows)]
    for column in shifts:
        right.plot(labels, [r.get(column) for r in family_rows], "s--", label=column)
    left.set(title=f"{family}: figures (none: as they are)", xlabel="severity", ylabel="%", ylim=(0, 100))
    right.set(title="age: MAE (years) and mean shift", xlabel="severity")
    right.axhline(0, color="grey", linewidth=0.8)
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.tick_params(axis="x", labelrotation=30)
        if axis.lines:
            axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot.close(fig)


def write(output_dir, rows, source):
    """robustness.csv, robustness.md and a PNG per family in `output_dir`; returns the markdown."""
    os.makedirs(output_dir, exist_ok=True)
    write_csv(os.path.join(output_dir, "robustness.csv"), rows)
    text = markdown(rows, source)
    with open(os.path.join(output_dir, "robustness.md"), "w") as f:
        f.write(text)
    for family in dict.fromkeys(r["family"] for r in rows):
        plot_family(os.path.join(output_dir, f"robustness_{family}.png"), family, rows)
    return text
