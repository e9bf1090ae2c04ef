"""Face detection (OpenCV's Haar cascade) and the crop around each face.

The cascade file ships inside opencv-python-headless below 5.0 (the 5.x wheels dropped
the data files). Crops keep a margin around the detected box because Adience's faces
include the hair, ears and chin that the cascade's box leaves out.
"""

import os

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
MARGIN = 0.4  # Of the box's side, added on each side.


class Detector:
    def __init__(self, min_size=40, scale_factor=1.1, min_neighbors=5):
        path = os.path.join(cv2.data.haarcascades, CASCADE)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the face detector {path}: is opencv-python-headless < 5 installed?")
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors

    def detect(self, image):
        """Boxes (x, y, width, height) of the faces in a PIL RGB image, largest first."""
        gray = np.asarray(image.convert("L"))
        gray = cv2.equalizeHist(gray)  # Helps with dim or washed-out photos.
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                              minSize=(self.min_size, self.min_size))
        return sorted((tuple(int(v) for v in box) for box in boxes), key=lambda b: -b[2] * b[3])


def crop(image, box, margin=MARGIN):
    """The square around `box` grown by `margin` on each side (clipped to the image): the
    framing of the faces the model was trained on. It keeps its own size; the predictor
    resizes it with input_pipeline.preprocess.resize, as every path does."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    left, top = max(0, int(round(cx - side / 2))), max(0, int(round(cy - side / 2)))
    right, bottom = min(image.width, int(round(cx + side / 2))), min(image.height, int(round(cy + side / 2)))
    return image.crop((left, top, right, bottom))
