"""The exported SavedModel: what inference needs without this project's code.

Four signatures, all cropping with input_pipeline/preprocess.py as evaluation does:
    serving_default      JPEG bytes [N] -> probabilities and class names per head
    serve_images         uint8 faces [N, H, W, 3] of any size -> the same
    serve_probabilities  as serve_images, numbers only (TFLite has no string outputs)
    serve_crops          uint8 crops already at the model's input size -> probabilities
and metadata.json beside it (serving/metadata.py). Each head gives `<head>_probabilities`;
a class head also `<head>_classes` (not in the numbers-only signatures), and age_years
`age_years_expected`, the expected age in years (DEX).
"""

import os

import keras
import tensorflow as tf

import architectures
from architectures.heads import expected_years, logits_of, probabilities_of
from input_pipeline import preprocess
from serving import metadata

_IMAGES = tf.TensorSpec([None, None, None, 3], tf.uint8)


class ExportModule(tf.Module):
    """A float32 model with the serving crop in front: faces in, probabilities out."""

    def __init__(self, model, heads, class_names, stored_size, crop_size, temperatures=None, flip=False,
                 offsets=None):
        super().__init__()
        self.model, self.flip = model, flip  # flip: each face's logits averaged with its mirror's.
        self.offsets = dict(offsets or {})  # {head: (C,)}: softmax(logits / T + offset) (heads.probabilities_of).
        self.heads = heads
        self.temperatures = dict(temperatures or {})  # {head: T}: its logits / T before the softmax.
        self.stored_size, self.crop_size = stored_size, crop_size
        self.class_names = {head: tf.constant(names) for head, names in class_names.items()}

    def _probabilities(self, crops, flip=None):
        logits = logits_of(self.model, tf.cast(crops, tf.float32), self.flip if flip is None else flip)
        outputs = {f"{head}_probabilities": probabilities_of(logits[head], self.temperatures.get(head, 1.0),
                                                             self.offsets.get(head))
                   for head in self.heads}
        if "age_years" in self.heads:
            outputs["age_years_expected"] = expected_years(outputs["age_years_probabilities"])
        return outputs

    def _predict(self, crops):
        outputs = self._probabilities(crops)
        for head, names in self.class_names.items():
            outputs[f"{head}_classes"] = tf.broadcast_to(names, [tf.shape(crops)[0], tf.shape(names)[0]])
        return outputs

    def _crop(self, images):
        return preprocess.serving_crop(images, self.stored_size, self.crop_size)

    @tf.function(input_signature=[_IMAGES])
    def serve_images(self, images):
        return self._predict(self._crop(images))

    @tf.function(input_signature=[_IMAGES])
    def serve_crops(self, crops):
        """Probabilities of crops already at the model's input size, each as it is, never
        flipped: the 10 over-sampling crops hold their mirrors (evaluation averages them so)."""
        return self._probabilities(crops, flip=False)

    @tf.function(input_signature=[_IMAGES])
    def serve_probabilities(self, images):
        """Numbers only (TFLite has no string outputs); class names are in metadata.json."""
        return self._probabilities(self._crop(images))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_jpeg(self, jpegs):
        crop = tf.TensorSpec([self.crop_size, self.crop_size, 3], tf.uint8)
        crops = tf.map_fn(lambda jpeg: self._crop(preprocess.decode_jpeg(jpeg)), jpegs, fn_output_signature=crop)
        return self._predict(crops)


def float32_copy(model, model_cfg, heads):
    """The same architecture and weights computing in float32: a mixed-precision model
    would export bfloat16 or float16 ops, slow or missing on many CPUs and in TFLite."""
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = architectures.build(model_cfg, heads, model.inputs[0].shape[1])
    finally:
        keras.mixed_precision.set_global_policy(policy)
    copy.set_weights(model.get_weights())
    return copy


def export(model, heads, class_names, age_bins, stored_size, crop_size, directory, face_crop, temperatures=None,
           flip=False, offsets=None, age_prior_correction=0.0, trained_on=None):
    """Saves the SavedModel and its metadata.json into `directory`; returns it. `model`
    must compute in float32 (float32_copy); `heads` {head: outputs}; `class_names` of the
    class heads; `face_crop` is the shards' manifest entry; `temperatures` {head: T} the
    calibration every signature applies (none: the model's own probabilities); `flip`:
    the face signatures average each face's logits with its mirror's (--flip_test),
    serve_crops takes each crop as it is; `offsets` {head: (C,)} are added to the
    calibrated logits in every signature (training/age_prior.py, --age_prior_correction, the tau
    `age_prior_correction` metadata.json records); `trained_on` the faces it learnt from
    (metadata.trained_on)."""
    temperatures = dict(temperatures or {})
    module = ExportModule(model, heads, class_names, stored_size, crop_size, temperatures, flip, offsets)
    tf.saved_model.save(module, directory, signatures={"serving_default": module.serve_jpeg,
                                                       "serve_images": module.serve_images,
                                                       "serve_crops": module.serve_crops,
                                                       "serve_probabilities": module.serve_probabilities})
    info = metadata.Metadata({head: list(names) for head, names in class_names.items()}, stored_size, crop_size,
                             face_crop, age_bins.as_dict(), "age_years" in heads, temperatures, flip,
                             age_prior_correction if offsets else 0.0, dict(trained_on or {}))
    metadata.write(os.path.join(directory, metadata.FILE), info)
    return directory
