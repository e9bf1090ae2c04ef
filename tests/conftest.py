"""Fixtures: tiny on-disk datasets."""

import pytest

from datasets import row, write_adience


@pytest.fixture(autouse=True)
def float32_policy():
    """Training sets Keras's global dtype policy; each test starts from float32 again."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


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
    from input_pipeline.config import BuildConfig
    from input_pipeline.writer import build

    out = str(tmp_path / "shards")
    build.build(BuildConfig(data_dir=small_adience, output_dir=out, image_size=32, num_shards=2, num_workers=1))
    return out


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory):
    """A tiny age-and-gender Levi-Hassner, trained 2 steps and exported (for prediction tests)."""
    from configs import tiny, with_data
    from input_pipeline.config import BuildConfig
    from input_pipeline.writer import build

    root = tmp_path_factory.mktemp("exported")
    data_dir = write_adience(str(root / "a"), {k: [row(f"u{k}@N0", k * 2 + i, "(25, 32)", "mf"[i], f"{k}{i}.jpg")
                                                   for i in range(2)] for k in range(5)})
    shards = str(root / "shards")
    build.build(BuildConfig(data_dir=data_dir, output_dir=shards, image_size=32, num_shards=1, num_workers=1))
    configs = tiny(shards, root / "run", task="age_gender", train_steps=2, histogram_every=0)
    from training.loop import train_and_evaluate

    metrics = train_and_evaluate(*with_data(configs, val_fraction=0.0, shuffle_buffer=8))
    return metrics["export_dir"]
