"""How far to trust a prediction: an exported model's figures on labelled photos degraded
in controlled ways (face resolution, face share of the picture, JPEG quality, blur, noise,
exposure, contrast, rotation, a mirror, occlusion, photo filters), at several severities.

    .venv/bin/python scripts/robustness.py --model=runs/demo/export \\
        --shards_dir=data/tfrecords/adience_sample --test_fold=0 --output_dir=runs/robustness_demo
    .venv/bin/python scripts/robustness.py --model=runs/utk_dev/export --photos=my_photos/ \\
        --labels=my_photos/labels.csv --output_dir=runs/robustness_mine

The labelled set is a shard set's test fold (--shards_dir, --test_fold) or a folder of face
photos with a labels CSV in score_predictions.py's format (--photos, --labels,
--csv_columns). Each photo is taken as one face; the face_share family places it in a larger
scene and finds it again with --detector (on the first --face_share_limit photos: detection
in large scenes is the slow part). Writes robustness.csv (a row per family and
severity: found, scored, changed, unsure, each head's figures, the mean shift of the
predicted age), robustness.md (the table, its sampling noise and, per figure, the smallest
face photo and lowest JPEG quality within 2 points of the clean photos) and robustness_<family>.png into --output_dir, and prints the
markdown. Seeded: the same command gives the same table.
"""

import os
import sys

from absl import app, flags, logging

from experiments import degradations, robustness, robustness_report
from input_pipeline import faces, labels
from input_pipeline.sources.rows import DatasetError
from serving import score
from serving.predictor import Predictor

flags.DEFINE_string("model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_string("photos", "", "A folder of face photos (with --labels).")
flags.DEFINE_string("labels", "", "CSV of the photos' true labels (path, age, gender, race), as score_predictions.py.")
flags.DEFINE_string("csv_columns", "", "Map this project's column names to the labels CSV's, e.g. path=ID,age=Class.")
flags.DEFINE_string("shards_dir", "", "Instead of --photos: a shard set, whose --test_fold faces are used.")
flags.DEFINE_integer("test_fold", 0, "With --shards_dir: the fold whose faces are used.", lower_bound=0, upper_bound=4)
flags.DEFINE_integer("limit", 0, "Use only the first N photos (by name; 0: all).", lower_bound=0)
flags.DEFINE_list("families", list(degradations.FAMILIES), "Degradation families to run.")
flags.DEFINE_enum("detector", "auto", ["auto", *faces.DETECTORS],
                  "Face detector of the face_share family (auto: the one the model's faces were cropped with).")
flags.DEFINE_integer("face_share_limit", 200, "The face_share family runs on the first N photos only (0: all): "
                     "finding a face in a large scene costs far more than a model call.", lower_bound=0)
flags.DEFINE_string("min_confidence", "0.5,age=0.3,gender=0.8",
                    "Answers under this calibrated probability count as unsure: per head, as predict.py's flag "
                    "(a two-class head is never under 0.5).")
flags.DEFINE_bool("oversample", False, "Average the 10 crops (corners, centre, and their mirrors) as predict.py "
                  "--oversample does: mirror-symmetric by construction, 10 times the model's work.")
flags.DEFINE_integer("batch_size", 32, "Faces per model call.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seeds the random degradations (noise).")
flags.DEFINE_string("output_dir", "runs/robustness", "Where robustness.csv, .md and the PNGs go.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = set(FLAGS.families) - set(degradations.FAMILIES)
    if unknown:
        raise app.UsageError(f"--families: unknown {sorted(unknown)}; choose from {', '.join(degradations.FAMILIES)}")
    if bool(FLAGS.shards_dir) == bool(FLAGS.photos):
        raise app.UsageError("give either --shards_dir (a test fold) or --photos with --labels")
    if FLAGS.photos and not os.path.isfile(FLAGS.labels):
        raise app.UsageError(f"--labels={FLAGS.labels!r} is not a file")
    try:
        predictor = Predictor(FLAGS.model, None, FLAGS.oversample, FLAGS.batch_size,
                              min_confidence=FLAGS.min_confidence)
        detecting = predictor.with_detector(FLAGS.detector) if "face_share" in FLAGS.families else None
        bins = labels.AgeBins.from_dict(predictor.metadata.age_bins)
        if FLAGS.shards_dir:
            known = score.check_held_out(FLAGS.model, FLAGS.test_fold, FLAGS.shards_dir, fold_flag="--test_fold")
            photos = robustness.photos_from_shards(FLAGS.shards_dir, FLAGS.test_fold, FLAGS.limit)
            source = f"{FLAGS.model} on test fold {FLAGS.test_fold} of {FLAGS.shards_dir}"
        else:
            known = score.check_held_out(FLAGS.model, None, FLAGS.photos, FLAGS.labels,
                                         fold_flag="--shards_dir=<its shards> --test_fold")
            photos = robustness.photos_from_folder(FLAGS.photos, FLAGS.labels, FLAGS.csv_columns, bins, FLAGS.limit)
            source = f"{FLAGS.model} on {FLAGS.photos}"
        if not known:
            logging.warning("%s", score.UNCHECKED.format(FLAGS.model))
    except (OSError, ValueError, DatasetError) as e:
        raise app.UsageError(str(e)) from None
    logging.info("%d labelled photos, %d families", len(photos), len(FLAGS.families))
    rows = robustness.run(predictor, detecting, photos, FLAGS.families, FLAGS.seed, FLAGS.face_share_limit)
    crops = ", over-sampled" if FLAGS.oversample else ""
    sys.stdout.write(robustness_report.write(FLAGS.output_dir, rows, f"{source} ({len(photos)} photos{crops})",
                                             predictor.metadata.crop_size))


if __name__ == "__main__":
    app.run(main)
