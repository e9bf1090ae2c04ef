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
def kill_after_checkpoint(monkeypatch):
    """kill_after_checkpoint(step): training raises KeyboardInterrupt right after saving its
    checkpoint of `step`, as a run killed there would stop (a rerun of the same command
    resumes it); the fixture's undo() lets the rerun through."""
    from training.checkpoints import Checkpoints

    def arm(step):
        save = Checkpoints.save

        def save_then_die(self, saved_step):
            path = save(self, saved_step)
            if saved_step == step:
                monkeypatch.undo()
                raise KeyboardInterrupt
            return path

        monkeypatch.setattr(Checkpoints, "save", save_then_die)

    return arm


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


@pytest.fixture(scope="session")
def face_photos_csv(tmp_path_factory):
    """(data_dir, csv path): drawn photos that Haar finds one face in, two per fold (one a
    PNG), plus a blank photo and a photo of two faces, for --face_crop=detect."""
    from PIL import Image

    from face_photos import HAAR_SEEDS, drawn_face, two_faces

    root = tmp_path_factory.mktemp("face_photos")
    lines = ["path,age,gender,fold,subject_id"]
    for i, seed in enumerate(HAAR_SEEDS):
        name = f"face{seed}.{'png' if i % 2 else 'jpg'}"
        drawn_face(seed, 200).save(root / name)
        lines.append(f"{name},{20 + i},{'mf'[i % 2]},{i // 2},s{seed}")
    Image.new("RGB", (200, 200), (90, 90, 90)).save(root / "blank.jpg")
    two_faces().save(root / "two.jpg")
    lines += ["blank.jpg,30,m,0,blank", "two.jpg,30,f,1,two"]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return str(root), str(root / "labels.csv")


@pytest.fixture(scope="session")
def detect_export(face_photos_csv, tmp_path_factory):
    """(shards dir, export dir) of a tiny model trained on --face_crop=detect --detector=haar shards."""
    from configs import tiny, with_data
    from input_pipeline.config import BuildConfig
    from input_pipeline.writer import build
    from training.loop import train_and_evaluate

    root = tmp_path_factory.mktemp("detect_export")
    data_dir, csv_file = face_photos_csv
    shards = str(root / "shards")
    build.build(BuildConfig(dataset="csv", data_dir=data_dir, csv_file=csv_file, output_dir=shards, image_size=48,
                            face_crop="detect", detector="haar", label_policy="nearest", num_shards=1,
                            num_workers=1))
    configs = tiny(shards, root / "run", task="age_gender", image_size=40, train_steps=2, histogram_every=0)
    metrics = train_and_evaluate(*with_data(configs, val_fraction=0.0, shuffle_buffer=8))
    return shards, metrics["export_dir"]
