"""BlazeFace, MediaPipe's face detector (its two nets: blazenet.py), as this project runs it:
three looks at a photo, and its landmarks moved to where MTCNN puts the same points, so the
canonical crop frames a face alike whichever of the two detectors ran.
"""

import cv2
import numpy as np

from input_pipeline.faces.blazenet import NMS_IOU, blaze_net, iou
from input_pipeline.faces.crop import warp
from input_pipeline.faces.detectors import PAD_VALUE

# MediaPipe's keypoint order: the person's right eye (image left, in a photo that is not
# mirrored), left eye, nose tip, mouth centre, right and left ear tragion.
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH = 0, 1, 2, 3

# Look 2's tiles. The short net finds faces of ~12% of its input and more (80 real faces
# pasted into 400-pixel scenes: 68 found at 10% of the side, 75 at 12%, 79 at 14%; the
# full net 70-77 at every size from 8%), ~40 pixels of a tile.
TILE = 320
SMALL_FACE = 0.1  # Of the photo's side: near the smallest look 1 finds, so smaller ones may be missed (look 2).
# BlazeFace's keypoints -> MTCNN's (the canonical crop was set on MTCNN's), measured by
# scripts/fit_blazeface.py on 400 real UTKFace faces of ../shared/utkface_dev (the training
# faces, so realfaces_dev, where the figures are measured, is unseen): after look 3,
# BlazeFace's eye midpoint lies 0.022 of the face's size lower, its eyes 1.021 times as far
# apart, its mouth centre 1.038 times as far from the eyes as MTCNN's mouth-corner midpoint,
# and its box 0.961 times MTCNN's side (medians; 10-90% ranges: -0.018...+0.063, 0.97...1.09,
# 0.93...1.17, 0.91...1.02). scripts/bench_detect.py shows the squares after the correction.
EYE_DROP = 0.022
EYE_SPREAD = 1.021
MOUTH_REACH = 1.038
BOX_GROWTH = 1 / 0.961
PAD_SHARE = 0.25  # A photo of TILE pixels or less with no sure face is looked at again framed by this much of its side.
REFINE_SCALE = 2.0  # Look 3's square, in box sides: the face fills half of it, where the short net is surest.
# A face over BIG_FACE of the photo's side scoring under BIG_FACE_SCORE in look 3 is doubted
# (BlazeFace._confirmed); only faces scoring BIG_FACE_SCORE or more spare a photo look 2.
BIG_FACE, BIG_FACE_SCORE = 0.2, 0.75


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
      1. the short-range net on the whole photo, which finds faces down to ~12% of its
         side, and the full-range one, down to ~8%, but on a portrait: a photo of TILE
         pixels or less where the short net confirms one sure face over BIG_FACE of the
         side (skipping the full net halves the time a portrait takes; in 320-pixel grids
         of 16 real faces the short net alone found 115 of 128, with the full one 120). On a
         photo of TILE pixels or
         less with no face scoring BIG_FACE_SCORE, look 1 again on it framed in mid-gray
         (PAD_SHARE), kept when its best face is surer: a face that fills the photo;
      2. on a photo over 1.25 TILE pixels where no face scoring BIG_FACE_SCORE or more was
         found, or one under SMALL_FACE of its side (a group photo), the short-range net on
         overlapping TILE-pixel tiles, which sees faces down to ~40 pixels (the build keeps
         40 and more: CropSpec.min_face_size);
      3. for each face, the short-range net again on a level square REFINE_SCALE times its
         box, which confirms it and measures its keypoints at one scale and upright, so the
         landmarks, and the canonical crop made from them, do not depend on how much of the
         photo the face fills or how it is turned.
    Last, a doubtful detection that frames a smaller face or lies within a surer one goes.
    """

    def __init__(self):
        self._short, self._full = blaze_net("short"), blaze_net("full")

    def __call__(self, pixels):
        from input_pipeline.faces.detectors import Face  # detectors imports this module when asked.

        pixels = np.ascontiguousarray(pixels)
        height, width = pixels.shape[:2]
        faces = self._whole(pixels)
        if max(height, width) <= TILE and not any(score >= BIG_FACE_SCORE for _, _, score in faces):
            # A face that fills a small photo (UTKFace's, a close-up) can look like two: its
            # eyes behind sunglasses at 0.56-0.72. Framed in mid-gray it is one face, surer.
            # The frame keeps the photo within 1.25 TILE, where _confirmed treats big faces alike.
            pad = max(0, min(round(PAD_SHARE * max(height, width)), int(1.25 * TILE - max(height, width)) // 2))
            framed = self._whole(cv2.copyMakeBorder(pixels, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                                    value=(PAD_VALUE,) * 3))
            if max((score for _, _, score in framed), default=0) > max((score for _, _, score in faces), default=0):
                shift = np.array([pad, pad], np.float32)
                faces = [(box - np.tile(shift, 2), points - shift, score) for box, points, score in framed]
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
        faces = [face for face in faces if not within_a_surer_face(face, faces)]
        out = []
        for box, points, score in faces:
            box, points = calibrate(box, points)
            out.append(Face(tuple(float(v) for v in (*box[:2], *(box[2:] - box[:2]))),
                            points[[RIGHT_EYE, LEFT_EYE, NOSE, MOUTH, MOUTH]] - 0.5, score))
        return out

    def _whole(self, pixels):
        """Look 1, confirmed by look 3: the short net on the whole photo, and the full net
        too unless the photo is a portrait: TILE pixels or less, where the short net confirms
        one face, scoring BIG_FACE_SCORE or more and over BIG_FACE of the side."""
        short = self._short(pixels)
        if max(pixels.shape[:2]) <= TILE:
            faces = self._confirmed(pixels, short)
            if len(faces) == 1 and faces[0][2] >= BIG_FACE_SCORE and max(
                    faces[0][0][2:] - faces[0][0][:2]) >= BIG_FACE * max(pixels.shape[:2]):
                return faces
        return self._confirmed(pixels, short + self._full(pixels))

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


def within_a_surer_face(face, faces):
    """True for a detection scoring under BIG_FACE_SCORE whose centre lies in the box of a
    sure one (BIG_FACE_SCORE or more) over 1.5 times its size: a mouth or an eye taken for a
    face (faces do not nest; on 12,271 UTKFace photos a beard inside a 0.89 face scored 0.57).
    Checked after frames_a_smaller_face, against the faces that passed it."""
    box, _, score = face
    if score >= BIG_FACE_SCORE:
        return False
    centre, side = (box[:2] + box[2:]) / 2, max(box[2:] - box[:2])
    return any(other_score >= BIG_FACE_SCORE and max(other[2:] - other[:2]) > 1.5 * side
               and (other[:2] <= centre).all() and (centre <= other[2:]).all() for other, _, other_score in faces)


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
