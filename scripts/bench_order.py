"""Is a training batch a random sample of the training faces? Measured through the pipeline.

    python build_input.py --dataset=utkface     # UTKFace's file names start with the age
    python scripts/bench_order.py --shards_dir=data/tfrecords/utkface_sample --age_bins=utk12   # ~1 min, 2 cores
    python scripts/bench_order.py                # Adience's fold files group faces by person

It reads three epochs of training batches through make_train_dataset, as model.py does,
and names each face by its pixels. Then, over those batches:
- the spread (standard deviation over batches) of a batch's mean age in years (the middle
  of a stored range), and its lowest and highest value, against the same faces dealt
  into random batches (200 random orders): what sampling alone gives;
- people per batch (distinct subject ids) and the largest share of a batch that is one
  person, against random batches;
- the same for the faces in the order the shards store them (each file in turn): how
  build_input wrote them.
Then, for the training pipeline without a cache, with --cache=decoded in memory and in
files, the rank correlation between where the faces fall in two later epochs (about 0: a
new order every epoch; 1: the same order replayed).

Prints `batch_age_spread/random: X.XX` last (about 1: batches as mixed as random ones).
"""

import dataclasses
import hashlib
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO lines; warnings still show.

# ruff: noqa: E402 (imports after the environment set-up)
import numpy as np
import tensorflow as tf
from absl import app, flags

from input_pipeline import preprocess
from input_pipeline.config import DataConfig
from input_pipeline.reader import dataset, parse
from input_pipeline.reader.manifest import load_folds
from input_pipeline.reader.targets import make_targets

flags.DEFINE_string("shards_dir", DataConfig.shards_dir, "A build_input output folder.")
flags.DEFINE_integer("batch_size", DataConfig.batch_size, "Batch size.")
flags.DEFINE_string("age_bins", DataConfig.age_bins, "The age head's bins (model.py --age_bins): faces with an age "
                    "in one of them are the ones measured, as the age head trains on them.")
flags.DEFINE_integer("resize", 64, "Faces are compared at this size (0: as stored); it does not change the order.")
flags.DEFINE_integer("seed", 0, "Seed of the pipeline's shuffles and of the random batches.")
FLAGS = flags.FLAGS


def key(face):
    return hashlib.sha1(np.ascontiguousarray(face).tobytes()).digest()


def stored_faces(cfg, files, targets):
    """[(pixel key, age in years, subject)] of the training faces with an age bin (those
    the default age head trains on), in stored order (file by file)."""
    out = []
    for path in files:
        for batch in tf.data.TFRecordDataset(path).batch(256).map(parse.parse):
            images = [preprocess.resize(preprocess.decode_jpeg(jpeg), cfg.resize).numpy() for jpeg in batch["encoded"]]
            for image, low, high, subject, age_bin in zip(images, batch["age_low"].numpy(), batch["age_high"].numpy(),
                                                          batch["subject_id"].numpy(), targets(batch)["age"].numpy(),
                                                          strict=True):
                if age_bin >= 0:
                    out.append((key(image), (low + high) / 2, subject))
    return out


def epochs_of(cfg, files, targets, count, faces_per_epoch):
    """Pixel keys of `count` epochs of the training pipeline, in the order it gives them."""
    iterator = iter(dataset.make_train_dataset(cfg, files, targets))
    batches = -(-count * faces_per_epoch // cfg.batch_size)
    keys = [key(face) for _ in range(batches) for face in next(iterator)[0].numpy()]
    return [keys[i * faces_per_epoch:(i + 1) * faces_per_epoch] for i in range(count)]


def batch_figures(orders, info, batch_size):
    """(spread, lowest, highest of the batch mean age; mean people per batch; mean largest
    share of a batch that is one person) over the batches of each of `orders` (lists of
    pixel keys, each cut into batches)."""
    means, people, largest = [], [], []
    for order in orders:
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = [info[k] for k in order[start:start + batch_size]]
            means.append(np.mean([age for age, _ in batch]))
            _, counts = np.unique([subject for _, subject in batch], return_counts=True)
            people.append(len(counts))
            largest.append(counts.max() / batch_size)
    return float(np.std(means)), float(np.min(means)), float(np.max(means)), float(np.mean(people)), float(
        np.mean(largest))


def rank_correlation(first, second):
    """Spearman's correlation of the positions of the faces the two epochs share."""
    where = {k: i for i, k in enumerate(second)}
    pairs = np.array([(i, where[k]) for i, k in enumerate(first) if k in where], dtype=np.float64)
    return float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])


def main(argv):
    del argv
    cfg = DataConfig(shards_dir=FLAGS.shards_dir, image_size=min(FLAGS.resize or 227, 227), resize=FLAGS.resize,
                     batch_size=FLAGS.batch_size, val_fraction=0.0, seed=FLAGS.seed, age_bins=FLAGS.age_bins)
    manifest, files, _ = load_folds(cfg.shards_dir, cfg.test_fold)
    targets = make_targets(cfg.bins, manifest["label_policy"])
    stored = stored_faces(cfg, files, targets)
    info = {k: (age, subject) for k, age, subject in stored}
    print(f"bench_order: {cfg.shards_dir}, {len(stored)} training faces with an age ({len(stored) - len(info)} share "
          f"their pixels with another), {len(set(s for *_, s in stored))} people, batch {cfg.batch_size}, written "
          f"{'in a seeded random order' if manifest.get('write_order') else 'in the source order'}")
    pipeline = epochs_of(cfg, files, targets, 3, len(stored))
    rng = np.random.default_rng(FLAGS.seed)
    keys = [k for k, *_ in stored]
    orders = {"training pipeline": pipeline,
              "random batches": [[keys[i] for i in rng.permutation(len(keys))] for _ in range(200)],
              "as stored": [keys]}
    print(f"{'':20s} {'age spread':>10s} {'lowest':>7s} {'highest':>7s} {'people':>7s} {'one person':>10s}")
    figures = {}
    for name, order in orders.items():
        figures[name] = batch_figures(order, info, cfg.batch_size)
        spread, low, high, people, largest = figures[name]
        print(f"{name:20s} {spread:9.2f}y {low:6.1f}y {high:6.1f}y {people:7.1f} {100 * largest:9.1f}%")
    folder = tempfile.mkdtemp(prefix="bench_order_")
    try:
        for name, changes in (("no cache", {}), ("decoded, memory", {"cache": "decoded"}),
                              ("decoded, files", {"cache": "decoded", "cache_dir": folder})):
            later = epochs_of(dataclasses.replace(cfg, **changes), files, targets, 3, len(stored))[1:]
            print(f"epoch 2 vs 3, {name}: rank correlation of positions {rank_correlation(*later):+.3f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"batch_age_spread/random: {figures['training pipeline'][0] / figures['random batches'][0]:.2f}")
    print(f"batch_one_person_share/random: {figures['training pipeline'][4] / figures['random batches'][4]:.2f}")


if __name__ == "__main__":
    app.run(main)
