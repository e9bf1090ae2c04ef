"""metadata.json, what an export says about itself: the one place it is written and read.

    {"class_names": {"age": [...8 groups], "gender": ["m", "f"]},   (its class heads)
     "age_years": true,    it also has an age_years head: probabilities over 0..100 years
     "age_bins": {"names": [...], "ranges": [[0, 2], ...]},   the age head's bins (and
                           those an age_years prediction is reported in)
     "stored_size": 128,   faces are resized to this side, as in training ...
     "crop_size": 112,     ... and centre-cropped to this, the model's input
     "face_crop": {"method": "detect", "detector": "mtcnn", "image_size": 256, ...}}
                           how the training faces were framed, copied from the shards'
                           manifest (input_pipeline.faces); {"method": "none"}: the
                           dataset's own crops, which prediction cannot reproduce
     "temperatures": {"age": 1.7, "gender": 1.3},
                           each class head's logits are divided by this before the
                           softmax, in the SavedModel itself (temperature scaling fitted
                           on the validation split); {}: the model's own probabilities
     "flip_test": false,   true: the face signatures average a face's logits with its
                           mirror's (test-time augmentation, model.py --flip_test);
                           serve_crops takes each crop as it is
     "age_prior_correction": 0.0,
                           tau: each age head's probabilities are softmax(logits / T +
                           tau * -log(the training faces' age prior)) in every signature
                           (training/age_prior.py); 0: none
     "trained_on": {"held_out_fold": 0, "sources": ["/data/tfrecords/utk", "/data/UTKFace"]}}
                           the faces it learnt from: every fold but held_out_fold (-1: every
                           fold) of the shard set and of what it was built from (absolute
                           paths), so that scoring it on them is refused wherever the
                           export is moved (serving/score.check_held_out); {}: not recorded
"""

import dataclasses
import json
import os

from input_pipeline import labels

FILE = "metadata.json"


@dataclasses.dataclass(frozen=True)
class Metadata:
    class_names: dict  # {head: [class name, ...]}, in the order of the probabilities.
    stored_size: int
    crop_size: int
    face_crop: dict = dataclasses.field(default_factory=lambda: {"method": "none"})  # Absent before 0.2.
    age_bins: dict = dataclasses.field(default_factory=labels.ADIENCE.as_dict)  # Absent before 0.3.
    age_years: bool = False  # Absent before 0.3.
    temperatures: dict = dataclasses.field(default_factory=dict)  # Absent in older exports: not calibrated.
    flip_test: bool = False  # Absent in older exports: no test-time flip.
    age_prior_correction: float = 0.0  # Absent in older exports: none.
    trained_on: dict = dataclasses.field(default_factory=dict)  # Absent in older exports: not recorded.

    @property
    def heads(self):
        """All its heads, in the order of labels.HEADS."""
        return [head for head in labels.HEADS if head in self.class_names or (head == "age_years" and self.age_years)]


def trained_on(shards_dir, manifest, held_out_fold):
    """Metadata.trained_on of a run on the shards in `shards_dir` (their `manifest`) that
    held out `held_out_fold` (input_pipeline.config.NO_TEST_FOLD: none)."""
    return {"held_out_fold": held_out_fold, "sources": sources_of(shards_dir, manifest)}


def sources_of(shards_dir, manifest):
    """[absolute paths] that hold a shard set's faces: the set, and what build_input.py built
    it from: a dataset's folder, or for --dataset=csv its CSV (its --data_dir is only where
    the CSV's image paths start, and may hold much else: a test CSV and its photos)."""
    source = manifest.get("source_dir") or ""
    if manifest.get("dataset") == "csv":
        source = manifest.get("flags", {}).get("csv_file") or (os.path.join(source, "labels.csv") if source else "")
    return [os.path.realpath(path) for path in (shards_dir, source) if path]


def write(path, metadata, **extra):
    """Writes `metadata` (and any `extra` keys, e.g. a TFLite file's outputs) as JSON to `path`."""
    with open(path, "w") as f:
        json.dump({**dataclasses.asdict(metadata), **extra}, f, indent=2)
    return path


def _check_trained_on(value):
    """ValueError unless `value` is {} or Metadata.trained_on's shape."""
    if value and not (isinstance(value, dict) and type(value.get("held_out_fold")) is int
                      and isinstance(value.get("sources"), list) and all(isinstance(p, str) for p in value["sources"])):
        raise ValueError(f'trained_on is not {{"held_out_fold": <fold>, "sources": [<paths>]}}: {value!r}')


def read(export_dir):
    """The Metadata of an export; FileNotFoundError or ValueError saying what is wrong."""
    path = os.path.join(export_dir, FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{export_dir} is not a model exported by model.py (no {FILE})")
    with open(path) as f:
        try:
            found = json.load(f)
            if not isinstance(found, dict):
                raise ValueError(f"a JSON {type(found).__name__}, not an object")
            optional = ("face_crop", "age_bins", "age_years", "temperatures", "flip_test", "age_prior_correction",
                        "trained_on")
            info = Metadata(**{field.name: found[field.name] for field in dataclasses.fields(Metadata)
                               if field.name in found or field.name not in optional})
            _check_trained_on(info.trained_on)
            return info
        except (ValueError, KeyError) as e:
            raise ValueError(f"{path} is not an export's metadata: {type(e).__name__} {e}") from None
