"""Configuration of the shard build (no TensorFlow here: entry points import it at start-up)."""

import dataclasses

from input_pipeline import labels

DATASETS = ("adience", "utkface", "csv")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """What build() reads and how it writes; build_input.py's flags mirror these defaults."""

    dataset: str = "adience"
    data_dir: str = ""
    output_dir: str = ""
    csv_file: str = ""  # --dataset=csv only; "" means <data_dir>/labels.csv.
    image_layout: str = "aligned"  # --dataset=adience only.
    label_policy: str = "strict"
    image_size: int = 256  # 0 keeps the original JPEG bytes.
    jpeg_quality: int = 95
    num_shards: int = 4  # Per fold.
    num_workers: int = 0  # 0: one per core.
    dedup: bool = False
    overwrite: bool = False

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        labels.check_policy(self.label_policy)
        if self.image_size < 0 or not 1 <= self.jpeg_quality <= 100 or self.num_shards < 1:
            raise ValueError(f"need image_size >= 0, jpeg_quality in 1..100, num_shards >= 1: {self}")
        if not self.data_dir or not self.output_dir:
            raise ValueError("data_dir and output_dir must be set")
