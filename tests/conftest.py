"""Fixtures: tiny on-disk datasets."""

import pytest

from datasets import row, write_adience


@pytest.fixture
def small_adience(tmp_path):
    """Two subjects in each of the five folds, three faces each, all labels known."""
    folds = {}
    face_id = 0
    for k in range(5):
        lines = []
        for s in range(2):
            for i in range(3):
                face_id += 1
                age = ["(0, 2)", "(25, 32)", "(60, 100)"][i]
                lines.append(row(f"user{k}{s}@N0{k}", face_id, age, "mf"[s], f"{face_id}_x_o.jpg"))
        folds[k] = lines
    return write_adience(str(tmp_path / "adience"), folds)


@pytest.fixture
def small_shards(small_adience, tmp_path):
    """small_adience built into shards of 32x32 faces; returns the shards folder."""
    from input_pipeline import build
    from input_pipeline.config import BuildConfig

    out = str(tmp_path / "shards")
    build.build(BuildConfig(data_dir=small_adience, output_dir=out, image_size=32, num_shards=2, num_workers=1))
    return out
