import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from input_pipeline.sources import synthetic_face
from processes import ROOT
from serving import faces, photos, report
from serving.predictor import Predictor, predict

# Renderer seeds whose face the Haar cascade finds (see test_two_drawn_faces_are_found).
FACE_SEEDS = (5, 7)


def drawn_face(seed, size=320):
    rng = np.random.default_rng([seed, 7])
    person = synthetic_face.make_person(rng, 4, seed % 2 == 0, 28.0)
    return synthetic_face.draw_photo(rng, person, 28.0, size)[0]


def two_faces():
    canvas = Image.new("RGB", (700, 340), (200, 200, 200))
    for i, seed in enumerate(FACE_SEEDS):
        canvas.paste(drawn_face(seed), (10 + i * 360, 10))
    return canvas


def encoded(image, fmt, **kwargs):
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


# ---------------------------------------------------------------- photos


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF"])
def test_every_common_format_loads_as_rgb(fmt):
    image = photos.decode(encoded(Image.new("RGB", (30, 20), (10, 200, 30)), fmt))
    assert image.mode == "RGB" and image.size == (30, 20)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "1"])
def test_every_mode_becomes_rgb(mode):
    image = Image.new(mode, (16, 12))
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    assert photos.decode(encoded(image, fmt)).mode == "RGB"


def test_transparency_is_laid_on_white():
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.asarray(photos.decode(encoded(image, "PNG"))).min() == 255


def test_exif_rotation_is_undone():
    image = Image.new("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    assert photos.decode(encoded(image, "JPEG", exif=exif)).size == (20, 40)


def test_tiny_and_large_photos():
    assert photos.decode(encoded(Image.new("RGB", (1, 1)), "PNG")).size == (1, 1)
    assert photos.decode(encoded(Image.new("RGB", (4000, 3000)), "JPEG")).size == (4000, 3000)


@pytest.mark.parametrize("data,message", [
    (b"", "empty file"),
    (b"just text", "not an image"),
    (encoded(Image.new("RGB", (64, 64)), "JPEG")[:200], "broken image"),
])
def test_bad_bytes(data, message):
    with pytest.raises(photos.PhotoError, match=message):
        photos.decode(data)


def test_decompression_bombs_are_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(photos.PhotoError, match="decompression bomb"):
        photos.decode(encoded(Image.new("RGB", (64, 64)), "PNG"))


def test_missing_file_and_other_url_schemes(tmp_path):
    with pytest.raises(photos.PhotoError, match="no such file"):
        photos.load(str(tmp_path / "nope.jpg"))
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x.jpg"):
        with pytest.raises(photos.PhotoError, match="only http and https"):
            photos.load(url)


class Handler(http.server.BaseHTTPRequestHandler):
    face = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/face.jpg":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.face)))
            self.end_headers()
            self.wfile.write(self.face)
        elif self.path == "/big_declared":
            self.send_response(200)
            self.send_header("Content-Length", str(10 << 20))
            self.end_headers()
        elif self.path == "/big_streamed":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * (3 << 20))
        elif self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/face.jpg" if self.path == "/redirect_ftp" else "/face.jpg")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(2)
            self.send_response(200)
            self.end_headers()
        else:
            self.send_error(404, "Not Found")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    Handler.face = encoded(two_faces(), "JPEG")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_urls(server):
    assert photos.load(f"{server}/face.jpg").size == (700, 340)
    with pytest.raises(photos.PhotoError, match="HTTP error 404"):
        photos.load(f"{server}/missing.jpg")
    with pytest.raises(photos.PhotoError, match="over the 1,048,576-byte limit"):
        photos.load(f"{server}/big_declared", max_bytes=1 << 20)
    with pytest.raises(photos.PhotoError, match="over the 1,048,576-byte limit"):
        photos.load(f"{server}/big_streamed", max_bytes=1 << 20)
    with pytest.raises(photos.PhotoError, match="download failed"):
        photos.load(f"{server}/slow", timeout=0.5)
    assert photos.load(f"{server}/redirect").size == (700, 340)  # http -> http is followed.
    with pytest.raises(photos.PhotoError, match="redirected to a ftp: URL"):
        photos.load(f"{server}/redirect_ftp")


# ---------------------------------------------------------------- faces


def test_two_drawn_faces_are_found():
    boxes = faces.Detector().detect(two_faces())
    assert len(boxes) == 2
    centres = sorted(x + w / 2 for x, _, w, _ in boxes)
    assert abs(centres[0] - 170) < 40 and abs(centres[1] - 530) < 40  # The two photos' centres.
    x, y, w, h = boxes[0]
    crop = faces.crop(two_faces(), boxes[0])  # 40% of the box added on each side, at its own size ...
    assert abs(crop.width - 1.8 * w) <= 1
    assert 1.8 * h - 20 < crop.height < 1.8 * h  # ... less what falls below the picture (340 px high).


# ---------------------------------------------------------------- end to end


def test_predict_reports_each_face_and_each_failed_input(exported_model, server, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    two_faces().save(folder / "two.jpg")
    two_faces().convert("L").save(folder / "gray.png")
    Image.new("RGB", (300, 300), (90, 90, 90)).save(folder / "blank.webp")
    (folder / "notes.jpg").write_text("not a photo")
    predictor = Predictor(exported_model)
    rows, errors = predict([str(folder), f"{server}/face.jpg", f"{server}/gone.jpg", "ftp://x/y.jpg"],
                           predictor, faces.Detector(), oversample=False, annotate_dir=str(tmp_path / "annotated"))
    assert [(os.path.basename(r["input"]), r["face"]) for r in rows] == [
        ("gray.png", 0), ("gray.png", 1), ("two.jpg", 0), ("two.jpg", 1), ("face.jpg", 0), ("face.jpg", 1)]
    for r in rows:
        assert r["age"] in predictor.class_names["age"] and r["gender"] in ("m", "f")
        assert 0 <= r["age_probability"] <= 1 and r["next_age"] != r["age"]
    assert {os.path.basename(s): m.split(" (")[0] for s, m in errors} == {
        "blank.webp": "no face found", "notes.jpg": "not an image", "gone.jpg": "HTTP error 404 Not Found",
        "y.jpg": "only http and https URLs are fetched, not ftp:"}
    assert sorted(os.listdir(tmp_path / "annotated")) == ["face.annotated.png", "gray.annotated.png",
                                                          "two.annotated.png"]


def test_no_detect_and_oversample(exported_model, tmp_path):
    drawn_face(5, size=64).save(tmp_path / "face.png")
    predictor = Predictor(exported_model)
    single, _ = predict([str(tmp_path / "face.png")], predictor, None, oversample=False)
    over, _ = predict([str(tmp_path / "face.png")], predictor, None, oversample=True)
    assert single[0]["box"] == over[0]["box"] == "0,0,64,64"
    assert over[0]["age_probability"] != single[0]["age_probability"]  # Ten crops, not one.


def test_command_line_formats_and_exit_status(exported_model, tmp_path):
    two_faces().save(tmp_path / "two.jpg")
    script = os.path.join(ROOT, "scripts", "predict.py")
    ok = subprocess.run([sys.executable, script, f"--model={exported_model}", "--format=json",
                         str(tmp_path / "two.jpg")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert len(json.loads(ok.stdout)) == 2
    bad = subprocess.run([sys.executable, script, f"--model={exported_model}", "--format=csv",
                          f"--output={tmp_path / 'out.csv'}", str(tmp_path / "two.jpg"), str(tmp_path / "none.jpg")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "none.jpg: no such file" in bad.stderr
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == ",".join(report.COLUMNS) and len(lines) == 3


def test_no_detect_as_the_readme_writes_it(exported_model, tmp_path):
    """`--no_detect` (README, docstring, flag help and the no-face message) on the command line."""
    drawn_face(5, size=64).save(tmp_path / "face.png")
    Image.new("RGB", (90, 70), (120, 120, 120)).save(tmp_path / "blank.png")  # No face for the cascade.
    script = os.path.join(ROOT, "scripts", "predict.py")
    result = subprocess.run([sys.executable, script, f"--model={exported_model}", "--no_detect", "--oversample",
                             "--format=json", str(tmp_path / "face.png"), str(tmp_path / "blank.png")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [row["box"] for row in json.loads(result.stdout)] == ["0,0,64,64", "0,0,90,70"]
    detected = subprocess.run([sys.executable, script, f"--model={exported_model}", str(tmp_path / "blank.png")],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert detected.returncode == 1 and "no face found (try --no_detect" in detected.stderr
