"""An exported model with the face finding and framing its training faces had.

    predictor = Predictor("runs/demo/export")
    records = predictor.predict("photo.jpg")     # or a URL, bytes, a PIL image, a numpy
                                                 # array (one image or a batch), a list
    for result in predictor.predict_many(["a.jpg", "b.png"]):   # batched, in parallel
        print(result.input, result.records, result.error)

Faces are found and framed as the export's metadata says its training faces were
(input_pipeline.faces: the detector and the canonical crop build_input.py used), brought
to the stored size and centre-cropped with the functions evaluation uses
(preprocess.serving_crop, serving_ten_crops). A model trained on a dataset's own crops
cannot be reproduced that way: the Predictor then frames faces with MTCNN's canonical
crop and says so loudly.
"""

import collections
import concurrent.futures
import copy
import dataclasses
import typing

import numpy as np
import tensorflow as tf
from absl import logging

from input_pipeline import faces, labels, preprocess
from serving import inputs, metadata, photos, report

NO_FACE = "no face found (try --no_detect for a photo that is already a face)"


class Result(typing.NamedTuple):
    input: str
    records: list  # One per face (report.record), largest first.
    error: str  # "" when a face was classified; else why not (unreadable, no face, too small).
    pixels: np.ndarray | None  # The photo, when asked for (annotating).

    @property
    def unreadable(self):
        """The input could not be read as an image (as opposed to: read, no usable face)."""
        return bool(self.error) and not self.records and self.error != NO_FACE


class _Prepared(typing.NamedTuple):
    name: str
    error: str
    pixels: np.ndarray | None
    found: list  # (box, status, the face's model views or None)


class Predictor:
    """Photos in, one record per face out (predict); canonical faces in, probabilities out (probabilities).

    detector: "auto" (the one the training faces were cropped with; BlazeFace for a model
    trained on a dataset's own crops), "blazeface", "mtcnn", "haar", or None (each image is
    one face).
    """

    def __init__(self, export_dir, detector="auto", oversample=False, batch_size=32, min_face_size=None,
                 max_pixels=None, min_confidence=0.0):
        # {class head: probability} below which its answer is marked "unsure" (report.thresholds).
        self.min_confidence = report.thresholds(min_confidence)
        self.metadata = metadata.read(export_dir)
        self.max_pixels = max_pixels  # Of a photo; None: Pillow's decompression-bomb limit.
        self.model = tf.saved_model.load(export_dir)
        self._serve_crops = self.model.signatures["serve_crops"]
        self._serve_faces = self.model.signatures["serve_probabilities"]  # Resizes and crops inside the graph.
        self.oversample, self.batch_size = oversample, batch_size
        if not self.metadata.temperatures:
            logging.warning("%s has no calibration (metadata.json: no temperatures): its probabilities are the "
                            "model's own, often over-confident%s", export_dir,
                            "; --min_confidence compares with them" if min_confidence else "")
        self._frame(detector, min_face_size)
        # The side the canonical crop is taken at: the shards' image size, as in training.
        self.face_size = self.metadata.face_crop.get("image_size") or self.metadata.stored_size

    def with_detector(self, detector, min_face_size=None):
        """A Predictor that shares this one's loaded model and settings but finds faces
        with `detector` ("auto", "blazeface", "mtcnn", "haar", or None: each image is one face)."""
        other = copy.copy(self)
        other._frame(detector, min_face_size)
        return other

    def _frame(self, detector, min_face_size):
        self.crop_spec, self.warning = framing(self.metadata.face_crop, detector, min_face_size)
        if self.warning:
            logging.warning("%s", self.warning)
        if self.crop_spec:
            faces.make_detector(self.crop_spec.detector)  # Loaded now, not on the first photo.

    @property
    def class_names(self):
        """{head: class names} of the class heads."""
        return self.metadata.class_names

    @property
    def heads(self):
        """report.Heads: the class heads' names and, with an age_years head, the age bins."""
        years_bins = labels.AgeBins.from_dict(self.metadata.age_bins) if self.metadata.age_years else None
        return report.Heads(self.metadata.class_names, years_bins)

    def probabilities(self, images, oversample=None):
        """{head: (N, outputs)} of N faces (uint8 arrays or PIL images, any size each):
        the centre crop or, oversampling, the mean over the 10 crops (age_years: the
        probabilities over 0..100 years)."""
        oversample = self.oversample if oversample is None else oversample
        pixels = [np.asarray(image, dtype=np.uint8) for image in images]
        return self._run([self._ten_crops(face) for face in pixels] if oversample else pixels, oversample)

    def predict(self, x):
        """One record per face (report.record) in an image or a batch (serving/inputs.py
        lists what x may be); photos.PhotoError names an input that cannot be read."""
        records = []
        for result in self.predict_many(inputs.items(x), workers=0):
            if result.unreadable:
                raise photos.PhotoError(f"{result.input}: {result.error}")
            records += result.records
        return records

    def predict_many(self, sources, workers=2, keep_pixels=False, max_bytes=photos.MAX_DOWNLOAD_BYTES,
                     timeout=photos.DOWNLOAD_TIMEOUT_SECONDS):
        """A Result per source (a path, URL or (name, any input) pair; a folder stands for
        its image files), in order. `workers` threads read, decode, detect and crop while
        the model runs on batches of up to batch_size faces from several photos; 0 does it
        all in this thread."""
        sources = (item for source in sources
                   for item in (photos.expand([source]) if isinstance(source, str) else [source]))
        prepare = lambda source: self._prepare(source, keep_pixels, max_bytes, timeout)  # noqa: E731
        pending, count = [], 0
        for item in _ordered_map(prepare, sources, workers, ahead=self.batch_size + 2 * workers):
            pending.append(item)
            count += sum(1 for _, status, _ in item.found if status == "ok")
            if count >= self.batch_size:
                yield from self._finish(pending)
                pending, count = [], 0
        yield from self._finish(pending)

    def faces(self, pixels):
        """[(box, status, face pixels or None)] of an (H, W, 3) uint8 photo, largest first:
        status "ok" with the canonical crop, or "too_small"."""
        if self.crop_spec is None:
            return [((0, 0, pixels.shape[1], pixels.shape[0]), "ok", pixels)]
        found, small = faces.detect(pixels, self.crop_spec)
        return ([(_box(face), "ok", faces.canonical_crop(pixels, face, self.crop_spec, self.face_size))
                 for face in found] + [(_box(face), "too_small", None) for face in small])

    def _prepare(self, source, keep_pixels, max_bytes, timeout):
        name, source = source if isinstance(source, tuple) else (source, source)
        try:
            pixels = inputs.pixels(source, max_bytes, timeout, self.max_pixels)
        except photos.PhotoError as e:
            return _Prepared(name, str(e), None, [])
        found = self.faces(pixels)
        if self.oversample:  # The 10 crops of each face, cut here, in the worker threads.
            found = [(box, status, face if face is None else self._ten_crops(face)) for box, status, face in found]
        return _Prepared(name, "", pixels if keep_pixels else None, found)

    def _ten_crops(self, face):
        return preprocess.serving_ten_crops(face, self.metadata.stored_size, self.metadata.crop_size).numpy()

    def _run(self, faces_, oversample=None):
        """{head: (len(faces_), classes)} of uint8 faces of any size, or with `oversample`
        of each face's 10 crops (serving_ten_crops), averaged. Faces of one shape go to the
        model together, up to batch_size at a time, and are resized and cropped in its
        graph (serve_probabilities): far cheaper than cropping them one by one."""
        oversample = self.oversample if oversample is None else oversample
        sizes = {head: len(self.class_names.get(head, ())) or labels.YEARS for head in self.metadata.heads}
        out = {head: np.zeros((len(faces_), size), np.float32) for head, size in sizes.items()}
        groups = collections.defaultdict(list)
        for i, face in enumerate(faces_):
            groups[face.shape].append(i)
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                if oversample:
                    result = self._serve_crops(crops=tf.constant(np.concatenate([faces_[i] for i in chunk])))
                else:
                    result = self._serve_faces(images=tf.constant(np.stack([faces_[i] for i in chunk])))
                for head in sizes:
                    p = result[f"{head}_probabilities"].numpy()
                    out[head][chunk] = p.reshape(len(chunk), -1, p.shape[-1]).mean(axis=1)
        return out

    def _finish(self, pending):
        probabilities = self._run([face for item in pending for _, status, face in item.found if status == "ok"])
        index = 0
        for item in pending:
            if item.error:
                yield Result(item.name, [], item.error, None)
                continue
            records = []
            for face_index, (box, status, _) in enumerate(item.found):
                face = None
                if status == "ok":
                    face = {head: p[index] for head, p in probabilities.items()}
                    index += 1
                records.append(report.record(item.name, face_index, box, face, self.heads, status,
                                             self.min_confidence))
            yield Result(item.name, records, _no_face_error(records, self.crop_spec), item.pixels)


def framing(face_crop, detector, min_face_size):
    """(the CropSpec to frame new photos with, or None for whole images; a warning or "")
    for an export whose training faces were framed as `face_crop` says."""
    trained = faces.CropSpec.from_dict(face_crop)
    if detector is None:
        warning = ("each image is taken as one face as it is, while this model was trained on canonical "
                   f"crops from {trained.detector}; pass already-cropped faces framed the same way, or drop "
                   "--no_detect") if trained else ""
        return None, warning
    spec = trained or faces.CropSpec()
    if detector != "auto":
        spec = dataclasses.replace(spec, detector=detector)
    if min_face_size:
        spec = dataclasses.replace(spec, min_face_size=min_face_size)
    if trained is None:
        return spec, ("THIS MODEL WAS TRAINED ON THE DATASET'S OWN FACE CROPS, which prediction cannot "
                      f"reproduce: photos are framed with {spec.detector}'s canonical crop instead, so expect "
                      "lower accuracy than on the test fold. Build the shards with build_input.py "
                      "--face_crop=detect and retrain for a model whose framing prediction reproduces.")
    if faces.framing_family(spec.detector) != faces.framing_family(trained.detector):
        return spec, (f"this model was trained on faces found by {trained.detector}; {spec.detector} frames "
                      "them differently, so expect lower accuracy (--detector=auto uses the model's own)")
    return spec, ""


def _no_face_error(records, crop_spec):
    if any(r["status"] == "ok" for r in records):
        return ""
    if records:
        return (f"{len(records)} face(s) found, all under {crop_spec.min_face_size} pixels: too small to "
                "classify (--min_face_size)")
    return NO_FACE


def _box(face):
    return tuple(int(round(v)) for v in face.box)


def _ordered_map(fn, items, workers, ahead):
    """fn(item) for each item, in order, computed `ahead` items ahead in `workers` threads."""
    if workers == 0:
        yield from map(fn, items)
        return
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        queue = collections.deque()
        for item in items:
            queue.append(pool.submit(fn, item))
            if len(queue) >= ahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
