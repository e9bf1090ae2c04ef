"""A photo with each face's box and predicted labels drawn on it."""

from PIL import Image, ImageDraw

from serving import report

OK, TOO_SMALL = (255, 40, 40), (150, 150, 150)


def annotate(image, records, number_from=None):
    """A copy of `image` (PIL or uint8 array) with each face's box and labels drawn on it.
    With `number_from`, each label starts with the face's number counted from it, as the
    table beside it counts (the web page's rows from 1, a video's tracks from 0)."""
    image = Image.fromarray(image) if not isinstance(image, Image.Image) else image.copy()
    draw = ImageDraw.Draw(image)
    width = max(2, image.width // 300)
    for rec in records:
        x, y, w, h = rec["box"]
        color = OK if rec["status"] == "ok" else TOO_SMALL
        draw.rectangle((x, y, x + w, y + h), outline=color, width=width)
        text = report.label(rec)
        if number_from is not None and rec["face"] is not None:  # A video's too-small face has no track.
            text = f"#{rec['face'] + number_from} {text}"
        top = y - 14 if y >= 14 else y  # Above the box, or inside it at the picture's top.
        draw.rectangle((x, top, x + 7 * len(text) + 6, top + 14), fill=color)
        draw.text((x + 3, top + 1), text, fill="white")
    return image
