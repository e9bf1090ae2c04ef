"""The shard build's and the reader's configuration (no TensorFlow: entry points import it at start-up)."""

import dataclasses

from input_pipeline import faces, labels
from input_pipeline.sources import csv_file

DATASETS = ("adience", "utkface", "csv")
FACE_CROPS = ("none", "detect")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """What build() reads and how it writes; build_input.py's flags mirror these defaults."""

    dataset: str = "adience"
    data_dir: str = ""
    output_dir: str = ""
    csv_file: str = ""  # --dataset=csv only; "" means <data_dir>/labels.csv.
    csv_columns: str = ""  # --dataset=csv only: "path=ID,age=Class" maps fields to other header names.
    age_bins: str = "adience"  # Only to read bin names ("YOUNG") in a CSV's age column; models choose their own.
    image_layout: str = "aligned"  # --dataset=adience only.
    label_policy: str = "strict"
    image_size: int = 256  # 0 keeps the original JPEG bytes.
    face_crop: str = "none"  # "none": the dataset's own crops; "detect": input_pipeline.faces' canonical crop.
    detector: str = "blazeface"  # --face_crop=detect only.
    min_face_size: int = faces.CropSpec.min_face_size  # --face_crop=detect only.
    jpeg_quality: int = 95
    num_shards: int = 4  # Per fold.
    shuffle_seed: int = 0  # Faces are written in a random order seeded by this (writer.build.write_order).
    num_workers: int = 0  # 0: one per core.
    dedup: bool = False
    overwrite: bool = False

    @property
    def crop_spec(self):
        """The canonical crop of --face_crop=detect; None for the dataset's own crops."""
        if self.face_crop == "none":
            return None
        return faces.CropSpec(detector=self.detector, min_face_size=self.min_face_size)

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        labels.check_policy(self.label_policy)
        labels.parse_bins(self.age_bins)  # ValueError saying what is wrong.
        csv_file.parse_columns(self.csv_columns)
        if self.image_size < 0 or not 1 <= self.jpeg_quality <= 100 or self.num_shards < 1:
            raise ValueError(f"need image_size >= 0, jpeg_quality in 1..100, num_shards >= 1: {self}")
        if self.face_crop not in FACE_CROPS or self.detector not in faces.DETECTORS:
            raise ValueError(f"face_crop must be one of {FACE_CROPS} and detector one of {faces.DETECTORS}: {self}")
        if self.face_crop == "detect" and self.image_size == 0:
            raise ValueError("face_crop=detect writes new crops, so it needs image_size > 0")
        if not self.data_dir or not self.output_dir:
            raise ValueError("data_dir and output_dir must be set")


TASKS = tuple(labels.TASK_HEADS)
CACHES = ("none", "encoded", "decoded")  # What the training pipeline keeps after its first pass.
NO_TEST_FOLD = -1  # test_fold: every fold trains and nothing is tested (a final model, once its settings are chosen).


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How model.py reads a shard set; model.py's flags mirror these defaults."""

    shards_dir: str = "data/tfrecords/adience_sample"
    test_fold: int = 0  # Held out for testing; the other four folds train. NO_TEST_FOLD: none, all five train.
    val_fraction: float = 0.1  # Share of training *subjects* held out for validation.
    task: str = "age"  # The old way to name heads: age, gender or age_gender; `heads` wins when set.
    heads: tuple = ()  # Any of labels.HEADS; () means the heads of `task`.
    age_bins: str = "adience"  # labels.parse_bins: a scheme or a list like 0-12,13-30,31-50,51+.
    image_size: int = 227  # Crop side; the shards hold 256x256 faces.
    resize: int = 0  # Resize stored faces to this side before cropping; 0: as stored.
    color_jitter: bool = True  # Training augmentation: brightness and contrast too (not the paper's).
    scale_jitter: float = 0.0  # Training augmentation: zoom by a factor in [1 - s, 1 + s] (preprocess.geometric).
    rotation: float = 0.0  # ... turn by up to this many degrees ...
    shift: float = 0.0  # ... move by up to this share of the side along each axis.
    batch_size: int = 50  # Global, across replicas.
    shuffle_buffer: int = 2048
    cache: str = "none"  # reader.cache.KINDS: keep nothing, the parsed records, or the decoded faces.
    cache_dir: str = ""  # The cache's files; "": in memory.
    data_service: str = ""  # grpc://HOST:PORT of a tf.data service dispatcher; "": input runs here.
    deterministic: bool = False  # Seeded, ordered input (slower).
    seed: int = 0

    @property
    def tested(self):
        """False when no fold is held out (test_fold NO_TEST_FOLD): every fold trains."""
        return self.test_fold != NO_TEST_FOLD

    def require_test_fold(self, tool):
        """ValueError when there is no test fold (NO_TEST_FOLD): `tool` reports each run's test figures."""
        if not self.tested:
            raise ValueError(f"{tool} reports each run's test fold: --test_fold={NO_TEST_FOLD} (every fold trains) "
                             "leaves none; give a fold, e.g. --test_fold=0")

    @property
    def head_names(self):
        """The heads to train, in labels.HEADS order."""
        return labels.resolve_heads(self.heads, self.task)

    @property
    def bins(self):
        return labels.parse_bins(self.age_bins)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        self.head_names, self.bins  # noqa: B018 - ValueError now, saying what is wrong, not at first use.
        if self.test_fold < NO_TEST_FOLD:
            raise ValueError(f"test_fold must be a fold number, or {NO_TEST_FOLD} for none, got {self.test_fold}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.batch_size < 1 or self.image_size < 8:
            raise ValueError(f"need batch_size >= 1 and image_size >= 8: {self}")
        if self.resize and self.resize < self.image_size:
            raise ValueError(f"resize ({self.resize}) must be at least image_size ({self.image_size})")
        if self.cache not in CACHES:
            raise ValueError(f"cache must be one of {CACHES}, got {self.cache!r}")
        if self.cache_dir and self.cache == "none":
            raise ValueError(f"cache_dir ({self.cache_dir}) is set but cache is none: "
                             "choose --cache=encoded or decoded")
        if self.data_service and not self.data_service.startswith(("grpc://", "grpc+local://")):
            raise ValueError(f"data_service must be a dispatcher address grpc://HOST:PORT, got {self.data_service!r}")
        if self.data_service and self.cache != "none":
            raise ValueError("with a tf.data service its workers decode: add workers rather than --cache")
        if self.data_service and self.deterministic:
            raise ValueError("a tf.data service delivers batches in no fixed order: drop --deterministic or "
                             "--data_service")
