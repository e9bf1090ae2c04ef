"""Image bytes -> an upright RGB picture: the one decoder of photos, for the build's
--face_crop=detect and for prediction, so both see the same pixels.

JPEG, PNG, BMP, WebP, GIF and more; grayscale, RGBA (laid on white), palette and CMYK;
EXIF rotation undone. Refused with PhotoError, whose `reason` is a key of the build's
skip reasons: an empty file, not an image, truncated or corrupt data, and more pixels
than `max_pixels` (checked from the header, before anything is decoded: a decompression
bomb costs nothing).
"""

import io

from PIL import Image, ImageOps


class PhotoError(Exception):
    """A photo that cannot be used; the message says why, `reason` names the kind."""

    def __init__(self, message, reason="not_an_image"):
        super().__init__(message)
        self.reason = reason


def decode(data, max_pixels=None):
    """Image bytes -> an upright RGB PIL image; `max_pixels` None: Pillow's limit (89 million)."""
    max_pixels = max_pixels or Image.MAX_IMAGE_PIXELS
    if not data:
        raise PhotoError("empty file", "empty_image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                raise PhotoError(f"{image.width}x{image.height} is more pixels than the limit of {max_pixels:,} "
                                 "(a decompression bomb?)", "image_too_large")
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            return image.convert("RGB")
    except Image.DecompressionBombError:
        raise PhotoError(f"more pixels than the limit of {Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?)",
                         "image_too_large") from None
    except Image.UnidentifiedImageError:
        raise PhotoError("not an image") from None
    except (OSError, SyntaxError, ValueError) as e:
        reason = "truncated_image" if "truncated" in str(e).lower() else "corrupt_image"
        raise PhotoError(f"broken image: {e}", reason) from None
