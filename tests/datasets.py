"""Helpers that write tiny on-disk datasets for the tests."""

import io
import os

import tensorflow as tf
from PIL import Image

from input_pipeline.reader import parse
from input_pipeline.reader.manifest import load_manifest
from input_pipeline.reader.targets import make_targets
from input_pipeline.sources import adience

HEADER_LINE = "\t".join(adience.HEADER)
FIDUCIALS = "\t".join(["10", "20", "300", "300", "0", "5", "80"])


def jpeg_bytes(size=(24, 24), colour=(200, 120, 40), quality=90):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def row(user, face_id, age, gender, original="100_abc_o.jpg"):
    """One fold-file line (without the newline)."""
    return f"{user}\t{original}\t{face_id}\t{age}\t{gender}\t{FIDUCIALS}"


def write_adience(root, folds, layout="aligned", images=True, ending="\n"):
    """Writes fold_<k>_data.txt for k in 0..4 from {k: [line, ...]} and, with
    `images`, a small distinct JPEG for every well-formed row's face."""
    for k in range(5):
        lines = [HEADER_LINE, *folds.get(k, [])]
        write_file(os.path.join(root, adience.FOLD_FILES[k]), "\n".join(lines) + ending)
        if not images:
            continue
        for n, line in enumerate(folds.get(k, [])):
            fields = line.split("\t")
            if len(fields) == len(adience.HEADER) and fields[2].isdigit():
                path = adience.image_path(layout, fields[0], fields[2], fields[1])
                write_file(os.path.join(root, path), jpeg_bytes(colour=(40 * k, 10 * n % 256, 90)))
    os.makedirs(os.path.join(root, adience.LAYOUTS[layout][0]), exist_ok=True)
    return root


def read_all(output_dir, manifest):
    """Every record of a build's shards, parsed, fold by fold."""
    records = []
    for fold in manifest["folds"]:
        paths = [os.path.join(output_dir, name) for name in fold["files"]]
        records += [parse.parse_example(r) for r in tf.data.TFRecordDataset(paths)]
    return records


def targets_of(data_cfg):
    """The reader's `targets` of a DataConfig's shards: its age bins, the shards' label policy."""
    return make_targets(data_cfg.bins, load_manifest(data_cfg.shards_dir)["label_policy"])
