"""A photo with each face's box and predicted labels drawn on it."""

from PIL import ImageDraw


def annotate(image, rows):
    """A copy of `image` with each face's box and labels drawn on it."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    width = max(2, image.width // 300)
    for row in rows:
        x, y, w, h = map(int, row["box"].split(","))
        draw.rectangle((x, y, x + w, y + h), outline=(255, 40, 40), width=width)
        label = " ".join(str(v) for v in (row["age"], row["gender"]) if v)
        draw.rectangle((x, max(0, y - 14), x + 7 * len(label) + 6, y), fill=(255, 40, 40))
        draw.text((x + 3, max(0, y - 13)), label, fill="white")
    return image
