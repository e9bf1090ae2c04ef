"""Scores predict.py's answers on labelled photos: is the model right on photos like mine?

    python scripts/predict.py --model=runs/utk_heads/export --format=csv --output=predictions.csv photos/
    python scripts/score_predictions.py --model=runs/utk_heads/export --predictions=predictions.csv \\
        --labels=photos/labels.csv

--labels is a CSV as build_input.py --dataset=csv reads one (a path column and any of
age, gender and race; other names mapped with --csv_columns), or a UTKFace folder whose
file names hold the labels; photos are matched to it by file name, and a photo's first
face found is the one scored. --fold=k keeps only the labelled photos build_input.py put
in fold k (the held-out test fold of a model trained with --test_fold=k), so the figures
can be set beside model.py's on the same faces. Prints the share of photos with a face,
each head's accuracy (age: exact and one-off in the model's bins; gender also of the
women and of the men apart) and the exact-age MAE
and bias (mean signed error), for all the photos and for adults and children apart
(--adult_age), and with --age_groups a table per group of true ages; --output writes
them as JSON. Another model's answers in the same CSV columns (scripts/peers/) are scored
the same way, and --found_by=<their CSVs> keeps the photos where every model found a face.
A model's own test fold through predict.py, as a user's photos go (the faces model.py
tested, here by age group, and those build_input.py found no face in; --fold is refused
when the export's run trained on that fold (its metadata.json says which faces it trained
on), as the real-faces preset does on all of them, so this is the preset with fold 0 held out):

    python model.py --flagfile=configs/real_faces.flags --test_fold=0 --model_dir=runs/real_faces_fold0
    python scripts/predict.py --model=runs/real_faces_fold0/export --format=csv --output=utk.csv \\
        ../shared/utkface_dev
    python scripts/score_predictions.py --model=runs/real_faces_fold0/export --predictions=utk.csv \\
        --labels=../shared/utkface_dev --fold=0 --age_groups=0-2,3-9,10-17,18-29,30-44,45-59,60-74,75+
"""

import json
import os
import sys

from absl import app, flags

from input_pipeline import labels
from input_pipeline.sources import csv_file
from input_pipeline.sources.rows import DatasetError
from serving import metadata, score

flags.DEFINE_string("model", "runs/demo/export", "The export whose predictions these are (for its age bins).")
flags.DEFINE_string("predictions", "", "predict.py --format=csv output.")
flags.DEFINE_string("labels", "", "CSV of the photos' true labels (path, age, gender, race), or a UTKFace folder, "
                    "whose file names are the labels (as build_input.py --dataset=utkface reads them).")
flags.DEFINE_string("csv_columns", "", "Map this project's column names to the labels CSV's, e.g. path=ID,age=Class.")
flags.DEFINE_integer("fold", -1, "Score only the labelled photos of this fold as build_input.py assigns them "
                     "(-1: every labelled photo).", lower_bound=-1, upper_bound=4)
flags.DEFINE_integer("adult_age", 18, "Also give the figures of the photos whose true age is under this "
                     "(children) and at least this (adults); 0: not.", lower_bound=0)
flags.DEFINE_string("age_groups", "", "Also give the figures of each group of true ages in this list from young "
                    "to old, as a table, gender right of all, of the women and of the men (e.g. "
                    "0-2,3-9,10-17,18-29,30-44,45-59,60-74,75+, the README's); empty: not.")
flags.DEFINE_list("found_by", [], "Score only the labelled photos in which each of these other predict.py CSVs "
                  "(another model's answers, e.g. scripts/peers/) found a face too: models compared on the same "
                  "photos.")
flags.DEFINE_string("output", "", "Also write the figures to this JSON file.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    for path in (FLAGS.predictions, *FLAGS.found_by):
        if not os.path.isfile(path):
            raise app.UsageError(f"--predictions={path!r} is not a file" if path == FLAGS.predictions else
                                 f"--found_by: {path!r} is not a file")
    if not os.path.isfile(FLAGS.labels) and not os.path.isdir(FLAGS.labels):
        raise app.UsageError(f"--labels={FLAGS.labels!r} is neither a file nor a folder")
    if os.path.isdir(FLAGS.labels) and FLAGS.csv_columns:
        raise app.UsageError("--csv_columns maps a labels CSV's columns; --labels is a UTKFace folder")
    try:
        bins = labels.AgeBins.from_dict(metadata.read(FLAGS.model).age_bins)
        fold = None if FLAGS.fold < 0 else FLAGS.fold
        truth = (score.truth_of_utkface(FLAGS.labels, fold) if os.path.isdir(FLAGS.labels) else
                 score.read_truth(FLAGS.labels, csv_file.parse_columns(FLAGS.csv_columns), bins, fold))
        if not truth:
            raise ValueError(f"{FLAGS.labels} labels no photo")
        labelled = len(truth)
        for path in FLAGS.found_by:
            found = score.read_predictions(path)
            truth = {name: t for name, t in truth.items() if name in found}
            if not truth:
                raise ValueError(f"--found_by: {path} found a face in none of the labelled photos left")
        groups = labels.parse_bins(FLAGS.age_groups, "--age_groups") if FLAGS.age_groups else None
        predictions = score.read_predictions(FLAGS.predictions)
        # The labels and the scored photos (relative paths as predict.py was given them, from here); each photo
        # itself, not its folder, which may hold the shards (a photo in the repository's root) without being them.
        scored = sorted(os.path.abspath(row["input"]) for name, row in predictions.items() if name in truth)
        if not score.check_held_out(FLAGS.model, fold, FLAGS.labels, *scored):
            print("note: " + score.UNCHECKED.format(FLAGS.model), file=sys.stderr)
        if not predictions.keys() & truth.keys():
            raise ValueError(f"{FLAGS.predictions} has a face in none of the {len(truth)} labelled photos (photos "
                             f"are matched to {FLAGS.labels} by file name)")
        figures = score.score(predictions, truth, bins, FLAGS.adult_age or None, groups)
    except (OSError, ValueError, DatasetError) as e:
        print(f"score_predictions: {e}", file=sys.stderr)
        return 1
    if FLAGS.found_by:
        print(f"the {len(truth)} of {labelled} labelled photos in which {', '.join(FLAGS.found_by)} found a face too:")
    print("\n".join(score.describe(figures)))
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump({**figures, "labelled": labelled, "found_by": FLAGS.found_by}, f, indent=2)
    return 0


if __name__ == "__main__":
    app.run(main)
