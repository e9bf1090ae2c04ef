"""Configuration of the model builders (model.py's flags mirror these defaults)."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str = "levi_hassner"
    dropout: float = 0.5
    weight_decay: float = 5e-4  # Caffe-style: adds weight_decay * w to each kernel's gradient.
    # Transfer learning only.
    weights: str = "imagenet"  # "imagenet", "none", or a path to a backbone weights file.
    head_units: int = 512
    l1: float = 0.0  # Penalties on the head's hidden Dense kernel.
    l2: float = 0.0
