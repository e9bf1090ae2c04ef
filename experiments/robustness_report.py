"""The robustness study's outputs: robustness.csv, robustness.md (the table and the limits
summary) and robustness_<family>.png (a curve per head figure)."""

import csv
import os

from experiments import robustness

PERCENT = ("found", "face_area", "unsure", "age_exact", "age_one_off", "gender_accuracy", "race_accuracy")


def _percent(column):
    return column in PERCENT or column.endswith("_unsure")


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


def interval(rows):
    """Half the width, in points, of a 95% interval of a share measured on the fewest photos
    of any row (at 50%, where it is widest): below it, a change is sampling noise."""
    photos = min(r["photos"] for r in rows)
    return 100 * 1.96 * (0.25 / max(photos, 1)) ** 0.5


def markdown(rows, source, input_size=None):
    names = robustness.columns(rows)
    model_input = f" The model sees each face at {input_size}×{input_size} pixels." if input_size else ""
    lines = [f"# Robustness of {source}", "",
             "Shares in %: found (face_share only: a face found inside the pasted photo and classified), face_area "
             "(face_share only: the found face box's share of the picture), unsure (faces with a class head's answer "
             "under --min_confidence; per head in <head>_unsure), accuracies; MAE in years; shifts: the mean change "
             "of the predicted age group (bins) or age (years) against the same photo undegraded. Severity none is "
             f"the photos as they are; resolution is the face's side in pixels.{model_input}", "",
             f"Sampling noise: on {min(r['photos'] for r in rows)} photos a share's 95% interval is up to "
             f"±{interval(rows):.1f} points; the same photos in every row make differences between rows "
             "less noisy than that, but a change of a point or two is not a finding.", "",
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
    """Left: a curve (or, for named severities, markers) per share against the severity;
    right: the age in years (MAE, mean shift) and, on its own axis, the shift in age groups."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    family_rows = [r for r in rows if r["family"] == family]
    present = [c for c in robustness.columns(rows)[3:] if any(r.get(c) is not None for r in family_rows)]
    labels = [str(r["severity"]) for r in family_rows]
    fig, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for column in present:
        values = [r.get(column) for r in family_rows]
        if _percent(column):
            style = ":" if column.endswith("unsure") else "-"
            left.plot(labels, [None if v is None else 100 * v for v in values], "o" + style, label=column)
        elif column in ("age_years_mae", "age_years_shift_years"):
            right.plot(labels, values, "o-" if column.endswith("mae") else "s--", label=column)
    left.set(title=f"{family}: shares (none: as they are)", xlabel="severity", ylabel="%", ylim=(0, 100))
    right.set(title="age: years and age groups", xlabel="severity", ylabel="years")
    right.axhline(0, color="grey", linewidth=0.8)
    handles = []
    if "age_shift_bins" in present:  # Groups on their own axis: a shift of 1 group is not 1 year.
        years = bool(right.get_legend_handles_labels()[0])
        groups = right.twinx() if years else right
        handles = groups.plot(labels, [r.get("age_shift_bins") for r in family_rows], "^:", color="tab:red",
                              label="age_shift_bins" + (" (groups, right axis)" if years else ""))
        groups.set_ylabel("age groups")
        if years:
            _align_zero(right, groups)
        else:
            right.set_title("age: mean shift in age groups")
            handles = []  # Already among right's own.
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.tick_params(axis="x", labelrotation=30)
    if left.lines:
        left.legend(fontsize=7)
    handles = right.get_legend_handles_labels()[0] + handles  # Not the zero line: its label starts with "_".
    if handles:
        right.legend(handles=handles, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot.close(fig)


def _align_zero(axis, twin):
    """Limits for both y axes that hold their curves and put their zeros at one height (the
    mean of where each axis would put it), so the zero line drawn on `axis` is `twin`'s."""
    limits = [(min(a.get_ylim()[0], 0.0), max(a.get_ylim()[1], 0.0)) for a in (axis, twin)]
    spans = [(low, high) for low, high in limits if high > low]
    share = min(max(sum(-low / (high - low) for low, high in spans) / max(len(spans), 1), 0.1), 0.9)  # Below zero.
    for a, (low, high) in zip((axis, twin), limits):
        high = max(high, -low * (1 - share) / share, 1e-6)
        a.set_ylim(-high * share / (1 - share), high)


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
