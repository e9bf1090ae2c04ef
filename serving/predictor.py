"""An exported model as a Python object: faces in, probabilities out; photos in, rows out.

    predictor = Predictor("runs/demo/export")
    rows, errors = predict(["photo.jpg", "album/"], predictor, faces.Detector())

Faces of any size are brought to the export's stored size and cropped like the test
fold, with the functions evaluation and the export's signatures use
(preprocess.serving_crop, serving_ten_crops), so a stored face gets the probabilities
that evaluation gave it.
"""

import os

import numpy as np
import tensorflow as tf

from input_pipeline import preprocess
from serving import annotate, faces, metadata, photos, report

NO_FACE = "no face found (try --no_detect for a photo that is already a face)"


class Predictor:
    """An exported model (model.py's export/): faces in, {head: probabilities} out."""

    def __init__(self, export_dir):
        self.metadata = metadata.read(export_dir)
        self.model = tf.saved_model.load(export_dir)

    @property
    def class_names(self):
        return self.metadata.class_names

    def __call__(self, images, oversample=False):
        """{head: (N, classes) probabilities} of N faces (uint8 arrays or PIL images, any
        size each): the centre crop or, with `oversample`, the mean over the 10 crops."""
        size, crop = self.metadata.stored_size, self.metadata.crop_size
        pixels = [np.asarray(image, dtype=np.uint8) for image in images]
        if oversample:
            crops = tf.concat([preprocess.serving_ten_crops(face, size, crop) for face in pixels], axis=0)
        else:
            crops = tf.stack([preprocess.serving_crop(face, size, crop) for face in pixels])
        out = self.model.signatures["serve_crops"](crops=crops)
        views = 10 if oversample else 1
        return {task: out[f"{task}_probabilities"].numpy().reshape(len(pixels), views, -1).mean(axis=1)
                for task in self.class_names}


def classify(image, source, predictor, detector, oversample):
    """One row per face found in a PIL RGB image (no row: no face); `detector` None
    takes the whole image as the face."""
    boxes = detector.detect(image) if detector else [(0, 0, image.width, image.height)]
    if not boxes:
        return []
    crops = [faces.crop(image, box) for box in boxes] if detector else [image]
    probabilities = predictor(crops, oversample)
    return [report.describe(source, index, box, {task: p[index] for task, p in probabilities.items()},
                            predictor.class_names)
            for index, box in enumerate(boxes)]


def predict(sources, predictor, detector, oversample, annotate_dir="", max_bytes=photos.MAX_DOWNLOAD_BYTES,
            timeout=photos.DOWNLOAD_TIMEOUT_SECONDS):
    """(rows, errors): one row per face, one (input, message) per failed input."""
    rows, errors = [], []
    for source in photos.expand(sources):
        try:
            image = photos.load(source, max_bytes, timeout)
        except photos.PhotoError as e:
            errors.append((source, str(e)))
            continue
        found = classify(image, source, predictor, detector, oversample)
        if not found:
            errors.append((source, NO_FACE))
            continue
        rows += found
        if annotate_dir:
            os.makedirs(annotate_dir, exist_ok=True)
            name = os.path.splitext(os.path.basename(source.rstrip("/")) or "photo")[0] + ".annotated.png"
            annotate.annotate(image, found).save(os.path.join(annotate_dir, name))
    return rows, errors
