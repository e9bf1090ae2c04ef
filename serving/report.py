"""Prediction results as rows (one per face) and as a table, CSV or JSON."""

import csv
import io
import json

import numpy as np

COLUMNS = ("input", "face", "box", "age", "age_probability", "next_age", "next_age_probability",
           "gender", "gender_probability")


def describe(source, index, box, probabilities, class_names):
    """The row of one face: its box, the most likely age group and the next, and gender,
    with probabilities rounded to 4 places; "" for a head the model does not have."""
    row = {"input": source, "face": index, "box": ",".join(map(str, box))}
    row.update({column: "" for column in COLUMNS if column not in row})
    if "age" in probabilities:
        order = np.argsort(-probabilities["age"])
        names = class_names["age"]
        row.update(age=names[order[0]], age_probability=round(float(probabilities["age"][order[0]]), 4),
                   next_age=names[order[1]], next_age_probability=round(float(probabilities["age"][order[1]]), 4))
    if "gender" in probabilities:
        best = int(np.argmax(probabilities["gender"]))
        row.update(gender=class_names["gender"][best],
                   gender_probability=round(float(probabilities["gender"][best]), 4))
    return row


def render(rows, output_format):
    """Rows as text: "table" (aligned columns), "csv" or "json"."""
    if output_format == "json":
        return json.dumps(rows, indent=2) + "\n"
    if output_format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    header = ("input", "face", "box", "age", "p", "next", "p", "gender", "p")
    table = [header] + [tuple(str(row[c]) for c in COLUMNS) for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in table) + "\n"
