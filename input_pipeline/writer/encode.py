"""Reads, checks and re-encodes one face image. Runs in worker processes.

No TensorFlow here, so that worker processes start in a fraction of a second and stay
small; only --face_crop=detect with blazeface or mtcnn loads it, inside input_pipeline.faces.
"""

import io
import typing

import numpy as np
from PIL import Image, ImageOps

from input_pipeline import faces, photo

_JPEG_MAGIC = b"\xff\xd8"


class Encoded(typing.NamedTuple):
    data: bytes  # JPEG bytes as stored in the TFRecord.
    height: int
    width: int
    converted: str = ""  # What a non-JPEG or non-RGB source was ("PNG", "JPEG CMYK", ...); "" for an RGB JPEG.


class Failed(typing.NamedTuple):
    reason: str  # A key of rows.SKIP_REASONS.
    detail: str


def encode_face(path, image_size, jpeg_quality, crop_spec=None):
    """The JPEG to store for the image at `path`, or why it cannot be used.

    crop_spec given (--face_crop=detect): decode any image format as prediction does
    (input_pipeline.photo), find its one face and store its canonical crop,
    image_size x image_size. Otherwise image_size > 0: decode, undo EXIF rotation,
    convert to RGB, resize to image_size x image_size (the paper squashes faces to
    256x256) and re-encode at `jpeg_quality`. image_size == 0: keep an RGB JPEG's bytes
    unchanged, after checking that they decode in full. Other images (PNG, BMP, GIF,
    grayscale, palette, CMYK) are decoded as prediction decodes them and stored as RGB
    JPEGs; Encoded.converted says what they were.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return Failed("missing_image", "no such file")
    except OSError as e:
        return Failed("unreadable_image", e.strerror or type(e).__name__)
    converted = _kind(data)
    if crop_spec is not None:
        return _detect_and_crop(data, image_size, jpeg_quality, crop_spec, converted)
    if not data:
        return Failed("empty_image", "0 bytes")
    if converted:
        return _convert(data, image_size, jpeg_quality, converted)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image_size == 0:
                image.load()  # Decode in full: a truncated file fails here.
                return Encoded(data, image.height, image.width)
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still leaves at
            # least image_size pixels a side: several times faster on 816x816 faces.
            image.draft("RGB", (image_size, image_size))
            image = ImageOps.exif_transpose(image).convert("RGB")
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    except Image.DecompressionBombError as e:
        return Failed("image_too_large", str(e))
    except Image.UnidentifiedImageError:
        return Failed("corrupt_image", "JPEG header cannot be parsed")
    except (OSError, SyntaxError, ValueError) as e:
        reason = "truncated_image" if "truncated" in str(e).lower() else "corrupt_image"
        return Failed(reason, str(e))
    return _jpeg(image, jpeg_quality)


def _kind(data):
    """"" for an RGB JPEG (or bytes that start like one); else what the image is, e.g.
    "PNG", "BMP", "JPEG L" (grayscale), "JPEG CMYK", or "unknown" when Pillow cannot tell."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG" and image.mode in ("RGB", "YCbCr") and data.startswith(_JPEG_MAGIC):
                return ""
            return image.format if image.format != "JPEG" else f"JPEG {image.mode}"
    except Exception:  # noqa: BLE001 - any failure to identify: decoding it later says exactly what is wrong.
        return "" if data.startswith(_JPEG_MAGIC) else "unknown"


def _convert(data, image_size, jpeg_quality, converted):
    try:
        image = photo.decode(data)
    except photo.PhotoError as e:
        return Failed(e.reason, str(e))
    if image_size:
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return _jpeg(image, jpeg_quality, converted)


def face_pixels(data, image_size, crop_spec):
    """(image_size, image_size, 3) uint8: the canonical crop of the one face in image
    bytes `data`; photo.PhotoError or faces.FaceError when there is none to take."""
    pixels = np.asarray(photo.decode(data))
    return faces.canonical_crop(pixels, faces.one_face(pixels, crop_spec), crop_spec, image_size)


def _detect_and_crop(data, image_size, jpeg_quality, crop_spec, converted):
    try:
        pixels = face_pixels(data, image_size, crop_spec)
    except (photo.PhotoError, faces.FaceError) as e:
        return Failed(e.reason, str(e))
    return _jpeg(Image.fromarray(pixels), jpeg_quality, converted)


def _jpeg(image, jpeg_quality, converted=""):
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=jpeg_quality)
    return Encoded(out.getvalue(), image.height, image.width, converted)
