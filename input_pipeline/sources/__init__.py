"""Raw datasets -> rows (faces to encode and rows skipped, with reasons). No TensorFlow."""

import os

from input_pipeline import labels
from input_pipeline.sources import adience, csv_file, utkface


def read(cfg):
    """The rows of the dataset a BuildConfig names, in source order; DatasetError if unusable."""
    if cfg.dataset == "adience":
        return adience.read(cfg.data_dir, cfg.image_layout, cfg.label_policy, cfg.dedup)
    if cfg.dataset == "utkface":
        return utkface.read(cfg.data_dir)
    csv_path = cfg.csv_file or os.path.join(cfg.data_dir, "labels.csv")
    return csv_file.read(csv_path, cfg.data_dir, cfg.label_policy, cfg.dedup, csv_file.parse_columns(cfg.csv_columns),
                         labels.parse_bins(cfg.age_bins))
