"""Prediction results: one record per face, and the same as a table, CSV or JSON.

A record (what Predictor.predict returns, the JSON output and the web API's answer):

    {"input": "photo.jpg", "face": 0, "box": [x, y, width, height], "status": "ok",
     "age": {"label": "(25, 32)", "probability": 0.61, "probabilities": {"(0, 2)": 0.0, ...}},
     "gender": {"label": "f", "probability": 0.93, "probabilities": {"m": 0.07, "f": 0.93}}}

with one entry per head the model has. status "too_small": a face under the detector's
--min_face_size, reported without a guess (its heads are null). A face followed through a
video (serving/video.py) also has "first_seconds", "last_seconds" and "frames".
"""

import csv
import io
import json

import numpy as np


def record(source, index, box, probabilities, class_names, status="ok"):
    """The record of one face; `probabilities` {head: (classes,)}, or None for a face not classified."""
    out = {"input": source, "face": index, "box": [int(v) for v in box], "status": status}
    for head, names in class_names.items():
        if probabilities is None:
            out[head] = None
            continue
        p = np.asarray(probabilities[head], dtype=np.float64)
        best = int(np.argmax(p))
        out[head] = {"label": names[best], "probability": round(float(p[best]), 4),
                     "probabilities": {name: round(float(v), 4) for name, v in zip(names, p, strict=True)}}
    return out


TRACK_COLUMNS = ("first_seconds", "last_seconds", "frames")


def columns(class_names, tracks=False):
    """The flat columns: input, face, box, status (with `tracks`, a video face's times),
    then per head its label and probability, and for heads of more than two classes the
    next most likely one."""
    names = ["input", "face", "box", "status", *(TRACK_COLUMNS if tracks else ())]
    for head, classes in class_names.items():
        names += [head, f"{head}_probability"]
        if len(classes) > 2:
            names += [f"next_{head}", f"next_{head}_probability"]
    return names


def flatten(rec, class_names):
    """A record as a flat row of columns(class_names); "" for what a face has not."""
    row = {"input": rec["input"], "face": rec["face"], "box": ",".join(map(str, rec["box"])), "status": rec["status"],
           **{key: rec.get(key, "") for key in TRACK_COLUMNS}}
    for head, classes in class_names.items():
        row.update({head: "", f"{head}_probability": ""})
        if len(classes) > 2:
            row.update({f"next_{head}": "", f"next_{head}_probability": ""})
        if rec.get(head):
            ranked = sorted(rec[head]["probabilities"].items(), key=lambda kv: -kv[1])
            row.update({head: ranked[0][0], f"{head}_probability": ranked[0][1]})
            if len(classes) > 2:
                row.update({f"next_{head}": ranked[1][0], f"next_{head}_probability": ranked[1][1]})
    return row


def label(rec):
    """"(25, 32) f", or "too small": the short text drawn beside a face."""
    if rec["status"] != "ok":
        return rec["status"].replace("_", " ")
    return " ".join(str(v["label"]) for k, v in rec.items() if isinstance(v, dict))


def render(records, output_format, class_names):
    """Records as text: "table" (aligned columns), "csv" or "json"."""
    if output_format == "json":
        return json.dumps(records, indent=2) + "\n"
    names = columns(class_names, tracks=any(TRACK_COLUMNS[0] in r for r in records))
    rows = [flatten(r, class_names) for r in records]
    if output_format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, names, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    header = [n.replace("_probability", " p").replace("_seconds", " s") for n in names]
    table = [header] + [[str(row[c]) for c in names] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                     for r in table) + "\n"
