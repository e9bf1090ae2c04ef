"""The canonical face crop: one framing of a face, the same at build time and at prediction.

From five landmarks (eyes, nose, mouth corners):
  - rotate about the eye midpoint so the eyes are level;
  - scale so the face's size s = max(eye distance, eye-midpoint-to-mouth-midpoint
    distance) is EYE_SCALE of the crop's side (the larger of the two stays right when the
    head turns, which shortens the first, or nods, which shortens the second; on 150 real
    frontal UTKFace faces their ratio is 0.88-1.32, median 1.03);
  - put the eye midpoint at (0.5, EYE_HEIGHT) of the square, which keeps the chin and
    most of the hair.
From a box alone (OpenCV's Haar cascade has no landmarks): an upright square BOX_SCALE
times the box's side, centred BOX_SHIFT of the side below the box's centre.

Pixels the square needs beyond the photo's border are mid-gray, as the detector's padding
is, at build time and at prediction alike (a face that fills its picture, as UTKFace's
do, needs some). Numpy and OpenCV only, no TensorFlow.
"""

import dataclasses

import cv2
import numpy as np

EYE_SCALE = 0.34
EYE_HEIGHT = 0.37
# A Haar box -> the square MTCNN's landmarks give the same face: on 113 real UTKFace faces
# both found, that square is 1.16x the box's side (10-90%: 1.07-1.31) and centred 0.03
# of the side lower (medians; measured in development with `square` on both detectors).
BOX_SCALE = 1.16
BOX_SHIFT = 0.03
FILL = (128, 128, 128)


@dataclasses.dataclass(frozen=True)
class CropSpec:
    """How faces are found and framed; recorded in the manifest and in an export's metadata."""

    detector: str = "blazeface"  # "blazeface" or "mtcnn" (landmarks, one framing), or "haar" (boxes only).
    eye_scale: float = EYE_SCALE
    eye_height: float = EYE_HEIGHT
    box_scale: float = BOX_SCALE
    box_shift: float = BOX_SHIFT
    min_face_size: int = 40  # Faces whose box is smaller, in photo pixels, are "too small".
    detect_padding: float = 0.25  # Of the longer side, added on each side to look again when no face is found.

    def as_dict(self):
        return {"method": "detect", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, found):
        """The spec a manifest or metadata recorded; None for {"method": "none"} (the dataset's own crops)."""
        if not found or found.get("method", "none") == "none":
            return None
        return cls(**{f.name: found[f.name] for f in dataclasses.fields(cls) if f.name in found})


NO_CROP = {"method": "none"}  # What a shard set of the dataset's own crops records.


def square(face, spec):
    """(centre x, centre y, side, angle in radians) of `face`'s canonical square in the photo."""
    if face.landmarks is None:
        x, y, w, h = face.box
        side = max(w, h)
        return x + w / 2, y + h / 2 + spec.box_shift * side, spec.box_scale * side, 0.0
    left_eye, right_eye, _, mouth_left, mouth_right = np.asarray(face.landmarks, np.float64)
    eyes = (left_eye + right_eye) / 2
    mouth = (mouth_left + mouth_right) / 2
    dx, dy = right_eye - left_eye
    angle = np.arctan2(dy, dx)
    size = max(np.hypot(dx, dy), np.hypot(*(mouth - eyes)))
    side = size / spec.eye_scale
    # The eye midpoint sits (0.5 - eye_height) * side above the centre, in the rotated frame.
    up = (0.5 - spec.eye_height) * side
    centre = eyes + up * np.array([-np.sin(angle), np.cos(angle)])
    return float(centre[0]), float(centre[1]), float(side), float(angle)


def transform(centre_x, centre_y, side, angle, size):
    """The 2x3 matrix taking photo pixels to the size x size crop (pixel centres at +0.5)."""
    scale = size / side
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    # Rotate by -angle about the centre, scale, then move the centre to the crop's centre.
    return np.array([[cos, sin, size / 2 - cos * centre_x - sin * centre_y],
                     [-sin, cos, size / 2 + sin * centre_x - cos * centre_y]])


def warp(pixels, centre_x, centre_y, side, angle, size):
    """((size, size, 3) uint8, the 2x3 matrix from photo pixels to it, continuous
    coordinates): the square of `side` photo pixels about the centre, turned by -angle,
    mid-gray beyond the border. A square larger than `size` is warped at its own
    resolution and then shrunk with area averaging, so a big photo is not aliased; a
    smaller one is warped straight to `size`."""
    work = max(size, int(np.ceil(side)))
    matrix = transform(centre_x, centre_y, side, angle, work)
    # Pixel centres: OpenCV maps integer coordinates, ours are at +0.5 on both sides.
    opencv = matrix.copy()
    opencv[:, 2] += opencv[:, :2].sum(axis=1) * 0.5 - 0.5
    out = cv2.warpAffine(np.ascontiguousarray(pixels), opencv, (work, work), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=FILL)
    if work != size:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return out, matrix * (size / work)


def canonical_crop(pixels, face, spec, size):
    """(size, size, 3) uint8: `face` in the (H, W, 3) uint8 photo `pixels`, framed
    canonically (warp: a big face is shrunk with area averaging, not aliased)."""
    return warp(pixels, *square(face, spec), size)[0]
