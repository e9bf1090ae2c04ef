"""How right predict.py was on labelled photos: its CSV output against a CSV of true labels.

The labels CSV is read as build_input.py reads one (input_pipeline/sources/csv_file.py):
a `path` column and any of `age` (years, a range or a bin name), `gender` and `race`,
other header names mapped with `columns`. A photo is matched to its labels by file name;
its first face with status "ok" is the one scored (a labelled photo is one person). A
UTKFace folder's file names can stand for the labels CSV (truth_of_utkface).
"""

import collections
import csv
import json
import os

import numpy as np

from input_pipeline import labels, schema
from input_pipeline.config import NO_TEST_FOLD
from input_pipeline.sources import csv_file, utkface
from serving import metadata


# What the scripts say when check_held_out returns False, of the export or run they were given.
UNCHECKED = ("{} does not say which faces it trained on (exported before its metadata.json recorded them, and no "
             "run with its shards beside it): make sure these photos are not among them")


def check_held_out(export_dir, fold, *labelled, fold_flag="--fold"):
    """ValueError when any of `labelled` (labels CSVs or folders, photo folders, shard sets)
    holds faces the model in `export_dir` trained on, inside or around them, and `fold` (None:
    all of them) is not the fold it held out: its figures there would overstate it; the
    message says to give `fold_flag`=<that fold>. Its faces are its shard set and what
    build_input.py built it from (the manifest's source folder or CSV): as its metadata.json
    records them (metadata.trained_on), wherever the export is; for an export written before
    that record, as its run's config.json (the export's folder's parent) and manifest give
    them. A shard set among `labelled` stands for what it was built from too. Returns False
    when neither says (an older export away from its run, or whose shards are gone): nothing
    was checked. Only paths are compared: a copy of the faces elsewhere is not recognised."""
    held_out, sources = _trained_on(export_dir)
    for path in labelled:
        targets = [os.path.realpath(path)]
        if os.path.isfile(os.path.join(path, schema.MANIFEST)):  # A shard set: also what it was built from.
            targets += _shard_set_sources(path)
        if not any(_within(target, source) or _within(source, target) for source in sources for target in targets):
            continue
        where = os.path.realpath(export_dir)
        if held_out == NO_TEST_FOLD:
            raise ValueError(f"{path} holds the faces {where} trained on, every fold of them (--test_fold=-1): "
                             "figures on them would overstate it. Score photos it never saw, or a run trained with "
                             "--test_fold=k on its fold k")
        if fold != held_out:
            raise ValueError(f"{path} holds the faces {where} trained on, all but fold {held_out}: "
                             + (f"give {fold_flag}" if fold is None else
                                f"fold {fold} is one it trained on; give {fold_flag}") + f"={held_out}")
    return held_out is not None


def _within(path, folder):
    """Whether `path` is `folder` or lies inside it (both absolute and resolved)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _trained_on(export_dir):
    """(the fold an export's run held out, [absolute paths of its faces]); (None, []) when
    neither its metadata nor its run says."""
    try:
        recorded = metadata.read(export_dir).trained_on
    except (OSError, ValueError):
        recorded = {}
    if recorded:
        return recorded["held_out_fold"], recorded["sources"]
    run = os.path.dirname(os.path.realpath(export_dir))
    data = _read_json(os.path.join(run, "config.json")).get("data")  # Exported before that record: its run's.
    if not isinstance(data, dict) or "shards_dir" not in data or "test_fold" not in data:
        return None, []
    shards, held_out = data["shards_dir"], data["test_fold"]
    # A relative shards_dir is relative to where the run started: a folder above the run, or here.
    starts, folder = [], run
    while os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
        starts.append(folder)
    found = [os.path.join(start, shards) for start in starts + [os.getcwd()]
             if os.path.isfile(os.path.join(start, shards, schema.MANIFEST))]
    if not found:  # Its shards are gone: what they were built from is unknown.
        return None, []
    return held_out, _shard_set_sources(found[0])


def _shard_set_sources(shards):
    """metadata.sources_of a shard set, read from its manifest (not load_manifest: it refuses
    older schemas, and this must read them)."""
    return metadata.sources_of(shards, _read_json(os.path.join(shards, schema.MANIFEST)))


def _read_json(path):
    """The JSON object in `path`; {} when it cannot be read."""
    try:
        with open(path) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def read_truth(path, columns, bins, fold=None):
    """{file name: (age (low, high), gender 0/1/-1, race name or "")} of a labels CSV;
    with `fold`, only the rows build_input.py puts in that fold. DatasetError for missing
    or repeated columns, ValueError naming the file and row of a file name given twice."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        names = csv_file.find_columns(header, path, columns)  # As build_input reads it.
        truth = {}
        for fields in reader:
            row = {field: fields[i].strip() for field, i in names.items() if i < len(fields)}
            if not row.get("path"):
                continue
            if fold is not None and csv_file.fold_of_row(row) != fold:
                continue
            name = os.path.basename(row["path"])
            if name in truth:
                raise ValueError(f"{path}:{reader.line_num}: the file name {name} is given twice; photos are "
                                 "matched to labels by file name")
            truth[name] = (labels.age_from_text(row.get("age", ""), "nearest", bins),
                           csv_file.gender_of(row.get("gender", "")), row.get("race", "").lower())
    return truth


def truth_of_utkface(data_dir, fold=None):
    """read_truth's {file name: (age, gender, race)} of a UTKFace folder, its labels read
    from its file names as build_input.py --dataset=utkface reads them (files it would skip
    are left out); with `fold`, only the faces build_input.py puts in that fold."""
    rows = utkface.read(data_dir)  # DatasetError when it holds no UTKFace file name.
    truth = {}
    for face in rows.faces:
        if fold is not None and face.fold != fold:
            continue
        name = os.path.basename(face.path)
        if name in truth:
            raise ValueError(f"{data_dir}: the file name {name} is in two folders; photos are matched to labels "
                             "by file name")
        race = rows.race_classes[face.race].lower() if face.race >= 0 else ""
        truth[name] = (tuple(face.age), face.gender, race)
    return truth


def read_predictions(path):
    """{file name: first face with status "ok", as a row of predict.py --format=csv};
    ValueError naming the row where two photos of different paths share a file name."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "input" not in rows[0]:
        raise ValueError(f"{path} is not predict.py --format=csv output (no input column)")
    faces, paths = {}, {}
    for line, row in enumerate(rows, start=2):
        name = os.path.basename(row["input"])
        if paths.setdefault(name, row["input"]) != row["input"]:
            raise ValueError(f"{path}:{line}: {row['input']} and {paths[name]} have the same file name; photos are "
                             "matched to labels by file name")
        if row["status"] == "ok":
            faces.setdefault(name, row)
    return faces


def score(faces, truth, bins, adult_age=None, age_groups=None):
    """{"photos", "with_face", head: figures} over the labelled photos: exact and one-off
    (an adjacent bin) accuracy of age, accuracy of gender and race, MAE, mean signed error
    ("bias": + guessed too old) and the share within 5 years of age_years, each over the
    photos with a face and that label. With `adult_age`, also "by_age": the same figures of
    the photos whose true age is known to be under it ("children") and at least it
    ("adults"). With `age_groups` (an AgeBins), also "by_group": {group name: the same
    figures of the photos whose true age lies within the group} in the groups' order, and
    "in_no_group": how many photos are in none (no age, an age between groups, or a true
    range that straddles two)."""
    out = _figures(faces, truth, bins)
    if adult_age is not None:
        ages = {name: truth[name][0] for name in truth}
        groups = {"children": {n: t for n, t in truth.items() if 0 <= ages[n][1] < adult_age},
                  "adults": {n: t for n, t in truth.items() if ages[n][0] >= adult_age}}
        out["by_age"] = {"adult_age": adult_age, **{group: _figures(faces, subset, bins)
                                                    for group, subset in groups.items()}}
    if age_groups is not None:
        group_of = {name: age_groups.bin_of(*truth[name][0], "strict") for name in truth}
        out["by_group"] = {group: _figures(faces, {n: t for n, t in truth.items() if group_of[n] == i}, bins)
                           for i, group in enumerate(age_groups.names)}
        out["in_no_group"] = sum(g < 0 for g in group_of.values())
    return out


def _figures(faces, truth, bins):
    found = [name for name in truth if name in faces]
    out = {"photos": len(truth), "with_face": len(found)}
    hits = collections.defaultdict(list)
    gender_hits = collections.defaultdict(list)  # {true gender: right?}: a gap hides in the mean.
    for name in found:
        (low, high), gender, race = truth[name]
        row = faces[name]
        true_bin = bins.bin_of(low, high, "strict")
        if row.get("age") and true_bin >= 0:
            hits["age"].append(abs(bins.names.index(row["age"]) - true_bin))
        if row.get("gender") and gender >= 0:
            true_gender = labels.GENDER_CLASSES[gender]
            hits["gender"].append(row["gender"] == true_gender)
            gender_hits[true_gender].append(row["gender"] == true_gender)
        if row.get("race") and race:
            hits["race"].append(row["race"].lower() == race)
        if row.get("age_years") and low >= 0 and low == high:
            hits["age_years"].append(float(row["age_years"]) - low)  # Signed: + too old.
    for head, values in hits.items():
        v = np.asarray(values, dtype=np.float64)
        if head == "age":
            out[head] = {"exact": float(np.mean(v == 0)), "one_off": float(np.mean(v <= 1)), "n": len(v)}
        elif head == "age_years":
            out[head] = {"mae": float(np.mean(np.abs(v))), "bias": float(np.mean(v)),
                         "within_5": float(np.mean(np.abs(v) <= 5)), "n": len(v)}
        else:
            out[head] = {"accuracy": float(np.mean(v)), "n": len(v)}
    if "gender" in out:
        out["gender"]["by_true"] = {g: {"accuracy": float(np.mean(gender_hits[g])), "n": len(gender_hits[g])}
                                    for g in ("f", "m") if gender_hits[g]}  # The table's order.
    return out


_WHO = {"f": "women", "m": "men"}


def describe(figures, indent=""):
    """Lines for a person."""
    photos, found = figures["photos"], figures["with_face"]
    lines = [f"{indent}{photos} labelled photos, a face found in {found} ({found / max(photos, 1):.1%})"]
    for head in labels.HEADS:
        f = figures.get(head)
        if not f:
            continue
        if head == "age":
            text = f"exact {f['exact']:.1%}, one-off {f['one_off']:.1%}"
        elif head == "age_years":
            text = f"MAE {f['mae']:.1f} years (bias {f['bias']:+.1f}), {f['within_5']:.1%} within 5"
        else:
            text = f"{f['accuracy']:.1%}"
        split = "".join(f", {_WHO[g]} {t['accuracy']:.1%} of {t['n']}" for g, t in f.get("by_true", {}).items())
        lines.append(f"{indent}  {head:<9} {text} ({f['n']} photos{split})")
    for group, label in (("adults", "aged {} and over"), ("children", "under {}")):
        if "by_age" in figures and figures["by_age"][group]["photos"]:
            lines.append(f"{indent}{group}, {label.format(figures['by_age']['adult_age'])}:")
            lines += describe(figures["by_age"][group], indent + "  ")
    if "by_group" in figures:
        lines += group_table(figures["by_group"])
        if figures["in_no_group"]:
            lines.append(f"  in no group (no age, or a range across groups): {figures['in_no_group']} photos")
    return lines


def group_table(by_group):
    """Lines of a table of score()'s "by_group": per true age group its photos, faces found,
    gender accuracy (all, of the women, of the men) and age_years' MAE and bias ("-": no
    such label among its faces)."""
    def cell(figures, head, key, text):
        return text.format(figures[head][key]) if head in figures else "-"

    def of_gender(figures, g):
        t = figures.get("gender", {}).get("by_true", {}).get(g)
        return f"{t['accuracy']:.1%} of {t['n']}" if t else "-"

    lines = ["by true age: photos, found, gender right (all, women, men), age_years MAE and bias (+: guessed "
             "too old)",
             f"  {'group':<8} {'photos':>6} {'found':>6} {'gender':>7} {'women':>15} {'men':>15} {'MAE':>5} "
             f"{'bias':>6}"]
    for group, f in by_group.items():
        lines.append(f"  {group:<8} {f['photos']:>6} {f['with_face']:>6} {cell(f, 'gender', 'accuracy', '{:.1%}'):>7} "
                     f"{of_gender(f, 'f'):>15} {of_gender(f, 'm'):>15} "
                     f"{cell(f, 'age_years', 'mae', '{:.1f}'):>5} {cell(f, 'age_years', 'bias', '{:+.1f}'):>6}")
    return lines
