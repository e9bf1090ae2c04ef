"""Benchmarks prediction on a folder of face photos: one at a time vs batched, and where
the time goes with face detection on.

    python scripts/bench_predict.py --model=runs/demo/export
    python scripts/bench_predict.py --model=runs/demo/export --faces_dir=../shared/realfaces_dev/images

In one run, over the same --photos face photos (JPEG files; --faces_dir's, or drawn faces
written to a temporary folder):
(a) without detection (each photo is the face), one photo at a time:
    Predictor.predict(path) in a loop, what the page and a naive script do;
(b) the same photos through Predictor.predict_many: --workers threads read, decode and
    crop while the model runs on batches of --batch_size faces;
(c) with the detector on (--detector; auto: BlazeFace for a model trained on dataset crops),
    batched, and the share of one thread's time spent decoding, detecting and cropping,
    and in the model (measured stage by stage on the same photos).
Prints faces/s of each, then `batched/one_at_a_time: X.XX` last.
"""

import os
import tempfile
import time

import numpy as np
from absl import app, flags

from input_pipeline import faces
from input_pipeline.sources import synthetic_face
from serving import inputs
from serving.predictor import Predictor

flags.DEFINE_string("model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_string("faces_dir", "", "Face photos (JPEG); empty: drawn faces.")
flags.DEFINE_integer("photos", 512, "Photos timed per run.", lower_bound=8)
flags.DEFINE_integer("batch_size", 64, "Faces per model call, batched.", lower_bound=1)
flags.DEFINE_integer("workers", 2, "Threads reading and cropping, batched.", lower_bound=1)
flags.DEFINE_enum("detector", "auto", ["auto", *faces.DETECTORS], "Detector of run (c).")
FLAGS = flags.FLAGS


def photo_paths(folder):
    if FLAGS.faces_dir:
        names = sorted(n for n in os.listdir(FLAGS.faces_dir) if n.lower().endswith((".jpg", ".jpeg")))
        if not names:
            raise app.UsageError(f"no JPEG photos in {FLAGS.faces_dir}")
        return [os.path.join(FLAGS.faces_dir, names[i % len(names)]) for i in range(FLAGS.photos)]
    paths = []
    for seed in range(FLAGS.photos):
        rng = np.random.default_rng([seed, 7])
        photo = synthetic_face.draw_photo(rng, synthetic_face.make_person(rng, 4, seed % 2 == 0, 28.0), 28.0, 200)[0]
        paths.append(os.path.join(folder, f"{seed}.jpg"))
        photo.save(paths[-1], quality=90)
    return paths


def timed(fn):
    start = time.perf_counter()
    count = fn()
    return count, time.perf_counter() - start


def stage_shares(predictor, paths):
    """{stage: share of the time} of one thread doing each step in turn, photo by photo."""
    totals = dict.fromkeys(("decode", "detect", "crop", "model"), 0.0)
    for path in paths:
        t0 = time.perf_counter()
        pixels = inputs.pixels(path)
        t1 = time.perf_counter()
        found, _ = faces.detect(pixels, predictor.crop_spec)
        t2 = time.perf_counter()
        crops = [faces.canonical_crop(pixels, face, predictor.crop_spec, predictor.face_size) for face in found]
        t3 = time.perf_counter()
        if crops:
            predictor.probabilities(crops)
        t4 = time.perf_counter()
        for stage, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[stage] += seconds
    total = sum(totals.values())
    return {stage: seconds / total for stage, seconds in totals.items()}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with tempfile.TemporaryDirectory() as folder:
        paths = photo_paths(folder)
        whole = Predictor(FLAGS.model, detector=None, batch_size=FLAGS.batch_size)
        whole.predict(paths[0])  # Warm-up.
        alone, alone_s = timed(lambda: sum(len(whole.predict(p)) for p in paths))
        batched, batched_s = timed(lambda: sum(len(r.records) for r in whole.predict_many(paths, FLAGS.workers)))
        print(f"(a) one at a time, no detection: {alone / alone_s:7.1f} faces/s ({alone} faces)")
        print(f"(b) batched ({FLAGS.batch_size}) with {FLAGS.workers} threads, no detection: "
              f"{batched / batched_s:7.1f} faces/s")

        detecting = Predictor(FLAGS.model, detector=FLAGS.detector, batch_size=FLAGS.batch_size)
        detecting.predict(paths[0])
        found, found_s = timed(lambda: sum(len(r.records) for r in detecting.predict_many(paths, FLAGS.workers)))
        shares = stage_shares(detecting, paths[:64])
        print(f"(c) batched with {detecting.crop_spec.detector}: {found / found_s:7.1f} faces/s "
              f"({found} faces in {len(paths)} photos); one thread's time: "
              + ", ".join(f"{stage} {100 * share:.0f}%" for stage, share in shares.items()))
    print(f"batched/one_at_a_time: {(batched / batched_s) / (alone / alone_s):.2f}")


if __name__ == "__main__":
    app.run(main)
