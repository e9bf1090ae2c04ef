"""Converts an exported model to TFLite and checks that the two agree.

    python scripts/export_tflite.py --saved_model=runs/demo/export

Writes <saved_model>/model.tflite (uint8 faces of any size in, class probabilities out,
as the SavedModel's `serve_probabilities` signature; only TFLite's built-in ops) and
model.tflite.json (its outputs' names in order, class names, sizes), then runs the
SavedModel and the TFLite model on every face of one fold of --shards_dir (--test_fold;
any fold will do, trained on or not: this checks that the two agree, not how right they are) and
prints the share of faces with the same predicted class (for age_years: the same
expected age within half a year) on each output (serving/tflite.py). Exits
non-zero when that share is below --min_agreement.
"""

import dataclasses
import os
import sys

from absl import app, flags

from input_pipeline.config import DataConfig
from serving import metadata, tflite

flags.DEFINE_string("saved_model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_string("tflite_file", "", "The .tflite file to write; empty: <saved_model>/model.tflite.")
flags.DEFINE_string("shards_dir", DataConfig.shards_dir, "The shard set whose faces the agreement is checked on.")
flags.DEFINE_integer("test_fold", DataConfig.test_fold, "The fold of it the two models are run on (any: agreement, not accuracy).", lower_bound=0, upper_bound=4)
flags.DEFINE_float("min_agreement", 0.99, "Least share of faces on which the two agree, on every output.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    output = FLAGS.tflite_file or os.path.join(FLAGS.saved_model, "model.tflite")
    try:
        info = metadata.read(FLAGS.saved_model)
    except (OSError, ValueError) as e:
        raise app.UsageError(str(e)) from None
    tflite_model, output_names = tflite.convert(FLAGS.saved_model)
    with open(output, "wb") as f:
        f.write(tflite_model)
    outputs = {f"output_{i}": name for i, name in enumerate(output_names)}
    # Without trained_on: a file to deploy need not carry the training data's paths.
    metadata.write(output + ".json", dataclasses.replace(info, trained_on={}), outputs=outputs,
                   input="images: uint8 [N, H, W, 3], any H and W (resized and centre-cropped inside)")
    print(f"wrote {output} ({len(tflite_model) / 2**20:.1f} MiB) and {output}.json; outputs {outputs}")
    faces = tflite.fold_faces(FLAGS.shards_dir, FLAGS.test_fold)
    worst = 1.0
    for head, (same, total) in tflite.agreement(FLAGS.saved_model, tflite_model, output_names, faces).items():
        share = same / max(total, 1)
        worst = min(worst, share)
        what = "same age within half a year" if head.endswith("_expected") else "same predicted class"
        print(f"{head}: {what} for {same}/{total} faces of fold {FLAGS.test_fold} ({100 * share:.1f}%)")
    if worst < FLAGS.min_agreement:
        sys.exit(f"export_tflite: agreement {100 * worst:.1f}% is below {100 * FLAGS.min_agreement:.0f}%")


if __name__ == "__main__":
    app.run(main)
