"""A run's task: what it predicts (the label space of its heads on a shard set) and the
network and optimizers that learn it, built for the strategy's scope.

The loop (training/loop.py) and the architecture comparison's costs read the same task,
so a head, a bin or a training phase is worked out in one place.
"""

import dataclasses

import architectures
from architectures import transfer
from input_pipeline import labels
from input_pipeline.reader.manifest import ShardsError
from training import optim


@dataclasses.dataclass(frozen=True)
class Heads:
    """What a run predicts: its heads, their sizes and class names, and the age bins."""

    sizes: dict  # {head: outputs}, in labels.HEADS order.
    class_names: dict  # {head: names} of the class heads.
    all_class_names: dict  # Also gender's and race's, for the fairness breakdown.
    bins: labels.AgeBins
    policy: str  # The shards' label policy: how ages outside every bin are treated.

    @classmethod
    def of(cls, data_cfg, manifest):
        """The heads of `data_cfg` on the shards of `manifest`; ShardsError if the shards
        cannot train one (no race labels, no exact ages)."""
        head_names, bins = data_cfg.head_names, data_cfg.bins
        race_classes = manifest.get("race_classes", [])
        if "race" in head_names and not race_classes:
            raise ShardsError(f"the shards in {data_cfg.shards_dir} have no race labels ({manifest['dataset']} has "
                             "none): drop race from --heads")
        if "age_years" in head_names and not any(labels.years_known(f["age_counts"]) for f in manifest["folds"]):
            raise ShardsError(f"the shards in {data_cfg.shards_dir} have no exact ages in years "
                              f"({manifest['dataset']} gives age ranges): drop age_years from --heads")
        return cls(labels.head_sizes(head_names, bins, race_classes),
                   labels.class_names(head_names, bins, race_classes),
                   labels.class_names(labels.HEADS, bins, race_classes), bins, manifest["label_policy"])


def build_model_and_optimizers(model_cfg, cfg, heads, policy):
    """(model, optimizer, fine-tuning optimizer or None), built for the current strategy
    scope. Each optimizer's schedule spans the steps it takes: a transfer model that
    fine-tunes trains its head for cfg.head_steps, then its top layers for the rest."""
    model = architectures.build(model_cfg, heads)
    fine_tunes = architectures.freezes_backbone(model_cfg) and cfg.fine_tune_layers > 0
    head_steps = min(cfg.head_steps, cfg.train_steps) if fine_tunes else cfg.train_steps
    optimizer = optim.make_optimizer(cfg, cfg.learning_rate, policy, head_steps)
    optimizer.build(model.trainable_variables)  # keras-team/keras#23085
    if not fine_tunes:
        return model, optimizer, None
    transfer.set_trainable(model, cfg.fine_tune_layers)  # Its variables, to build its optimizer.
    fine_tune_optimizer = optim.make_optimizer(cfg, cfg.learning_rate * cfg.fine_tune_lr_factor, policy,
                                               cfg.train_steps - head_steps)
    fine_tune_optimizer.build(model.trainable_variables)
    transfer.set_trainable(model, 0)
    return model, optimizer, fine_tune_optimizer
