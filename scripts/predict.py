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

import csv
import io
import json
import os
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags
from PIL import ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from input_pipeline import augment, faces, photos  # noqa: E402  (after the path set-up)

flags.DEFINE_string("model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_bool("detect", True, "Find faces with OpenCV; --no_detect takes each image as one face.")
flags.DEFINE_bool("oversample", False, "Average the 10 crops (corners, centre, mirrors) as the paper does.")
flags.DEFINE_enum("format", "table", ["table", "csv", "json"], "Output format.")
flags.DEFINE_string("output", "", "Write the results to this file instead of standard output.")
flags.DEFINE_string("annotate_dir", "", "Save a copy of each photo with boxes and labels here.")
flags.DEFINE_integer("max_download_mb", photos.MAX_DOWNLOAD_BYTES >> 20, "Size limit of a downloaded photo.")
flags.DEFINE_float("download_timeout", photos.DOWNLOAD_TIMEOUT_SECONDS, "Time limit of a download, seconds.")
FLAGS = flags.FLAGS

COLUMNS = ("input", "face", "box", "age", "age_probability", "next_age", "next_age_probability",
           "gender", "gender_probability")


class Classifier:
    """An exported model: face images in, {task: probabilities} out."""

    def __init__(self, model_dir):
        metadata_file = os.path.join(model_dir, "metadata.json")
        if not os.path.isfile(metadata_file):
            raise app.UsageError(f"{model_dir} is not a model exported by model.py (no metadata.json)")
        self.model = tf.saved_model.load(model_dir)
        with open(metadata_file) as f:
            metadata = json.load(f)
        self.class_names = metadata["class_names"]
        self.stored_size, self.crop_size = metadata["stored_size"], metadata["crop_size"]

    def __call__(self, face, oversample):
        """{task: probabilities} of one face (a PIL image of stored_size x stored_size)."""
        pixels = np.asarray(face, dtype=np.uint8)[None]
        if not oversample:
            out = self.model.signatures["serve_images"](images=tf.constant(pixels))
        else:
            crops = tf.cast(augment.ten_crops(tf.constant(pixels[0]), self.crop_size), tf.uint8)
            out = self.model.signatures["serve_crops"](crops=crops)
        return {task: out[f"{task}_probabilities"].numpy().mean(axis=0) for task in self.class_names}


def describe(source, index, box, probabilities, class_names):
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


def annotate(image, rows):
    """A copy of `image` with each face's box and labels drawn on it."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    width = max(2, image.width // 300)
    for row in rows:
        x, y, w, h = map(int, row["box"].split(","))
        draw.rectangle((x, y, x + w, y + h), outline=(255, 40, 40), width=width)
        label = " ".join(str(v) for v in (row["age"], row["gender"]) if v)
        draw.rectangle((x, max(0, y - 14), x + 7 * len(label) + 6, y), fill=(255, 40, 40))
        draw.text((x + 3, max(0, y - 13)), label, fill="white")
    return image


NO_FACE = "no face found (try --no_detect for a photo that is already a face)"


def classify(image, source, classifier, detector, oversample):
    """One row per face found in a PIL RGB image (no row: no face); `detector` None
    takes the whole image as the face."""
    boxes = detector.detect(image) if detector else [(0, 0, image.width, image.height)]
    rows = []
    for index, box in enumerate(boxes):
        if detector:
            face = faces.crop(image, box, classifier.stored_size)
        else:
            face = image.resize((classifier.stored_size, classifier.stored_size))
        rows.append(describe(source, index, box, classifier(face, oversample), classifier.class_names))
    return rows


def predict(sources, classifier, detector, oversample, annotate_dir="", max_bytes=photos.MAX_DOWNLOAD_BYTES,
            timeout=photos.DOWNLOAD_TIMEOUT_SECONDS):
    """(rows, errors): one row per face, one (input, message) per failed input."""
    rows, errors = [], []
    for source in photos.expand(sources):
        try:
            image = photos.load(source, max_bytes, timeout)
        except photos.PhotoError as e:
            errors.append((source, str(e)))
            continue
        found = classify(image, source, classifier, detector, oversample)
        if not found:
            errors.append((source, NO_FACE))
            continue
        rows += found
        if annotate_dir:
            os.makedirs(annotate_dir, exist_ok=True)
            name = os.path.splitext(os.path.basename(source.rstrip("/")) or "photo")[0] + ".annotated.png"
            annotate(image, found).save(os.path.join(annotate_dir, name))
    return rows, errors


def render(rows, output_format):
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


def main(argv):
    sources = argv[1:]
    if not sources:
        raise app.UsageError("give at least one image file, folder or http(s) URL")
    classifier = Classifier(FLAGS.model)
    detector = faces.Detector() if FLAGS.detect else None
    rows, errors = predict(sources, classifier, detector, FLAGS.oversample, FLAGS.annotate_dir,
                           FLAGS.max_download_mb << 20, FLAGS.download_timeout)
    text = render(rows, FLAGS.format)
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
