"""What Predictor.predict accepts, turned into (name, upright RGB uint8 pixels) pairs.

    a path or http(s) URL (str or os.PathLike)   decoded by serving.photos
    bytes                                        image file contents
    a PIL image                                  any mode; converted to RGB
    a numpy array                                uint8 (H, W, 3) RGB or (H, W) gray: one image;
                                                 (N, H, W, 3): N images
    a list or tuple of any of these              a batch

Anything else is refused with a TypeError, and an array of another dtype or shape with a
ValueError, each saying what is accepted.
"""

import os

import numpy as np
from PIL import Image

from serving import photos

ACCEPTED = ("a path or http(s) URL, bytes, a PIL image, a uint8 numpy array (H, W, 3), (H, W) or "
            "(N, H, W, 3), or a list of these")


def items(x):
    """(name, source) pairs of one input or a batch, without decoding anything yet."""
    if isinstance(x, (list, tuple)):
        return [(_name(item, i), item) for i, item in enumerate(x)]
    if isinstance(x, np.ndarray) and x.ndim == 4:
        return [(f"array[{i}]", image) for i, image in enumerate(x)]
    return [(_name(x, None), x)]


def _name(x, index):
    if isinstance(x, (str, os.PathLike)):
        return os.fspath(x)
    kind = {bytes: "bytes", bytearray: "bytes", np.ndarray: "array"}.get(type(x), "PIL image")
    return kind if index is None else f"{kind}[{index}]"


def pixels(source, max_bytes=photos.MAX_DOWNLOAD_BYTES, timeout=photos.DOWNLOAD_TIMEOUT_SECONDS, max_pixels=None):
    """(H, W, 3) uint8 RGB of one image; photos.PhotoError if it cannot be read."""
    if isinstance(source, (str, os.PathLike)):
        return np.asarray(photos.load(os.fspath(source), max_bytes, timeout, max_pixels))
    if isinstance(source, (bytes, bytearray)):
        return np.asarray(photos.decode(bytes(source), max_pixels))
    if isinstance(source, Image.Image):
        return np.asarray(source.convert("RGB"))
    if isinstance(source, np.ndarray):
        return _array(source)
    raise TypeError(f"cannot predict on a {type(source).__name__}; give {ACCEPTED}")


def _array(array):
    if array.dtype != np.uint8:
        raise ValueError(f"numpy images must be uint8 RGB (0..255), got {array.dtype}; for floats in [0, 1] "
                         "pass (x * 255).round().astype(np.uint8)")
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"a numpy image must be (H, W, 3) RGB or (H, W) gray, got shape {array.shape}")
    if min(array.shape[:2]) < 1:
        raise ValueError(f"empty image: shape {array.shape}")
    return np.ascontiguousarray(array)
