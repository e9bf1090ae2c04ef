"""Predicts age group and gender for the faces in photos: files, folders or http(s) URLs.

    python scripts/predict.py --model=runs/demo/export photo.jpg album/ https://example.org/p.jpg
    python scripts/predict.py --model=runs/demo/export --no_detect --oversample face.png
    python scripts/predict.py --model=... --format=csv --output=ages.csv --annotate_dir=annotated/ album/

Each face found by OpenCV's Haar cascade (or, with --no_detect, the whole picture) is
cropped with a margin, resized to the model's training size and classified from the
centre crop or, with --oversample, the paper's 10 crops. Prints a table (or CSV or
JSON) with the face box, the age group and its probability, the next most likely
group, and the gender and its probability. Inputs that fail (not an image, truncated,
too many pixels, a URL that is not http(s), an HTTP error, a download over the limits,
no face found) are reported one by one while the rest are processed; the exit status
is then 1.
"""

import sys

from absl import app, flags

from serving import faces, photos, report
from serving.predictor import Predictor, predict

flags.DEFINE_string("model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_bool("no_detect", False, "Take each image as one face instead of finding faces with OpenCV "
                  "(for photos that are already cropped faces).")
flags.DEFINE_bool("oversample", False, "Average the 10 crops (corners, centre, mirrors) as the paper does.")
flags.DEFINE_enum("format", "table", ["table", "csv", "json"], "Output format.")
flags.DEFINE_string("output", "", "Write the results to this file instead of standard output.")
flags.DEFINE_string("annotate_dir", "", "Save a copy of each photo with boxes and labels here.")
flags.DEFINE_integer("max_download_mb", photos.MAX_DOWNLOAD_BYTES >> 20, "Size limit of a downloaded photo.")
flags.DEFINE_float("download_timeout", photos.DOWNLOAD_TIMEOUT_SECONDS, "Time limit of a download, seconds.")
FLAGS = flags.FLAGS


def main(argv):
    sources = argv[1:]
    if not sources:
        raise app.UsageError("give at least one image file, folder or http(s) URL")
    try:
        predictor = Predictor(FLAGS.model)
    except (OSError, ValueError) as e:
        raise app.UsageError(str(e)) from None
    detector = None if FLAGS.no_detect else faces.Detector()
    rows, errors = predict(sources, predictor, detector, FLAGS.oversample, FLAGS.annotate_dir,
                           FLAGS.max_download_mb << 20, FLAGS.download_timeout)
    text = report.render(rows, FLAGS.format)
    if FLAGS.output:
        with open(FLAGS.output, "w", newline="") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    for source, message in errors:
        print(f"predict: {source}: {message}", file=sys.stderr)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
