"""Faces in photos: one detector and one canonical crop, imported by the build and by prediction.

    spec = faces.CropSpec(detector="blazeface")
    found, too_small = faces.detect(pixels, spec)           # Face records, largest first
    crop = faces.canonical_crop(pixels, found[0], spec, 256)  # (256, 256, 3) uint8

build_input.py --face_crop=detect stores canonical crops and records the spec in the
manifest; model.py copies it into the export's metadata; the Predictor reads it back and
crops new photos with the same detector and numbers (crop.py explains the framing).
"""

from input_pipeline.faces.crop import NO_CROP, CropSpec, canonical_crop, square
from input_pipeline.faces.detectors import DETECTORS, Face, find, framing_family, make_detector

__all__ = ["DETECTORS", "NO_CROP", "CropSpec", "Face", "FaceError", "canonical_crop", "detect", "find",
           "framing_family", "make_detector", "one_face", "square"]

# A second face at least this share of the largest one's side makes a photo "several faces"
# where one is expected; smaller ones are people in the background.
SECOND_FACE_SHARE = 0.5


class FaceError(Exception):
    """No usable face; `reason` is a build skip reason (no_face, face_too_small, several_faces)."""

    def __init__(self, message, reason):
        super().__init__(message)
        self.reason = reason


def detect(pixels, spec):
    """(faces of at least spec.min_face_size pixels, the smaller ones), each largest first."""
    found = find(pixels, make_detector(spec.detector), spec.detect_padding)
    return ([face for face in found if face.side >= spec.min_face_size],
            [face for face in found if face.side < spec.min_face_size])


def one_face(pixels, spec):
    """The face of a photo that should show one person, or FaceError saying why not."""
    found, too_small = detect(pixels, spec)
    if not found:
        if too_small:
            raise FaceError(f"{len(too_small)} face(s) found, all under {spec.min_face_size} pixels",
                            "face_too_small")
        raise FaceError(f"{spec.detector} found no face", "no_face")
    rivals = [face for face in found[1:] if face.side >= SECOND_FACE_SHARE * found[0].side]
    if rivals:
        raise FaceError(f"{1 + len(rivals)} faces of similar size", "several_faces")
    return found[0]
