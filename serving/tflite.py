"""An export as a TFLite model (uint8 faces of any size in, probabilities out), and a
check that the two predict the same class."""

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from input_pipeline import preprocess
from input_pipeline.reader import parse
from input_pipeline.reader.manifest import load_folds

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


def fold_faces(shards_dir, test_fold):
    """The stored uint8 faces of the test fold (one at a time: they may differ in size)."""
    _, _, test_files = load_folds(shards_dir, test_fold)
    for batch in tf.data.TFRecordDataset(test_files).batch(64).map(parse.parse):
        for encoded in batch["encoded"]:
            yield preprocess.decode_jpeg(encoded).numpy()


def agreement(saved_model_dir, tflite_model, output_names, faces):
    """{head: (faces on which the two agree, faces)}: the same predicted class for each
    `<head>_probabilities`, and for `age_years_expected` the same age within half a year."""
    loaded = tf.saved_model.load(saved_model_dir)
    saved = loaded.signatures[SIGNATURE]
    runner = tf.lite.Interpreter(model_content=tflite_model).get_signature_runner()
    same, total = {}, 0
    for face in faces:
        batch = face[None]
        reference = saved(images=tf.constant(batch))
        lite = runner(images=batch)
        for i, name in enumerate(output_names):
            if name.endswith("_expected"):  # age_years' expected age: the same within half a year.
                agrees = abs(float(reference[name].numpy()[0]) - float(lite[f"output_{i}"][0])) < 0.5
            else:
                agrees = reference[name].numpy().argmax() == lite[f"output_{i}"].argmax()
            key = name.removesuffix("_probabilities")
            same[key] = same.get(key, 0) + int(agrees)
        total += 1
    return {task: (n, total) for task, n in same.items()}
