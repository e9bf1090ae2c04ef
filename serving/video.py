"""Faces in a video: frames sampled every few seconds, each face followed from frame to
frame by its box's overlap, one record per face track with its probabilities averaged.

    records = video.predict("clip.mp4", predictor, every_seconds=1.0, annotate_dir="out/")

Frames are read with OpenCV (whatever its FFmpeg reads); sampled frames go through the
Predictor's batched path like photos. A face joins the track whose last box overlaps
its own most (intersection over union at least MIN_OVERLAP) and that has not taken a face
in that frame yet, else starts a new track; a track not seen for MAX_GAP samples ends.
"""

import os

import cv2
import numpy as np

from serving import annotate, photos, report

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MIN_OVERLAP = 0.3
MAX_GAP = 2


class VideoError(Exception):
    """A video that cannot be read; the message says why."""


def is_video(path):
    return not photos.is_url(path) and path.lower().endswith(VIDEO_EXTENSIONS)


def frames(path, every_seconds):
    """(seconds, (H, W, 3) uint8 RGB) of the frames every `every_seconds`, from the first."""
    if not os.path.isfile(path):
        raise VideoError("no such file")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise VideoError("not a video OpenCV can read")
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and np.isfinite(fps) and fps > 0 else 25.0
        step = max(1, round(every_seconds * fps))
        index = 0
        while capture.grab():  # grab() skips decoding the frames that are not sampled.
            if index % step == 0:
                ok, frame = capture.retrieve()
                if ok:
                    yield index / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


def overlap(a, b):
    """Intersection over union of two (x, y, w, h) boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0, width) * max(0, height)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class Track:
    def __init__(self, number, seconds, sample, rec):
        self.number, self.first, self.last, self.last_sample = number, seconds, seconds, sample
        self.box, self.frames = rec["box"], 0
        self.sums = {}
        self.add(seconds, sample, rec)

    def add(self, seconds, sample, rec):
        self.last, self.last_sample, self.box = seconds, sample, rec["box"]
        self.frames += 1
        for head, value in rec.items():
            if isinstance(value, dict):  # A head: its probabilities in class order, or age_years' years.
                found = np.array(list(value["probabilities"].values())) if "probabilities" in value else value["years"]
                self.sums[head] = self.sums.get(head, 0) + found

    def record(self, path, heads, min_confidence=0.0):
        mean = {head: total / self.frames for head, total in self.sums.items()}
        rec = report.record(path, self.number, self.box, mean, heads, min_confidence=min_confidence)
        rec.update(first_seconds=round(self.first, 2), last_seconds=round(self.last, 2), frames=self.frames)
        return rec


class Tracker:
    """Follows faces from sample to sample; tracks are numbered in order of appearance."""

    def __init__(self):
        self.tracks, self._active, self._sample = [], [], 0

    def update(self, seconds, records):
        """Adds one sampled frame's face records; returns the track number of each ("ok"
        faces) or None (too small)."""
        self._active = [t for t in self._active if self._sample - t.last_sample <= MAX_GAP]
        free = list(self._active)
        numbers = []
        for rec in records:
            if rec["status"] != "ok":
                numbers.append(None)
                continue
            best = max(free, key=lambda t: overlap(t.box, rec["box"]), default=None)
            if best is not None and overlap(best.box, rec["box"]) >= MIN_OVERLAP:
                best.add(seconds, self._sample, rec)
                free.remove(best)
            else:
                best = Track(len(self.tracks), seconds, self._sample, rec)
                self.tracks.append(best)
                self._active.append(best)
            numbers.append(best.number)
        self._sample += 1
        return numbers


def predict(path, predictor, every_seconds, annotate_dir="", workers=2):
    """One record per face track in the video at `path` (report.record plus first_seconds,
    last_seconds and frames); VideoError if it cannot be read. With `annotate_dir`, writes
    the sampled frames, faces boxed and labelled with their track number, as an .mp4."""
    sampled = ((f"{seconds:.3f}", pixels) for seconds, pixels in frames(path, every_seconds))
    tracker, writer, count = Tracker(), None, 0
    try:
        for result in predictor.predict_many(sampled, workers, keep_pixels=bool(annotate_dir)):
            numbers = tracker.update(float(result.input), result.records)
            count += 1
            if annotate_dir:
                writer = writer or _writer(path, annotate_dir, result.pixels.shape, every_seconds)
                shown = [{**rec, "face": n} for rec, n in zip(result.records, numbers, strict=True)]
                picture = np.asarray(annotate.annotate(result.pixels, shown, number_from=0))
                writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if not count:
        raise VideoError("no frame could be read")
    return [track.record(path, predictor.heads, predictor.min_confidence) for track in tracker.tracks]


def _writer(path, annotate_dir, shape, every_seconds):
    os.makedirs(annotate_dir, exist_ok=True)
    name = os.path.splitext(os.path.basename(path))[0] + ".annotated.mp4"
    fps = max(1.0, 1.0 / every_seconds)
    writer = cv2.VideoWriter(os.path.join(annotate_dir, name), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (shape[1], shape[0]))
    if not writer.isOpened():
        raise VideoError(f"OpenCV cannot write {name}")
    return writer
