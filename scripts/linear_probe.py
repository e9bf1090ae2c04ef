"""A floor for any model: ridge regression on downsampled pixels of a shard set.

    python scripts/linear_probe.py --shards_dir=data/tfrecords/adience_sample --test_fold=0

Trains a one-vs-rest ridge classifier on the faces of every fold but --test_fold,
resized to --pixels x --pixels, and prints its accuracy on --test_fold next to
always guessing the most common class there, for age and for gender. Folds are
subject-disjoint, so this measures what the pixels say about unseen people. A CNN
that does not beat these numbers has learnt nothing.
"""

import os

import numpy as np
import tensorflow as tf
from absl import app, flags

from input_pipeline import preprocess, schema
from input_pipeline.reader import parse
from input_pipeline.reader.manifest import load_manifest

flags.DEFINE_string("shards_dir", "data/tfrecords/adience_sample", "A build_input output folder.")
flags.DEFINE_integer("test_fold", 0, "The fold held out.", lower_bound=0, upper_bound=4)
flags.DEFINE_integer("pixels", 24, "Side of the downsampled faces.", lower_bound=4)
flags.DEFINE_float("l2", 10.0, "Ridge penalty.", lower_bound=0.0)
FLAGS = flags.FLAGS


def load(shards_dir, pixels):
    """Flattened pixels, age, gender and fold of every face in a shard set."""
    manifest = load_manifest(shards_dir)
    paths = [os.path.join(shards_dir, name) for fold in manifest["folds"] for name in fold["files"]]

    def features(serialized):
        example = parse.parse_example(serialized)
        image = preprocess.decode_jpeg(example[schema.ENCODED])
        image = tf.image.resize(image, (pixels, pixels), antialias=True) / 255.0
        return tf.reshape(image, [-1]), example[schema.AGE], example[schema.GENDER], example[schema.FOLD]

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
    manifest, x, age, gender, fold = load(FLAGS.shards_dir, FLAGS.pixels)
    train, test = fold != FLAGS.test_fold, fold == FLAGS.test_fold
    print(f"{FLAGS.shards_dir}: {len(x)} faces, test fold {FLAGS.test_fold}, {FLAGS.pixels}px ridge probe"
          + (" (SYNTHETIC sample)" if manifest.get("synthetic") else ""))
    for task, labels, classes in (("age", age, manifest["age_classes"]),
                                  ("gender", gender, manifest["gender_classes"])):
        accuracy, majority, n = ridge_accuracy(x, labels, train, test, len(classes), FLAGS.l2)
        print(f"{task}: accuracy {100 * accuracy:.1f}% vs majority class {100 * majority:.1f}% ({n} test faces)")


if __name__ == "__main__":
    app.run(main)
