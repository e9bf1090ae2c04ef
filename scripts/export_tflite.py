"""Converts an exported model to TFLite and checks that the two agree.

    python scripts/export_tflite.py --saved_model=runs/demo/export

Writes <saved_model>/model.tflite (uint8 faces of any size in, class probabilities out, as the
SavedModel's `serve_probabilities` signature) and model.tflite.json (its outputs' names
in order, class names, sizes),
then runs the SavedModel and the TFLite model on every face of the test fold of
--shards_dir and prints the share of faces with the same predicted class. Exits
non-zero when that share is below --min_agreement.
"""

import json
import os
import sys

import tensorflow as tf
from absl import app, flags
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import model  # noqa: E402,F401  (after the path set-up; --shards_dir and --test_fold are model.py's flags)
from input_pipeline import dataset, decode  # noqa: E402

flags.DEFINE_string("saved_model", "runs/demo/export", "A SavedModel exported by model.py.")
flags.DEFINE_string("tflite_file", "", "The .tflite file to write; empty: <saved_model>/model.tflite.")
flags.DEFINE_float("min_agreement", 0.99, "Least share of faces with the same predicted class.")
FLAGS = flags.FLAGS
SIGNATURE = "serve_probabilities"


def convert(saved_model_dir):
    """(TFLite model bytes, names of its outputs output_0, output_1, ... in order).

    The signature is frozen first: converted as it is, the Keras 3 weights stay
    resource variables that the TFLite interpreter leaves uninitialised (NaN outputs).
    """
    loaded = tf.saved_model.load(saved_model_dir)  # Held: its variables must outlive the freezing.
    function = loaded.signatures[SIGNATURE]
    frozen = convert_variables_to_constants_v2(function)
    tflite_model = tf.lite.TFLiteConverter.from_concrete_functions([frozen], loaded).convert()
    return tflite_model, sorted(function.structured_outputs)  # Dict outputs flatten in key order.


def test_faces(shards_dir, test_fold):
    """The stored uint8 faces of the test fold (one at a time: they may differ in size)."""
    _, _, test_files = dataset.load_folds(shards_dir, test_fold)
    for batch in tf.data.TFRecordDataset(test_files).batch(64).map(decode.parse):
        for encoded in batch["encoded"]:
            yield decode.decode_image(encoded).numpy()


def agreement(saved_model_dir, tflite_model, output_names, faces):
    """{task: (faces with the same predicted class, faces)}."""
    loaded = tf.saved_model.load(saved_model_dir)
    saved = loaded.signatures[SIGNATURE]
    runner = tf.lite.Interpreter(model_content=tflite_model).get_signature_runner()
    same, total = {}, 0
    for face in faces:
        batch = face[None]
        reference = saved(images=tf.constant(batch))
        lite = runner(images=batch)
        for i, name in enumerate(output_names):
            task = name.removesuffix("_probabilities")
            same[task] = same.get(task, 0) + int(reference[name].numpy().argmax() == lite[f"output_{i}"].argmax())
        total += 1
    return {task: (n, total) for task, n in same.items()}


def main(argv):
    del argv
    output = FLAGS.tflite_file or os.path.join(FLAGS.saved_model, "model.tflite")
    tflite_model, output_names = convert(FLAGS.saved_model)
    with open(output, "wb") as f:
        f.write(tflite_model)
    with open(os.path.join(FLAGS.saved_model, "metadata.json")) as f:
        metadata = json.load(f)
    metadata.update(input="images: uint8 [N, H, W, 3], any H and W (resized and centre-cropped inside)",
                    outputs={f"output_{i}": name for i, name in enumerate(output_names)})
    with open(output + ".json", "w") as f:
        json.dump(metadata, f, indent=2)
    print(f"wrote {output} ({len(tflite_model) / 2**20:.1f} MiB) and {output}.json; outputs {metadata['outputs']}")
    result = agreement(FLAGS.saved_model, tflite_model, output_names, test_faces(FLAGS.shards_dir, FLAGS.test_fold))
    worst = 1.0
    for task, (same, total) in result.items():
        share = same / max(total, 1)
        worst = min(worst, share)
        print(f"{task}: same predicted class for {same}/{total} test faces ({100 * share:.1f}%)")
    if worst < FLAGS.min_agreement:
        sys.exit(f"export_tflite: agreement {100 * worst:.1f}% is below {100 * FLAGS.min_agreement:.0f}%")


if __name__ == "__main__":
    app.run(main)
