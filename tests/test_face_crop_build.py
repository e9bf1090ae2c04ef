"""build_input.py --face_crop=detect: faces found and framed at build time exactly as
prediction frames them, skipped images counted and named, the framing recorded."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from datasets import read_all
from face_photos import NO_REAL_FACES, have_real_faces, real_faces
from input_pipeline import faces, schema
from input_pipeline.config import BuildConfig
from input_pipeline.writer import build, encode
from processes import ROOT
from serving import metadata
from serving.predictor import Predictor


def manifest_of(shards):
    with open(os.path.join(shards, "manifest.json")) as f:
        return json.load(f)


def test_images_without_one_face_are_counted_and_named(detect_export):
    shards, _ = detect_export
    manifest = manifest_of(shards)
    assert manifest["num_examples"] == 10  # Five JPEGs and five PNGs, one face each.
    assert manifest["skipped"]["by_reason"] == {"no_face": 1, "several_faces": 1}
    skipped = open(os.path.join(shards, "skipped.csv")).read().splitlines()
    assert skipped[1:] == ["0,labels.csv:12,blank.jpg,no_face,haar found no face",
                           "1,labels.csv:13,two.jpg,several_faces,2 faces of similar size"]
    assert manifest["face_crop"] == {**faces.CropSpec(detector="haar").as_dict(), "method": "detect"}


def test_the_build_and_prediction_crop_the_same_pixels(face_photos_csv, detect_export):
    data_dir, _ = face_photos_csv
    shards, export_dir = detect_export
    predictor = Predictor(export_dir)
    assert predictor.warning == "" and predictor.crop_spec == faces.CropSpec(detector="haar")
    assert metadata.read(export_dir).face_crop["image_size"] == predictor.face_size == 48
    stored = {ex[schema.FILENAME].numpy().decode(): ex[schema.ENCODED].numpy()
              for ex in read_all(shards, manifest_of(shards))}
    crops = {}
    for name in ("face1.jpg", "face3.png"):
        data = open(os.path.join(data_dir, name), "rb").read()
        built = encode.face_pixels(data, 48, faces.CropSpec(detector="haar"))
        ((_, status, predicted),) = predictor.faces(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        assert status == "ok"
        np.testing.assert_array_equal(built, predicted)  # The very same pixels ...
        crops[name] = (built.astype(int), np.asarray(Image.open(io.BytesIO(stored[name]))).astype(int))
    # ... and the stored JPEG of them, up to JPEG's loss (its 4:2:0 chroma on a 48-pixel
    # drawing), far below the difference between two faces.
    for name, (built, jpeg) in crops.items():
        assert np.abs(jpeg - built).mean() < 4
        other = next(c for n, (c, _) in crops.items() if n != name)
        assert np.abs(jpeg - other).mean() > 20


def test_the_command_line(face_photos_csv, tmp_path):
    data_dir, csv_file = face_photos_csv
    base = [sys.executable, "build_input.py", "--dataset=csv", f"--data_dir={data_dir}", f"--csv_file={csv_file}",
            "--label_policy=nearest", "--face_crop=detect", "--detector=haar"]
    ok = subprocess.run(base + [f"--output_dir={tmp_path / 'out'}", "--image_size=64", "--num_workers=2"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "skipped 2 of 12 rows (no_face 1, several_faces 1)" in ok.stdout
    assert manifest_of(str(tmp_path / "out"))["image_size"] == 64
    bad = subprocess.run(base + [f"--output_dir={tmp_path / 'bad'}", "--image_size=0"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--face_crop=detect stores new crops, so it needs --image_size > 0" in bad.stderr


def test_haar_builds_load_no_tensorflow(face_photos_csv, tmp_path):
    data_dir, _ = face_photos_csv
    code = ("import sys\nfrom input_pipeline import faces\nfrom input_pipeline.writer import encode\n"
            f"data = open({os.path.join(data_dir, 'face1.jpg')!r}, 'rb').read()\n"
            "assert encode.face_pixels(data, 32, faces.CropSpec(detector='haar')).shape == (32, 32, 3)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'mtcnn')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.skipif(not have_real_faces(), reason=NO_REAL_FACES)
@pytest.mark.parametrize("detector", ["blazeface", "mtcnn"])
def test_landmark_detectors_build_real_faces(detector, tmp_path):
    rows = real_faces(10)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,age,gender\n" + "".join(f"{p},{a},{g}\n" for p, a, g, _ in rows))
    manifest = build.build(BuildConfig(dataset="csv", data_dir=str(tmp_path), csv_file=str(csv_file),
                                       output_dir=str(tmp_path / "out"), image_size=96, face_crop="detect",
                                       detector=detector, label_policy="nearest", num_shards=1, num_workers=1))
    assert manifest["num_examples"] == 10 and manifest["face_crop"]["detector"] == detector
