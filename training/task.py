"""A run's task: what it predicts and how it learns it, built once from the configs and
the shard set's manifest.

    the label space   heads, their sizes and class names, age bins, label policy, the
                      label targets of the records, how many faces carry each label
    the objective     the heads' losses with class weights, head weights, label smoothing
    the predictions   the age heads' logit offsets that take the training faces' age
                      prior out (--age_prior_correction)
    the model         the network and one optimizer per training phase
    the phases        a transfer model trains its head with the backbone frozen, then
                      fine-tunes its top layers; any other model trains whole

The trainer, the evaluators and the architecture comparison's costs read the task, so a
head, a bin, a weight or a phase is worked out in one place.
"""

import dataclasses

import architectures
from architectures import transfer
from input_pipeline import labels
from input_pipeline.reader.manifest import ShardsError, label_counts
from input_pipeline.reader.targets import make_targets
from training import age_prior, losses, optim


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str  # "train" (every layer), "head" (backbone frozen) or "fine_tune".
    first_step: int
    backbone_layers: int | None  # Trainable top backbone layers of a transfer model; None: not one.
    checkpoint_key: str  # Its optimizer's name in checkpoints.

    def describe(self):
        if self.name == "fine_tune":
            return f"fine-tuning the top {self.backbone_layers} backbone layers"
        return "training the head, the backbone frozen" if self.name == "head" else "training every layer"


@dataclasses.dataclass(frozen=True)
class Task:
    sizes: dict  # {head: outputs}, in labels.HEADS order.
    class_names: dict  # {head: names} of the class heads.
    all_class_names: dict  # Also gender's and race's, for the fairness breakdown.
    bins: labels.AgeBins
    policy: str  # The shards' label policy: how ages outside every bin are treated.
    targets: object  # input_pipeline.reader.targets: a record's labels for these bins.
    label_counts: dict  # {"train"|"test": {head: {"known", "unknown"}}}: faces with each label.
    objective: losses.Objective
    logit_offsets: dict  # {head: (C,)} added to its logits wherever it predicts (age_prior); {}: none.
    phases: tuple  # Phase, in order.
    image_size: int  # The crop the model sees.
    model_cfg: object
    train_cfg: object

    @classmethod
    def of(cls, data_cfg, model_cfg, cfg, manifest):
        """The task of these configs on the shards of `manifest`; ShardsError if the
        shards cannot train one of its heads (no race labels, no exact ages, no training
        face with the head's label under these bins)."""
        head_names, bins, policy = data_cfg.head_names, data_cfg.bins, manifest["label_policy"]
        race_classes = manifest.get("race_classes", [])
        if "race" in head_names and not race_classes:
            raise ShardsError(f"the shards in {data_cfg.shards_dir} have no race labels ({manifest['dataset']} has "
                              "none): drop race from --heads")
        if "age_years" in head_names and not any(labels.years_known(f["age_counts"]) for f in manifest["folds"]):
            raise ShardsError(f"the shards in {data_cfg.shards_dir} have no exact ages in years "
                              f"({manifest['dataset']} gives age ranges): drop age_years from --heads")
        sizes = labels.head_sizes(head_names, bins, race_classes)
        class_names = labels.class_names(head_names, bins, race_classes)
        known = label_counts(manifest, data_cfg.test_fold, sizes, bins, policy)
        for head, c in known["train"].items():
            if not c["known"]:
                raise ShardsError(f"no training face has a {head} label under --age_bins={data_cfg.age_bins} and "
                                  f"the shards' label policy {policy}; choose other bins or heads")
        class_weights = (losses.balanced_class_weights(manifest, data_cfg.test_fold, class_names, bins, policy)
                         if cfg.class_weights == "balanced" else None)
        age_weights = None
        if cfg.age_balance:
            if "age" not in sizes:
                raise ShardsError("--age_balance weighs faces by their age bin: it needs the age head in --heads")
            age_weights = losses.age_weights(manifest, data_cfg.test_fold, class_names["age"], bins, policy,
                                             cfg.age_balance, cfg.age_balance_cap)
        gender_weights = None
        if cfg.gender_balance:
            if "age" not in sizes or "gender" not in sizes:
                raise ShardsError("--gender_balance weighs faces by their age bin and gender: it needs the age and "
                                  "gender heads in --heads")
            gender_weights = losses.gender_weights(manifest, data_cfg.test_fold, class_names["age"], bins, policy,
                                                   cfg.gender_balance)
        if cfg.years_l1 and "age_years" not in sizes:
            raise ShardsError("--years_l1 is a term of the age_years head's loss: it needs age_years in --heads")
        if cfg.years_sigma_relative and "age_years" not in sizes:
            raise ShardsError("--years_sigma_relative widens the age_years head's targets: it needs age_years in "
                              "--heads")
        if cfg.age_prior_correction and not set(age_prior.HEADS) & set(sizes):
            raise ShardsError("--age_prior_correction takes the age prior out of the age heads' predictions: it "
                              "needs age or age_years in --heads")
        if cfg.age_prior_correction and (cfg.age_balance or cfg.class_weights == "balanced"):
            raise ShardsError("--age_prior_correction takes the training faces' age prior out of the predictions, "
                              "and --age_balance or --class_weights=balanced weighs it out of the loss already: use "
                              "one or the other")
        offsets = age_prior.offsets(manifest, data_cfg.test_fold, class_names, bins, policy, sizes,
                                    cfg.age_prior_correction, cfg.years_sigma_relative)
        objective = losses.Objective(sizes, class_weights, losses.parse_head_weights(cfg.head_weights, sizes),
                                     cfg.label_smoothing, age_weights, gender_weights, cfg.years_l1,
                                     cfg.years_sigma_relative)
        return cls(sizes, class_names, labels.class_names(labels.HEADS, bins, race_classes), bins, policy,
                   make_targets(bins, policy), known, objective, offsets, phases(model_cfg, cfg), data_cfg.image_size,
                   model_cfg, cfg)

    def build(self, policy):
        """(model, {phase name: optimizer}), built for the current strategy scope under the
        dtype `policy`. Each optimizer's schedule spans the steps of its phase."""
        model = architectures.build(self.model_cfg, self.sizes, self.image_size)
        optimizers = {}
        for i, phase in enumerate(self.phases):
            last = self.phases[i + 1].first_step - 1 if i + 1 < len(self.phases) else self.train_cfg.train_steps
            rate = self.train_cfg.learning_rate * (self.train_cfg.fine_tune_lr_factor if phase.name == "fine_tune"
                                                   else 1.0)
            self.enter(model, phase)  # Its trainable variables, to build its optimizer.
            optimizers[phase.name] = optim.make_optimizer(self.train_cfg, rate, policy, last - phase.first_step + 1)
            optimizers[phase.name].build(model.trainable_variables)  # keras-team/keras#23085
        self.enter(model, self.phases[0])
        return model, optimizers

    def phase_at(self, step):
        """The phase step `step` (1 for the first) trains in."""
        return [phase for phase in self.phases if phase.first_step <= max(step, 1)][-1]

    def fresh_start(self):
        """What a run with no checkpoint starts from, for the log."""
        if self.phases[0].name == "head":
            return f"no checkpoint: starting from the {self.model_cfg.weights} backbone weights"
        if architectures.is_transfer(self.model_cfg.arch):
            return "no checkpoint: starting from scratch (--weights=none): every layer trains from the first step"
        return "no checkpoint: starting from scratch"

    @staticmethod
    def enter(model, phase):
        """Makes the layers `phase` trains trainable and the rest not."""
        if phase.backbone_layers is not None:
            transfer.set_trainable(model, phase.backbone_layers)


def phases(model_cfg, cfg):
    """A transfer model from pretrained weights trains its head for --head_steps (all of
    them when --fine_tune_layers is 0), then fine-tunes its top --fine_tune_layers at
    --fine_tune_lr_factor times the rate; any other model trains every layer throughout."""
    if not architectures.freezes_backbone(model_cfg):
        return (Phase("train", 1, None, "optimizer"),)
    head = Phase("head", 1, 0, "optimizer")
    if cfg.fine_tune_layers <= 0:
        return (head,)
    return head, Phase("fine_tune", min(cfg.head_steps, cfg.train_steps) + 1, cfg.fine_tune_layers,
                       "fine_tune_optimizer")
