"""Predicts every head of a model (age bin, gender, race, age in years) for the faces in photos and videos.

    python scripts/predict.py --model=runs/demo/export photo.jpg album/ https://example.org/p.jpg
    python scripts/predict.py --model=runs/demo/export --no_detect --oversample face.png
    python scripts/predict.py --model=... --format=csv --output=ages.csv --annotate_dir=annotated/ album/
    python scripts/predict.py --model=... --every_seconds=0.5 --annotate_dir=annotated/ clip.mp4

Faces are found and framed the way the model's training faces were (the detector and the
canonical crop recorded in the export; --detector to choose another), or with --no_detect
each image is taken as one face. Folders of thousands of photos go through in batches:
--workers threads read, decode, find and crop faces while the model runs. Prints a table
(or CSV or JSON) with each face's box and each head's most likely class and probability
(and the next most likely, for heads of more than two classes), and for a model with an
age_years head the expected age in years beside its age bin. Faces under
--min_face_size are listed as too small instead of guessed.

Videos (.mp4, .avi, .mov, .mkv, .webm, .m4v) are sampled every --every_seconds; faces are
followed from frame to frame by their box's overlap and each track gets one row, its
probabilities averaged, with its first and last time.

Inputs that fail (not an image, truncated, too many pixels, a URL that is not http(s), an
HTTP error, a download over the limits, no face found) are reported one by one while the
rest are processed; the exit status is then 1.
"""

import os
import sys

from absl import app, flags

from input_pipeline import faces
from serving import annotate, photos, report, video
from serving.predictor import Predictor

flags.DEFINE_string("model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_enum("detector", "auto", ["auto", *faces.DETECTORS],
                  "Face detector. auto: the one the model's training faces were cropped with (BlazeFace for a "
                  "model trained on a dataset's own crops).")
flags.DEFINE_bool("no_detect", False, "Take each image as one face instead of finding faces "
                  "(for photos that are already cropped faces).")
flags.DEFINE_integer("min_face_size", 0, "Faces whose box is smaller, in pixels, are reported as too small. "
                     "0: the size the model's training faces were built with (40 by default).", lower_bound=0)
flags.DEFINE_bool("oversample", False, "Average the 10 crops (corners, centre, mirrors) as the paper does.")
flags.DEFINE_string("min_confidence", "", "Mark a head's answer \"unsure\" (a field of each record, a column of "
                    "the table and CSV, a \"?\" on annotated photos) when its probability is below this: one "
                    "number for every head (0.6), or per head (age=0.3,gender=0.8; a bare number then covers the "
                    "others). The export's probabilities are calibrated on its validation faces (single crop): "
                    "answers given with about 0.8 were right about 8 times in 10 there. Empty or 0: never.")
flags.DEFINE_integer("batch_size", 32, "Faces per model call.", lower_bound=1)
flags.DEFINE_integer("workers", 2, "Threads that read, decode, detect and crop while the model runs; "
                     "0: all in one thread, one photo at a time.", lower_bound=0)
flags.DEFINE_float("every_seconds", 1.0, "Videos: seconds between the frames looked at.", lower_bound=0.01)
flags.DEFINE_enum("format", "table", ["table", "csv", "json"], "Output format.")
flags.DEFINE_string("output", "", "Write the results to this file instead of standard output.")
flags.DEFINE_string("annotate_dir", "", "Save a copy of each photo (an .mp4 of each video's sampled frames) "
                    "with boxes and labels here.")
flags.DEFINE_integer("max_download_mb", photos.MAX_DOWNLOAD_BYTES >> 20, "Size limit of a downloaded photo.")
flags.DEFINE_float("download_timeout", photos.DOWNLOAD_TIMEOUT_SECONDS, "Time limit of a download, seconds.")
FLAGS = flags.FLAGS


def main(argv):
    sources = argv[1:]
    if not sources:
        raise app.UsageError("give at least one image file, folder, video or http(s) URL")
    try:
        predictor = Predictor(FLAGS.model, None if FLAGS.no_detect else FLAGS.detector, FLAGS.oversample,
                              FLAGS.batch_size, FLAGS.min_face_size, min_confidence=FLAGS.min_confidence)
    except (OSError, ValueError) as e:
        raise app.UsageError(str(e)) from None
    paths = list(photos.expand(sources))
    videos = [p for p in paths if video.is_video(p)]
    records, errors = [], []
    results = predictor.predict_many([p for p in paths if not video.is_video(p)], FLAGS.workers,
                                     keep_pixels=bool(FLAGS.annotate_dir), max_bytes=FLAGS.max_download_mb << 20,
                                     timeout=FLAGS.download_timeout)
    for result in results:
        records += result.records
        if result.error:
            errors.append((result.input, result.error))
        if FLAGS.annotate_dir and result.records:
            save_annotated(result)
    for path in videos:
        try:
            records += video.predict(path, predictor, FLAGS.every_seconds, FLAGS.annotate_dir)
        except video.VideoError as e:
            errors.append((path, str(e)))
    text = report.render(records, FLAGS.format, predictor.heads, unsure=bool(predictor.min_confidence))
    if FLAGS.output:
        with open(FLAGS.output, "w", newline="") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    for source, message in errors:
        print(f"predict: {source}: {message}", file=sys.stderr)
    if errors:
        sys.exit(1)


def save_annotated(result):
    os.makedirs(FLAGS.annotate_dir, exist_ok=True)
    name = os.path.splitext(os.path.basename(result.input.rstrip("/")) or "photo")[0] + ".annotated.png"
    annotate.annotate(result.pixels, result.records).save(os.path.join(FLAGS.annotate_dir, name))


if __name__ == "__main__":
    app.run(main)
