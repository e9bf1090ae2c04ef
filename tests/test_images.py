import io
import os

import numpy as np
import pytest
from PIL import Image

from datasets import jpeg_bytes, write_file
from input_pipeline.writer.encode import Encoded, Failed, encode_face


def save(tmp_path, name, data):
    path = str(tmp_path / name)
    write_file(path, data)
    return path


def decode(data):
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB"), dtype=np.int32)


def test_resizes_to_a_square_rgb_jpeg(tmp_path):
    path = save(tmp_path, "a.jpg", jpeg_bytes(size=(90, 60), colour=(10, 200, 30)))
    result = encode_face(path, 32, 95)
    assert isinstance(result, Encoded) and (result.height, result.width) == (32, 32)
    pixels = decode(result.data)
    assert pixels.shape == (32, 32, 3)
    assert np.abs(pixels.mean(axis=(0, 1)) - (10, 200, 30)).max() < 6


def test_image_size_zero_keeps_the_original_bytes(tmp_path):
    data = jpeg_bytes(size=(41, 23))
    result = encode_face(save(tmp_path, "a.jpg", data), 0, 95)
    assert result == Encoded(data, 23, 41)


def test_grayscale_becomes_rgb(tmp_path):
    out = io.BytesIO()
    Image.new("L", (20, 20), 128).save(out, format="JPEG")
    result = encode_face(save(tmp_path, "g.jpg", out.getvalue()), 16, 90)
    assert decode(result.data).shape == (16, 16, 3)


def test_exif_rotation_is_undone(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # Red on the left as stored...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...and "rotate 90 degrees clockwise to view".
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=95)
    pixels = decode(encode_face(save(tmp_path, "r.jpg", out.getvalue()), 20, 95).data)
    assert pixels[:8, :, 0].mean() > 200 and pixels[-8:, :, 2].mean() > 200  # Red on top.


@pytest.mark.parametrize("name,data,reason", [
    ("empty.jpg", b"", "empty_image"),
    ("text.jpg", b"this is not an image at all", "not_an_image"),
    ("half.jpg", jpeg_bytes(size=(64, 64))[:300], "truncated_image"),
    ("header.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2, "corrupt_image"),
])
def test_bad_files_give_their_reason(tmp_path, name, data, reason):
    for size in (0, 16):
        result = encode_face(save(tmp_path, name, data), size, 90)
        assert isinstance(result, Failed) and result.reason == reason, result


@pytest.mark.parametrize("image_format,mode,kind", [
    ("PNG", "RGB", "PNG"), ("GIF", "P", "GIF"), ("BMP", "RGB", "BMP"), ("PNG", "L", "PNG"), ("PNG", "RGBA", "PNG"),
    ("JPEG", "L", "JPEG L"), ("JPEG", "CMYK", "JPEG CMYK")])
@pytest.mark.parametrize("size", [0, 16])
def test_other_formats_and_modes_are_converted_to_rgb_jpeg(tmp_path, image_format, mode, kind, size):
    out = io.BytesIO()
    Image.new(mode, (23, 9), 128).save(out, format=image_format)
    result = encode_face(save(tmp_path, "x.jpg", out.getvalue()), size, 90)
    assert isinstance(result, Encoded) and result.converted == kind
    with Image.open(io.BytesIO(result.data)) as stored:
        assert stored.format == "JPEG" and stored.mode == "RGB"
        assert stored.size == ((23, 9) if size == 0 else (16, 16))
        assert result.height == stored.height


def test_missing_and_unreadable(tmp_path):
    assert encode_face(str(tmp_path / "nope.jpg"), 16, 90).reason == "missing_image"
    os.makedirs(tmp_path / "dir.jpg")
    assert encode_face(str(tmp_path / "dir.jpg"), 16, 90).reason == "unreadable_image"


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses > 2x this.
    result = encode_face(save(tmp_path, "big.jpg", jpeg_bytes(size=(64, 64))), 16, 90)
    assert result.reason == "image_too_large"
