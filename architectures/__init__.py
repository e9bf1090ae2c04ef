"""Model builders: each `build(cfg, heads, image_size) -> keras.Model` maps float32 [0, 255]
images of image_size a side to a dict {task: float32 logits}, with any preprocessing inside
the model. The size is the data's crop (DataConfig.image_size), given, not configured twice."""

from architectures import compact, levi_hassner, tiny, transfer

ARCHITECTURES = {"levi_hassner": levi_hassner.build, "compact": compact.build, "tiny": tiny.build}
ARCHITECTURES.update({name: transfer.build for name in transfer.BACKBONES})


def build(cfg, heads, image_size):
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {cfg.arch!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[cfg.arch](cfg, heads, image_size)


def is_transfer(arch):
    return arch in transfer.BACKBONES


def freezes_backbone(cfg):
    """A transfer model whose pre-trained backbone is frozen, then fine-tuned (transfer.set_trainable);
    from scratch (weights none) every layer trains from the first step."""
    return is_transfer(cfg.arch) and transfer.pretrained(cfg)

