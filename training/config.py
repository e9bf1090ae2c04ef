"""Configuration of the training loop (training/flags.py mirrors these defaults)."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model_dir: str = "runs/demo"
    train_steps: int = 2000
    optimizer: str = "sgd"  # sgd | adam | adamw
    learning_rate: float = 1e-3
    momentum: float = 0.9
    schedule: str = "step"  # step | cosine | constant
    decay_steps: int = 10_000  # step: multiply the rate by decay_rate every decay_steps.
    decay_rate: float = 0.1
    warmup_steps: int = 0
    adamw_decay: float = 1e-4
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(alpha, alpha) of mixup's shares (training/mixing.py); 0: off.
    cutmix: float = 0.0  # Beta(alpha, alpha) of CutMix's shares; 0: off. Both on: one or the other per step.
    flip_test: bool = False  # Validate, test and export each face's logits averaged with its mirror's.
    ema_decay: float = 0.0  # Evaluate and export a moving average of the weights (training/ema.py); 0: off.
    class_weights: str = "none"  # none | balanced
    age_balance: float = 0.0  # Weigh each face's loss by its age bin's (N / (C n_c)) ** this (losses.age_weights).
    age_balance_cap: float = 4.0  # No age bin weighs more than this many times the most common one; 0: no cap.
    gender_balance: float = 0.0  # And by its gender's within its age bin (losses.gender_weights).
    years_l1: float = 0.0  # Weight of |expected age - age| in years beside age_years' cross-entropy (losses).
    years_sigma_relative: float = 0.0  # age_years' targets this share of the age wide, 2 at least (losses.years_sigma).
    age_prior_correction: float = 0.0  # Tau: the age heads predict with tau * log(prior) out (age_prior.py).
    head_weights: tuple = ()  # ("age=1", "gender=0.5", ...): each head's loss weight; unnamed heads weigh 1.
    clip_norm: float = 0.0  # Global gradient norm; 0: no clipping.
    head_steps: int = 0  # Transfer learning: steps with the backbone frozen before fine-tuning.
    fine_tune_layers: int = 0
    fine_tune_lr_factor: float = 0.1
    distribution: str = "auto"
    cpu_devices: int = 1  # Logical CPU devices: a stand-in for several GPUs on a CPU machine.
    expect_gpu: bool = False  # The run is meant for a GPU: say so at the start when there is none.
    mixed_precision: str = "auto"
    jit_compile: bool = False  # XLA for each replica's forward and backward pass.
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    histogram_every: int = 1000  # 0: none.
    export: bool = True

    def __post_init__(self):
        for name in ("train_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, not {getattr(self, name)}")
        if not 0 <= self.age_balance <= 1:
            raise ValueError(f"--age_balance must be in [0, 1], not {self.age_balance}")
        if self.age_balance_cap != 0 and self.age_balance_cap < 1:
            raise ValueError(f"--age_balance_cap must be 0 (no cap) or at least 1, not {self.age_balance_cap}")
        if not 0 <= self.age_prior_correction <= 1:
            raise ValueError(f"--age_prior_correction must be in [0, 1], not {self.age_prior_correction}")
        if not 0 <= self.years_sigma_relative <= 1:
            raise ValueError(f"--years_sigma_relative must be in [0, 1], not {self.years_sigma_relative}")
        if self.years_l1 < 0:
            raise ValueError(f"--years_l1 must be 0 (off) or more, not {self.years_l1}")
        if not 0 <= self.gender_balance <= 1:
            raise ValueError(f"--gender_balance must be in [0, 1], not {self.gender_balance}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"--ema_decay must be in [0, 1), not {self.ema_decay}")
        if self.mixup < 0 or self.cutmix < 0:
            raise ValueError(f"--mixup and --cutmix are Beta parameters, 0 (off) or more, not {self.mixup}, "
                             f"{self.cutmix}")
        if self.histogram_every < 0:
            raise ValueError(f"--histogram_every must be 0 (no histograms) or more, not {self.histogram_every}")


class RunError(ValueError):
    """A run that cannot start as asked: a batch the replicas cannot split, or a
    --model_dir holding a run trained with other settings."""
