"""Controlled degradations of a photo, for the robustness study (experiments/robustness.py).

Each family maps a severity to a change of an RGB photo (PIL in, PIL out, same size unless
the family is about the photo's framing), applied before the model's own preprocessing
and, for a photo that is face-detected, before detection. Severity 0 (the first of every
family) is the photo unchanged. Random families (noise) draw from a generator seeded by
the photo's index, so a study reruns to the same bytes.

    resolution   the face photo (the face and its margin) shrunk to N pixels a side, then
                 brought back (a small face in a large photo): 128, 96, 64, 48, 32, 24,
                 16, 12, 8 (a photo already smaller is left alone)
    face_share   the photo placed in the middle of a larger scene (a soft, seeded texture
                 around the photo's own mean colour: no face in it) so it covers this
                 share of the picture's area: 0.5 ... 0.01 (needs face detection;
                 placement() says where it is; scenes of at most MAX_SCENE_SIDE)
    jpeg         re-encoded at JPEG quality 95 ... 5
    blur         a Gaussian blur of this many pixels per 100 of the photo's side
    noise        Gaussian sensor noise of this standard deviation (0-255 scale)
    exposure     brightness times this factor (under- and over-exposure)
    contrast     contrast times this factor
    rotation     turned in-plane by this many degrees (corners filled grey)
    flip         mirrored left-right: a consistency check, should change nothing
    occlusion    a black band over the eyes (sunglasses) or the lower face (a mask)
    filter       photo filters: grayscale, sepia, warm, cool, vintage, clarendon,
                 vignette, smoothing (beauty filter)
"""

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

GREY = (128, 128, 128)
# The face_share scenes' longest side: a 1,000-pixel photo at 1% would otherwise make a
# 10,000-pixel scene (300 MB), and the detector looks at 1,024 pixels of it anyway.
MAX_SCENE_SIDE = 2048


def _resolution(image, side, rng):
    """A face already at most `side` pixels a side is left as it is."""
    scale = side / max(image.size)
    if scale >= 1:
        return image
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.BILINEAR)
    return small.resize(image.size, Image.Resampling.BILINEAR)


def placement(family, size, severity):
    """(width, height, (x, y, width, height) of the photo in it) of a photo of `size`
    (width, height) degraded by `family` at `severity`: where the photo, and so its face,
    lies in what the model or detector is given (the whole picture but for face_share)."""
    if family != "face_share" or severity == 0:
        return size[0], size[1], (0, 0, size[0], size[1])
    return face_region(size, severity)


def face_region(size, share):
    """placement() of the face_share family at `share` (0 < share <= 1): the scene is at most
    MAX_SCENE_SIDE a side, the photo shrunk to fit when it would be larger."""
    factor = (1 / share) ** 0.5
    fit = min(1.0, MAX_SCENE_SIDE / (max(size) * factor))
    w, h = max(1, int(size[0] * fit)), max(1, int(size[1] * fit))  # Down: the scene stays under the cap.
    width, height = round(w * factor), round(h * factor)
    return width, height, ((width - w) // 2, (height - h) // 2, w, h)


def _face_share(image, share, rng):
    """The photo in the middle of a scene `1 / share` times its area. The scene is a soft
    texture (seeded noise on an 8x8 grid, smoothly enlarged) around the photo's mean colour
    pulled towards grey: a plain background with nothing face-like in it, so a detection
    outside the photo is a false one (robustness.py does not count it)."""
    width, height, (x, y, w, h) = face_region(image.size, share)
    if (w, h) != image.size:
        image = image.resize((w, h), Image.Resampling.LANCZOS)
    base = 0.5 * np.asarray(image, np.float32).reshape(-1, 3).mean(axis=0) + 0.5 * np.asarray(GREY, np.float32)
    grid = np.clip(base + rng.normal(0.0, 25.0, size=(8, 8, 3)), 0, 255).astype(np.uint8)
    scene = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
    scene.paste(image, (x, y))
    return scene


def _jpeg(image, quality, rng):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _blur(image, per_100, rng):
    return image.filter(ImageFilter.GaussianBlur(per_100 * max(image.size) / 100))


def _noise(image, sigma, rng):
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, sigma, size=(image.height, image.width, 3))
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def _exposure(image, factor, rng):
    return ImageEnhance.Brightness(image).enhance(factor)


def _contrast(image, factor, rng):
    return ImageEnhance.Contrast(image).enhance(factor)


def _rotation(image, degrees, rng):
    return image.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=GREY)


def _flip(image, _, rng):
    return ImageOps.mirror(image)


def _occlusion(image, where, rng):
    """A black band: "eyes" over 30-48% of the height (where an aligned face's eyes are),
    "mask" over the lower 40%."""
    top, bottom = {"eyes": (0.30, 0.48), "mask": (0.60, 1.0)}[where]
    out = image.copy()
    out.paste((0, 0, 0), (0, round(top * image.height), image.width, round(bottom * image.height)))
    return out


def _tone(image, matrix, offset=(0, 0, 0)):
    pixels = np.asarray(image, dtype=np.float32) @ np.asarray(matrix, dtype=np.float32).T + np.asarray(offset)
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def _curve(image, curve):
    """Each channel through `curve` (a function of 0..255 arrays)."""
    table = np.clip(np.round(curve(np.arange(256, dtype=np.float32))), 0, 255).astype(np.uint8)
    return Image.fromarray(table[np.asarray(image)])


def _vignette(image):
    y, x = np.mgrid[0:image.height, 0:image.width].astype(np.float32)
    r = np.hypot((x - image.width / 2) / (image.width / 2), (y - image.height / 2) / (image.height / 2))
    weight = np.clip(1.0 - 0.6 * np.maximum(r - 0.4, 0) ** 1.5, 0.2, 1.0)[..., None]
    return Image.fromarray(np.clip(np.asarray(image, np.float32) * weight, 0, 255).astype(np.uint8))


FILTERS = {
    "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "sepia": lambda im: _tone(im, [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]),
    "warm": lambda im: _tone(im, np.eye(3), (18, 6, -18)),
    "cool": lambda im: _tone(im, np.eye(3), (-15, 0, 20)),
    "vintage": lambda im: _tone(_curve(im, lambda v: 30 + 0.78 * v), np.eye(3) * [1.0, 0.95, 0.85], (10, 5, 0)),
    "clarendon": lambda im: ImageEnhance.Color(ImageEnhance.Contrast(im).enhance(1.5)).enhance(1.35),
    "vignette": _vignette,
    "smoothing": lambda im: im.filter(ImageFilter.SMOOTH_MORE).filter(ImageFilter.MedianFilter(5)),
}


def _filter(image, name, rng):
    return FILTERS[name](image)


# family: (function(image, severity, rng), severities after the identity (0), needs detection)
FAMILIES = {
    "resolution": (_resolution, (128, 96, 64, 48, 32, 24, 16, 12, 8), False),
    "face_share": (_face_share, (0.5, 0.25, 0.1, 0.05, 0.02, 0.01), True),
    "jpeg": (_jpeg, (95, 75, 50, 30, 15, 5), False),
    "blur": (_blur, (0.5, 1, 2, 4), False),
    "noise": (_noise, (5, 10, 20, 40), False),
    "exposure": (_exposure, (0.25, 0.5, 1.5, 2.5), False),
    "contrast": (_contrast, (0.6, 0.4, 0.2), False),
    "rotation": (_rotation, (10, 20, 30, 45), False),
    "flip": (_flip, ("mirrored",), False),
    "occlusion": (_occlusion, ("eyes", "mask"), False),
    "filter": (_filter, tuple(FILTERS), False),
}


def severities(family):
    """0 (the photo unchanged), then the family's severities."""
    return (0, *FAMILIES[family][1])


def apply(image, family, severity, seed=0):
    """`image` (PIL RGB) degraded by `family` at `severity`; severity 0 returns it unchanged."""
    if severity == 0:
        return image
    function, _, _ = FAMILIES[family]
    return function(image.convert("RGB"), severity, np.random.default_rng(seed))
