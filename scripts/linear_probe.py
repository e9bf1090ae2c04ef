"""A floor for any model: ridge regression on downsampled pixels of a shard set.

    python scripts/linear_probe.py --shards_dir=data/tfrecords/adience_sample --test_fold=0

Trains a one-vs-rest ridge classifier on the faces of every fold but --test_fold,
resized to --pixels x --pixels, and prints its accuracy on --test_fold next to
always guessing the most common class there, for age (in --age_bins), gender and, where
the shards have it, race. Folds are
subject-disjoint, so this measures what the pixels say about unseen people. A CNN
that does not beat these numbers has learnt nothing.
"""

import os

import numpy as np
import tensorflow as tf
from absl import app, flags

from input_pipeline import labels, preprocess, schema
from input_pipeline.reader import parse
from input_pipeline.reader.manifest import load_manifest
from input_pipeline.reader.targets import make_targets

flags.DEFINE_string("shards_dir", "data/tfrecords/adience_sample", "A build_input output folder.")
flags.DEFINE_integer("test_fold", 0, "The fold held out.", lower_bound=0, upper_bound=4)
flags.DEFINE_integer("pixels", 24, "Side of the downsampled faces.", lower_bound=4)
flags.DEFINE_string("age_bins", "adience", "The age classes, as model.py's --age_bins.")
flags.DEFINE_float("l2", 10.0, "Ridge penalty.", lower_bound=0.0)
FLAGS = flags.FLAGS


def load(shards_dir, pixels, age_bins):
    """Flattened pixels, age bin, gender, race and fold of every face in a shard set."""
    manifest = load_manifest(shards_dir)
    paths = [os.path.join(shards_dir, name) for fold in manifest["folds"] for name in fold["files"]]
    targets = make_targets(age_bins, manifest["label_policy"])

    def features(serialized):
        example = parse.parse_example(serialized)
        image = preprocess.decode_jpeg(example[schema.ENCODED])
        image = tf.image.resize(image, (pixels, pixels), antialias=True) / 255.0
        found = targets({"age_low": example[schema.AGE_LOW], "age_high": example[schema.AGE_HIGH],
                         "gender": example[schema.GENDER], "race": example[schema.RACE]})
        return (tf.reshape(image, [-1]), tf.cast(found["age"], tf.int64), found["gender"], found["race"],
                example[schema.FOLD])

    data = tf.data.TFRecordDataset(paths).map(features, num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    parts = [np.concatenate(p) for p in zip(*[[t.numpy() for t in batch] for batch in data], strict=True)]
    return manifest, *parts


def ridge_accuracy(x, y, train, test, num_classes, l2):
    """Accuracy on `test` of a ridge fit on `train` (rows whose label is unknown are left out)."""
    train, test = train & (y >= 0), test & (y >= 0)
    mean = x[train].mean(0)
    xt = x[train] - mean
    targets = np.eye(num_classes)[y[train]]
    weights = np.linalg.solve(xt.T @ xt + l2 * np.eye(x.shape[1]), xt.T @ (targets - targets.mean(0)))
    predicted = ((x[test] - mean) @ weights).argmax(1)
    majority = np.bincount(y[test], minlength=num_classes).max() / test.sum()
    return (predicted == y[test]).mean(), majority, test.sum()


def main(argv):
    del argv
    age_bins = labels.parse_bins(FLAGS.age_bins)
    manifest, x, age, gender, race, fold = load(FLAGS.shards_dir, FLAGS.pixels, age_bins)
    train, test = fold != FLAGS.test_fold, fold == FLAGS.test_fold
    print(f"{FLAGS.shards_dir}: {len(x)} faces, test fold {FLAGS.test_fold}, {FLAGS.pixels}px ridge probe"
          + (" (SYNTHETIC sample)" if manifest.get("synthetic") else ""))
    for task, y, classes in (("age", age, age_bins.names), ("gender", gender, manifest["gender_classes"]),
                             ("race", race, manifest["race_classes"])):
        if not classes or not (y[test] >= 0).any():
            continue
        accuracy, majority, n = ridge_accuracy(x, y, train, test, len(classes), FLAGS.l2)
        print(f"{task}: accuracy {100 * accuracy:.1f}% vs majority class {100 * majority:.1f}% ({n} test faces)")


if __name__ == "__main__":
    app.run(main)
