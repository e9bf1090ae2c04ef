"""The tiny configurations tests train with: 24 px crops, batches of 4, a few steps."""

import dataclasses

from architectures.config import ModelConfig
from input_pipeline.config import DataConfig
from training.config import TrainConfig


def tiny(shards, model_dir="", task="age", image_size=24, arch="levi_hassner", **train):
    """(DataConfig, ModelConfig, TrainConfig): 4 steps of Adam, a summary and a checkpoint
    every 2, float32; keyword arguments override TrainConfig fields."""
    data = DataConfig(shards_dir=shards, image_size=image_size, batch_size=4, val_fraction=0.3, shuffle_buffer=16,
                      task=task)
    model = ModelConfig(arch=arch, weights="none")
    fields = dict(model_dir=str(model_dir), train_steps=4, optimizer="adam", schedule="constant",
                  learning_rate=1e-3, log_every=2, eval_every=2, checkpoint_every=2, histogram_every=2,
                  mixed_precision="off")
    fields.update(train)
    return data, model, TrainConfig(**fields)


def with_data(configs, **data):
    """`configs` with DataConfig fields replaced."""
    data_cfg, model_cfg, train_cfg = configs
    return dataclasses.replace(data_cfg, **data), model_cfg, train_cfg
