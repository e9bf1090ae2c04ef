"""Prediction results: one record per face, and the same as a table, CSV or JSON.

A record (what Predictor.predict returns, the JSON output and the web API's answer):

    {"input": "photo.jpg", "face": 0, "box": [x, y, width, height], "status": "ok",
     "age": {"label": "(25, 32)", "probability": 0.61, "probabilities": {"(0, 2)": 0.0, ...}},
     "gender": {"label": "f", "probability": 0.93, "probabilities": {"m": 0.07, "f": 0.93}},
     "age_years": {"years": 27.4, "bin": "(25, 32)"}}

with one entry per head the model has: class heads (age bins, gender, race) as above,
and age_years as its expected age and the age bin that age falls in. status "too_small": a face under the detector's
--min_face_size, reported without a guess (its heads are null). A face followed through a
video (serving/video.py) also has "first_seconds", "last_seconds" and "frames".
"""

import csv
import dataclasses
import io
import json

import numpy as np

from input_pipeline import labels

YEARS_HEAD = "age_years"


@dataclasses.dataclass(frozen=True)
class Heads:
    """What a model predicts: class names of its class heads and, when it has an
    age_years head, the age bins its expected age is reported in."""

    class_names: dict
    years_bins: labels.AgeBins | None = None

    @classmethod
    def of(cls, heads):
        """`heads` itself, or Heads of a plain {head: class names}."""
        return heads if isinstance(heads, Heads) else cls(dict(heads))

    @property
    def names(self):
        return [*self.class_names, *([YEARS_HEAD] if self.years_bins else [])]


def thresholds(value):
    """{class head: minimum probability} of a --min_confidence value: a number for every
    class head ("0.6"; 0: none), per head ("age=0.3,gender=0.8"), or both ("0.5,gender=0.8":
    0.5 for the heads not named); "" is none. A head a model lacks is ignored, so one value
    serves models of different heads. A dict is checked and returned; ValueError names what
    is wrong."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (int, float)):
        items = [("", value)]
    else:
        items = []
        for part in filter(None, (p.strip() for p in str(value).split(","))):
            head, _, number = part.rpartition("=")
            try:
                items.append((head.strip(), float(number)))
            except ValueError:
                raise ValueError(f"min_confidence: {part!r} is not a probability (e.g. 0.6 or gender=0.8)") from None
    class_heads = [h for h in labels.HEADS if h != YEARS_HEAD]
    named = [head or "a number for every head" for head, _ in items]
    twice = sorted({h for h in named if named.count(h) > 1})
    if twice:
        raise ValueError(f"min_confidence: {', '.join(twice)} given twice")
    out = {}
    for head, p in sorted(items, key=lambda item: bool(item[0])):  # The bare number first, then the named heads.
        if head and head not in class_heads:
            raise ValueError(f"min_confidence: {head!r} is not a class head (one of {', '.join(class_heads)})")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"min_confidence: {p} for {head or 'every head'} is not between 0 and 1")
        out.update({h: p for h in ([head] if head else class_heads)})
    return {h: p for h, p in out.items() if p > 0}


def record(source, index, box, probabilities, heads, status="ok", min_confidence=0.0):
    """The record of one face; `probabilities` {head: (classes,)} (for age_years its
    (101,) probabilities or the expected age itself), or None for a face not classified.
    `heads`: Heads, or {head: class names}. A class head's answer is "unsure" when its
    probability is below its `min_confidence` (any value thresholds() takes; the export's
    probabilities are calibrated: metadata.json's temperatures); a head without a threshold
    has "unsure" None: not asked."""
    heads = Heads.of(heads)
    minimum = thresholds(min_confidence)
    out = {"input": source, "face": index, "box": [int(v) for v in box], "status": status}
    for head, names in heads.class_names.items():
        if probabilities is None:
            out[head] = None
            continue
        p = np.asarray(probabilities[head], dtype=np.float64)
        best = int(np.argmax(p))
        shown = round(float(p[best]), 4)  # Unsure is decided on the probability the record shows.
        out[head] = {"label": names[best], "probability": shown,
                     "probabilities": {name: round(float(v), 4) for name, v in zip(names, p, strict=True)},
                     "unsure": bool(shown < minimum[head]) if head in minimum else None}
    if heads.years_bins:
        out[YEARS_HEAD] = None if probabilities is None else years_entry(probabilities[YEARS_HEAD], heads.years_bins)
    return out


def years_entry(value, age_bins):
    """{"years": expected age, "bin": its age bin} of age_years' probabilities (or an age)."""
    p = np.asarray(value, dtype=np.float64)
    years = float(p) if p.ndim == 0 else float(p @ np.arange(len(p)))
    return {"years": round(years, 1), "bin": age_bins.names[age_bins.bin_of_years(years)]}


TRACK_COLUMNS = ("first_seconds", "last_seconds", "frames")


def columns(heads, tracks=False, unsure=False):
    """The flat columns: input, face, box, status (with `tracks`, a video face's times),
    then per class head its label and probability, for heads of more than two classes
    the next most likely one, and with `unsure` (a --min_confidence is set) a column that
    says "unsure" when the answer is; age_years as years and the bin beside them."""
    heads = Heads.of(heads)
    names = ["input", "face", "box", "status", *(TRACK_COLUMNS if tracks else ())]
    for head, classes in heads.class_names.items():
        names += [head, f"{head}_probability"]
        if len(classes) > 2:
            names += [f"next_{head}", f"next_{head}_probability"]
        if unsure:
            names.append(f"{head}_unsure")
    if heads.years_bins:
        names += [YEARS_HEAD, f"{YEARS_HEAD}_bin"]
    return names


def flatten(rec, heads):
    """A record as a flat row of columns(heads); "" for what a face has not."""
    heads = Heads.of(heads)
    row = {"input": rec["input"], "face": rec["face"], "box": ",".join(map(str, rec["box"])), "status": rec["status"],
           **{key: rec.get(key, "") for key in TRACK_COLUMNS}}
    if heads.years_bins:
        entry = rec.get(YEARS_HEAD) or {}
        row.update({YEARS_HEAD: entry.get("years", ""), f"{YEARS_HEAD}_bin": entry.get("bin", "")})
    for head, classes in heads.class_names.items():
        row.update({head: "", f"{head}_probability": "", f"{head}_unsure": ""})
        if len(classes) > 2:
            row.update({f"next_{head}": "", f"next_{head}_probability": ""})
        if rec.get(head):
            ranked = sorted(rec[head]["probabilities"].items(), key=lambda kv: -kv[1])
            row.update({head: ranked[0][0], f"{head}_probability": ranked[0][1],
                        f"{head}_unsure": "unsure" if rec[head].get("unsure") else ""})
            if len(classes) > 2:
                row.update({f"next_{head}": ranked[1][0], f"next_{head}_probability": ranked[1][1]})
    return row


def label(rec):
    """"(25, 32) f", "(25, 32) f 27y", or "too small": the short text drawn beside a face."""
    if rec["status"] != "ok":
        return rec["status"].replace("_", " ")
    return " ".join((f"{v['label']}?" if v.get("unsure") else str(v["label"])) if "label" in v else
                    f"{v['years']:.0f}y" for v in rec.values() if isinstance(v, dict))


def render(records, output_format, heads, unsure=False):
    """Records as text: "table" (aligned columns), "csv" or "json"; with `unsure`, the
    table and CSV have each class head's unsure column."""
    if output_format == "json":
        return json.dumps(records, indent=2) + "\n"
    names = columns(heads, tracks=any(TRACK_COLUMNS[0] in r for r in records), unsure=unsure)
    rows = [flatten(r, heads) for r in records]
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
