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

from face_photos import HAAR_SEEDS, NO_REAL_FACES, TWO_FACE_SEEDS, drawn_face, have_real_faces, real_faces, two_faces
from processes import ROOT
from serving import photos, report
from serving.predictor import NO_FACE, Predictor


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


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def haar_predictor(exported_model):
    return Predictor(exported_model, detector="haar")


def test_predict_many_reports_each_face_and_each_failed_input(haar_predictor, server, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    two_faces().save(folder / "two.jpg")
    two_faces().convert("L").save(folder / "gray.png")
    Image.new("RGB", (300, 300), (90, 90, 90)).save(folder / "blank.webp")
    (folder / "notes.jpg").write_text("not a photo")
    sources = [*photos.expand([str(folder)]), f"{server}/face.jpg", f"{server}/gone.jpg", "ftp://x/y.jpg"]
    results = list(haar_predictor.predict_many(sources, workers=2, keep_pixels=True))
    assert [os.path.basename(r.input) for r in results] == [
        "blank.webp", "gray.png", "notes.jpg", "two.jpg", "face.jpg", "gone.jpg", "y.jpg"]
    records = [rec for r in results for rec in r.records]
    assert [(os.path.basename(r["input"]), r["face"]) for r in records] == [
        ("gray.png", 0), ("gray.png", 1), ("two.jpg", 0), ("two.jpg", 1), ("face.jpg", 0), ("face.jpg", 1)]
    for rec in records:
        assert set(rec) == {"input", "face", "box", "status", "age", "gender"} and rec["status"] == "ok"
        for head in ("age", "gender"):
            assert rec[head]["label"] in haar_predictor.class_names[head]
            assert list(rec[head]["probabilities"]) == haar_predictor.class_names[head]  # Class order.
            assert sum(rec[head]["probabilities"].values()) == pytest.approx(1, abs=1e-3)
            assert rec[head]["probability"] == max(rec[head]["probabilities"].values())
    assert {os.path.basename(r.input): r.error.split(" (")[0] for r in results if r.error} == {
        "blank.webp": "no face found", "notes.jpg": "not an image", "gone.jpg": "HTTP error 404 Not Found",
        "y.jpg": "only http and https URLs are fetched, not ftp:"}
    assert results[3].pixels.shape == (340, 700, 3)  # Kept for annotating.
    by_folder = [r.input for r in haar_predictor.predict_many([str(folder)], workers=0)]
    assert by_folder == sources[:4]  # A folder stands for its image files.


def test_batched_and_one_at_a_time_give_the_same_records(haar_predictor, tmp_path):
    paths = []
    for seed in HAAR_SEEDS[:6]:
        paths.append(str(tmp_path / f"{seed}.png"))
        drawn_face(seed, 200).save(paths[-1])
    batched = [rec for r in haar_predictor.predict_many(paths, workers=2) for rec in r.records]
    alone = [rec for path in paths for rec in haar_predictor.predict(path)]
    assert len(batched) == len(alone) == 6
    for a, b in zip(batched, alone, strict=True):
        assert a["box"] == b["box"] and a["age"]["label"] == b["age"]["label"]
        for head in ("age", "gender"):
            np.testing.assert_allclose(list(a[head]["probabilities"].values()),
                                       list(b[head]["probabilities"].values()), atol=2e-4)


def test_the_api_takes_every_kind_of_input_and_gives_the_same_answer(haar_predictor, server, tmp_path):
    image = two_faces()
    path = tmp_path / "two.png"
    image.save(path)
    data = encoded(image, "PNG")
    pixels = np.asarray(image)
    expected = haar_predictor.predict(str(path))
    assert len(expected) == 2
    for x in (path, data, bytearray(data), image, image.convert("RGBA"), pixels, [pixels], np.stack([pixels])):
        got = haar_predictor.predict(x)
        assert [(r["box"], r["age"]["label"], r["gender"]["label"]) for r in got] == \
               [(r["box"], r["age"]["label"], r["gender"]["label"]) for r in expected], type(x)
    assert [r["input"] for r in haar_predictor.predict([data, pixels])] == ["bytes[0]"] * 2 + ["array[1]"] * 2
    assert len(haar_predictor.predict(f"{server}/face.jpg")) == 2  # A URL.
    gray = haar_predictor.predict(np.asarray(image.convert("L")))
    assert [r["box"] for r in gray] == [r["box"] for r in expected]
    assert haar_predictor.predict(np.full((50, 50, 3), 90, np.uint8)) == []  # No face: no record.


@pytest.mark.parametrize("x,error,message", [
    (np.zeros((20, 20, 3), np.float32), ValueError, "must be uint8"),
    (np.zeros((20, 20, 4), np.uint8), ValueError, "must be .H, W, 3. RGB"),
    (np.zeros((0, 20, 3), np.uint8), ValueError, "empty image"),
    (42, TypeError, "cannot predict on a int; give a path or http"),
    ({"photo": 1}, TypeError, "cannot predict on a dict"),
    (b"not an image", photos.PhotoError, "bytes: not an image"),
    ("/no/such/photo.jpg", photos.PhotoError, "/no/such/photo.jpg: no such file"),
])
def test_the_api_rejects_bad_input_clearly(haar_predictor, x, error, message):
    with pytest.raises(error, match=message):
        haar_predictor.predict(x)


def test_whole_images_and_oversampling(exported_model, tmp_path):
    face = drawn_face(5, size=64)
    single = Predictor(exported_model, detector=None).predict(face)
    over = Predictor(exported_model, detector=None, oversample=True).predict(face)
    assert single[0]["box"] == over[0]["box"] == [0, 0, 64, 64]
    # Ten crops, not one: compared unrounded (the records round to 4 places, which a model
    # trained 2 steps, nearly sure of one class, can give both alike).
    predictor = Predictor(exported_model, detector=None)
    one, ten = predictor.probabilities([face])["age"], predictor.probabilities([face], oversample=True)["age"]
    assert not np.array_equal(one, ten)
    np.testing.assert_allclose(ten.sum(axis=1), 1.0, rtol=1e-5)


def test_small_faces_are_reported_not_guessed(exported_model):
    predictor = Predictor(exported_model, detector="haar", min_face_size=1000)
    (result,) = predictor.predict_many([("two", np.asarray(two_faces()))], workers=0)
    assert [r["status"] for r in result.records] == ["too_small", "too_small"]
    assert all(r["age"] is None and r["gender"] is None for r in result.records)
    assert result.error.startswith("2 face(s) found, all under 1000 pixels: too small") and not result.unreadable
    assert [r["status"] for r in predictor.predict(two_faces())] == ["too_small", "too_small"]  # Not an error.


def test_a_model_trained_on_dataset_crops_warns_that_framing_differs(exported_model, caplog):
    assert "TRAINED ON THE DATASET'S OWN FACE CROPS" in Predictor(exported_model).warning
    assert Predictor(exported_model).crop_spec.detector == "blazeface"  # auto: the default detector's crop.
    assert Predictor(exported_model, detector=None).warning == ""


def test_blazeface_and_mtcnn_frame_alike_and_haar_does_not():
    from input_pipeline import faces
    from serving.predictor import framing

    trained = faces.CropSpec(detector="mtcnn").as_dict()
    assert framing(trained, "auto", None) == (faces.CropSpec(detector="mtcnn"), "")
    assert framing(trained, "blazeface", None) == (faces.CropSpec(detector="blazeface"), "")
    spec, warning = framing(trained, "haar", None)
    assert spec.detector == "haar" and "trained on faces found by mtcnn; haar frames them differently" in warning


def test_every_head_is_a_column():
    names = {"age": ["a", "b", "c"], "gender": ["m", "f"], "race": ["x", "y", "z", "w"]}
    rec = report.record("p.jpg", 0, (1, 2, 3, 4), {"age": [0.2, 0.5, 0.3], "gender": [0.9, 0.1],
                                                  "race": [0.1, 0.2, 0.3, 0.4]}, names)
    assert report.columns(names) == ["input", "face", "box", "status", "age", "age_probability", "next_age",
                                     "next_age_probability", "gender", "gender_probability", "race",
                                     "race_probability", "next_race", "next_race_probability"]
    assert report.columns(names, unsure=True)[4:9] == ["age", "age_probability", "next_age", "next_age_probability",
                                                       "age_unsure"]
    row = report.flatten(rec, names)
    assert (row["age"], row["next_age"], row["gender"], row["race"], row["next_race"]) == ("b", "c", "m", "w", "z")
    table = report.render([rec], "table", names).splitlines()
    assert table[0].split() == ["input", "face", "box", "status", "age", "age", "p", "next_age", "next_age", "p",
                                "gender", "gender", "p", "race", "race", "p", "next_race", "next_race", "p"]


def test_command_line_formats_and_exit_status(exported_model, tmp_path):
    two_faces().save(tmp_path / "two.jpg")
    script = os.path.join(ROOT, "scripts", "predict.py")
    ok = subprocess.run([sys.executable, script, f"--model={exported_model}", "--detector=haar", "--format=json",
                         str(tmp_path / "two.jpg")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert len(json.loads(ok.stdout)) == 2
    bad = subprocess.run([sys.executable, script, f"--model={exported_model}", "--detector=haar", "--format=csv",
                          f"--output={tmp_path / 'out.csv'}", f"--annotate_dir={tmp_path / 'annotated'}",
                          str(tmp_path / "two.jpg"), str(tmp_path / "none.jpg")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "none.jpg: no such file" in bad.stderr
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0].split(",")[:6] == ["input", "face", "box", "status", "age", "age_probability"]
    assert len(lines) == 3 and "gender_probability" in lines[0]
    assert os.listdir(tmp_path / "annotated") == ["two.annotated.png"]


def test_no_detect_as_the_docs_write_it(exported_model, tmp_path):
    """`--no_detect` (docs/4-real-photos-and-serving.md, the docstring, the flag's help and the
    no-face message) on the command line."""
    drawn_face(5, size=64).save(tmp_path / "face.png")
    Image.new("RGB", (90, 70), (120, 120, 120)).save(tmp_path / "blank.png")  # No face for a detector.
    script = os.path.join(ROOT, "scripts", "predict.py")
    result = subprocess.run([sys.executable, script, f"--model={exported_model}", "--no_detect", "--oversample",
                             "--format=json", str(tmp_path / "face.png"), str(tmp_path / "blank.png")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [row["box"] for row in json.loads(result.stdout)] == [[0, 0, 64, 64], [0, 0, 90, 70]]
    detected = subprocess.run([sys.executable, script, f"--model={exported_model}", str(tmp_path / "blank.png")],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert detected.returncode == 1 and f"blank.png: {NO_FACE}" in detected.stderr
    assert "TRAINED ON THE DATASET'S OWN FACE CROPS" in detected.stderr  # Loud.


@pytest.mark.skipif(not have_real_faces(), reason=NO_REAL_FACES)
def test_real_faces_are_found_by_the_default_detector(exported_model):
    paths = [path for path, *_ in real_faces(8)]
    results = list(Predictor(exported_model).predict_many(paths))
    assert [len(r.records) for r in results] == [1] * 8, [r.error for r in results]


# ---------------------------------------------------------------- video


def write_clip(path, frames=20, fps=10):
    """Face A slides right for 2 s; face B joins it after 1 s."""
    import cv2

    a, b = (np.asarray(drawn_face(seed, 200)) for seed in TWO_FACE_SEEDS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (460, 220))
    for i in range(frames):
        frame = np.full((220, 460, 3), 200, np.uint8)
        frame[10:210, 2 * i:200 + 2 * i] = a
        if i >= frames // 2:
            frame[10:210, 250:450] = b
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_faces_are_tracked_and_averaged(exported_model, tmp_path):
    import cv2

    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    script = os.path.join(ROOT, "scripts", "predict.py")
    result = subprocess.run([sys.executable, script, f"--model={exported_model}", "--detector=haar",
                             "--every_seconds=0.5", f"--annotate_dir={tmp_path / 'out'}", "--format=json", str(clip)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    tracks = json.loads(result.stdout)
    assert [(t["face"], t["first_seconds"], t["last_seconds"], t["frames"]) for t in tracks] == [
        (0, 0.0, 1.5, 4), (1, 1.0, 1.5, 2)]
    assert all(t["age"]["label"] in t["age"]["probabilities"] and t["gender"] for t in tracks)
    annotated = cv2.VideoCapture(str(tmp_path / "out" / "clip.annotated.mp4"))
    assert annotated.get(cv2.CAP_PROP_FRAME_COUNT) == 4 and annotated.get(cv2.CAP_PROP_FRAME_WIDTH) == 460
    table = subprocess.run([sys.executable, script, f"--model={exported_model}", "--detector=haar", str(clip),
                            str(tmp_path / "missing.mp4")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert table.returncode == 1 and "missing.mp4: no such file" in table.stderr
    assert table.stdout.split("\n")[0].split()[:7] == ["input", "face", "box", "status", "first", "s", "last"]


def test_the_tracker_follows_overlapping_boxes_and_ends_lost_tracks():
    from serving import report, video

    names = {"gender": ["m", "f"]}

    def face(x, p):
        return report.record("v", 0, (x, 0, 100, 100), {"gender": [p, 1 - p]}, names)

    tracker = video.Tracker()
    assert tracker.update(0.0, [face(0, 0.8)]) == [0]
    assert tracker.update(1.0, [face(30, 0.6), face(300, 0.1)]) == [0, 1]  # Overlaps 0; a new face.
    for t in (2.0, 3.0, 4.0):
        tracker.update(t, [face(300, 0.1)])  # Face 0 unseen for 3 samples: its track ends.
    assert tracker.update(5.0, [face(30, 0.9)]) == [2]
    first = tracker.tracks[0].record("v", names)
    assert (first["first_seconds"], first["last_seconds"], first["frames"]) == (0.0, 1.0, 2)
    assert first["gender"]["probabilities"] == {"m": 0.7, "f": 0.3}  # The mean over its frames.


def test_unsure_is_set_exactly_below_the_threshold():
    heads = {"gender": ["m", "f"], "age": ["young", "middle", "old"]}
    probabilities = {"gender": np.array([0.3, 0.7]), "age": np.array([0.5, 0.3, 0.2])}
    at = report.record("x.jpg", 0, (0, 0, 1, 1), probabilities, heads, min_confidence=0.7)
    assert at["gender"]["unsure"] is False and at["age"]["unsure"] is True  # 0.7 is not below 0.7; 0.5 is.
    above = report.record("x.jpg", 0, (0, 0, 1, 1), probabilities, heads, min_confidence=0.7000001)
    assert above["gender"]["unsure"] is True
    never = report.record("x.jpg", 0, (0, 0, 1, 1), probabilities, heads)
    assert never["gender"]["unsure"] is None and never["age"]["unsure"] is None  # No threshold: not asked.
    row = report.flatten(at, heads)
    assert row["age_unsure"] == "unsure" and row["gender_unsure"] == ""
    assert report.label(at) == "f young?"  # In the record's head order: gender, then age.
    assert "age_unsure" in report.columns(heads, unsure=True) and "age_unsure" not in report.columns(heads)
    shown = report.record("x.jpg", 0, (0, 0, 1, 1), {"gender": np.array([0.79996, 0.20004])}, {"gender": ["m", "f"]},
                          min_confidence=0.8)
    assert shown["gender"]["probability"] == 0.8 and shown["gender"]["unsure"] is False  # As shown, not below.
    only_age = report.record("x.jpg", 0, (0, 0, 1, 1), probabilities, heads, min_confidence="age=0.6")
    assert only_age["age"]["unsure"] is True and only_age["gender"]["unsure"] is None


def test_min_confidence_takes_one_number_or_one_per_head():
    assert report.thresholds("0.5,gender=0.8") == {"age": 0.5, "gender": 0.8, "race": 0.5}
    assert report.thresholds("gender=0.8,0.5") == report.thresholds("0.5,gender=0.8")  # Named heads win.
    assert report.thresholds(0.7) == {"age": 0.7, "gender": 0.7, "race": 0.7}
    assert report.thresholds("") == report.thresholds(0) == report.thresholds("age=0") == {}
    for bad, message in (("eyes=0.5", "'eyes' is not a class head"), ("1.5", "not between 0 and 1"),
                         ("age_years=0.5", "'age_years' is not a class head"), ("sure", "not a probability"),
                         ("gender=0.8,gender=0.3", "gender given twice"), ("0.5,0.9", "every head given twice")):
        with pytest.raises(ValueError, match=message):
            report.thresholds(bad)


def test_predict_py_marks_unsure_answers(exported_model, tmp_path):
    path = str(tmp_path / "face.jpg")
    drawn_face(5, size=64).save(path)
    common = [sys.executable, os.path.join(ROOT, "scripts", "predict.py"), f"--model={exported_model}",
              "--no_detect", "--format=json", path]
    bad = subprocess.run([*common, "--min_confidence=gender=high"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "'gender=high' is not a probability" in bad.stderr, bad.stderr[-2000:]
    for threshold, expected in (("1.0", True), ("0.0", None)):
        result = subprocess.run([*common, f"--min_confidence={threshold}"], cwd=ROOT, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        (rec,) = json.loads(result.stdout)
        assert rec["age"]["unsure"] is expected  # The 8-group head is never sure to the last bit.
        assert threshold == "1.0" or rec["gender"]["unsure"] is None
