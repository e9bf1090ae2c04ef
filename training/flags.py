"""model.py's command line: one flag per field of DataConfig, ModelConfig and TrainConfig.

Importing this module defines the flags, so only entry points that train import it
(model.py, scripts/cross_validate.py, scripts/bench_train.py), and their main() turns
the parsed values into configs with configs_from_flags(FLAGS). Library code never sees
a flag: it takes the configs.
"""

import dataclasses

from absl import app, flags, logging

import architectures
from architectures.config import ModelConfig
from input_pipeline import labels
from input_pipeline.config import CACHES, TASKS, DataConfig
from training.config import TrainConfig

_D, _M, _T = DataConfig(), ModelConfig(), TrainConfig()
# Data.
flags.DEFINE_string("shards_dir", _D.shards_dir, "A build_input output folder (with manifest.json).")
flags.DEFINE_integer("test_fold", _D.test_fold, "Fold held out for testing; the other four train. -1: none, every "
                     "fold trains (a final model once its settings are chosen on a test fold: nothing is tested, "
                     "so score its export on labelled photos of your own with scripts/score_predictions.py).",
                     lower_bound=-1, upper_bound=4)
flags.DEFINE_float("val_fraction", _D.val_fraction,
                   "Share of training subjects held out for validation, whose best score (metrics.score) picks the "
                   "checkpoint that is tested and exported. 0: no validation; the final weights are tested and "
                   "exported, and metrics.json says \"checkpoint\": \"final\".")
flags.DEFINE_list("heads", list(_D.heads),
                  "What to predict, any of age, gender, race, age_years (e.g. --heads=age,gender,race,age_years: "
                  "one network, one output per head). age: a class per --age_bins bin; age_years: a distribution "
                  "over 0-100 years whose expected value is the age. Empty: the heads of --task.")
flags.DEFINE_enum("task", _D.task, TASKS, "Deprecated: --heads (--task=age_gender is --heads=age,gender). The "
                  "older way to choose heads, used when --heads is empty: age, gender, or age_gender.")
flags.DEFINE_string("age_bins", _D.age_bins,
                    "The age head's classes: adience (the paper's 8 groups), three (young 13-30, middle 31-50, "
                    "old 51+), utk12 (12 bins that balance UTKFace), or a list from young to old such as "
                    "0-12,13-30,31-50,51+ (optionally named: young=13-30,...). A stored age range goes to the bin "
                    "that holds all of it, an exact age to the bin that holds it; the rest are unknown for the age "
                    "head (or, on shards built with --label_policy=nearest, go to the nearest bin).")
flags.DEFINE_integer("image_size", _D.image_size, "Crop side fed to the model (the paper: 227).")
flags.DEFINE_integer("resize", _D.resize, "Resize the stored faces to this side before cropping; 0: as stored.")
flags.DEFINE_bool("color_jitter", _D.color_jitter,
                  "Training augmentation: besides the paper's random crop and mirror, shift each face's "
                  "brightness by up to 32 of 255 and scale its contrast by 0.8-1.2 (not in the paper; "
                  "--nocolor_jitter in configs/levi_hassner.flags).")
flags.DEFINE_float("scale_jitter", _D.scale_jitter,
                   "Training augmentation: zoom each face by a random factor in [1 - s, 1 + s] about its centre "
                   "before the crop (mid-gray past the border). 0: off.", lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_float("rotation", _D.rotation, "Training augmentation: turn each face by up to this many degrees. "
                   "0: off.", lower_bound=0.0, upper_bound=45.0)
flags.DEFINE_float("shift", _D.shift, "Training augmentation: move each face by up to this share of its side "
                   "along each axis, besides the random crop. 0: off.", lower_bound=0.0, upper_bound=0.3)
flags.DEFINE_integer("batch_size", _D.batch_size, "Global batch size, over all replicas: a multiple of their number "
                     "(checked at the start).", lower_bound=1)
flags.DEFINE_integer("shuffle_buffer", _D.shuffle_buffer,
                     "Encoded records in the training shuffle buffer (every shard file is read at once; the shards "
                     "hold each fold in a random order). A cache in memory is shuffled whole instead.")
flags.DEFINE_enum("cache", _D.cache, CACHES,
                  "What the training input keeps after its first pass, so later epochs skip that work: none; "
                  "encoded (the JPEG records, ~25 KB a face; decoded every epoch); decoded (the uint8 faces at "
                  "their training size, --resize or as stored: 49 MB per 1,000 faces at 128 px, 197 MB at 256; "
                  "no JPEG decoding after the first epoch). In memory (each later epoch a new permutation of all "
                  "of it), or in files with --cache_dir.")
flags.DEFINE_string("cache_dir", _D.cache_dir,
                    "Keep the --cache in files in this folder, one per shard file, read back two at a time in a new "
                    "order each epoch through --shuffle_buffer (data larger than memory; reused by a resumed or "
                    "later run with the same shards, fold split, heads, bins, resize and number of workers, "
                    "refused for others).")
flags.DEFINE_string("data_service", _D.data_service,
                    "grpc://HOST:PORT of a tf.data service dispatcher (scripts/data_service.py): the training "
                    "input (read, decode, shuffle, batch) runs on its workers instead of here.")
flags.DEFINE_bool("deterministic", _D.deterministic, "Ordered input and deterministic ops (slower); --seed seeds "
                  "the rest in every run.")
flags.DEFINE_integer("seed", _D.seed, "Seed of the initial weights, dropout, input order and augmentation, in every "
                     "run (with or without --deterministic).")
# Model.
flags.DEFINE_enum("arch", _M.arch, sorted(architectures.ARCHITECTURES), "Architecture.")
flags.DEFINE_float("dropout", _M.dropout, "Dropout rate of the fully connected layers.")
flags.DEFINE_float("weight_decay", _M.weight_decay, "Levi-Hassner: Caffe weight decay on kernels.")
flags.DEFINE_string("weights", _M.weights, "Transfer learning: imagenet or a backbone weights file (the backbone "
                    "is frozen, then fine-tuned with --head_steps and --fine_tune_layers), or none (every layer "
                    "trains from scratch).")
flags.DEFINE_integer("head_units", _M.head_units, "Transfer learning: units of the hidden head layer.")
flags.DEFINE_float("l1", _M.l1, "Transfer learning: L1 penalty on the head layer's kernel.")
flags.DEFINE_float("l2", _M.l2, "Transfer learning: L2 penalty on the head layer's kernel.")
# Training.
flags.DEFINE_string("model_dir", _T.model_dir,
                    "Checkpoints, TensorBoard logs, metrics and the export. The same command again resumes the run "
                    "there; a command with other settings (config.json's fingerprint) is refused, naming them.")
flags.DEFINE_integer("train_steps", _T.train_steps, "Training steps in all.", lower_bound=1)
flags.DEFINE_enum("optimizer", _T.optimizer, ["sgd", "adam", "adamw"], "Optimizer.")
flags.DEFINE_float("learning_rate", _T.learning_rate, "Peak learning rate.")
flags.DEFINE_float("momentum", _T.momentum, "SGD momentum.")
flags.DEFINE_enum("schedule", _T.schedule, ["step", "cosine", "constant"], "Learning-rate schedule.")
flags.DEFINE_integer("decay_steps", _T.decay_steps, "step schedule: steps between decays.", lower_bound=1)
flags.DEFINE_float("decay_rate", _T.decay_rate, "step schedule: factor at each decay.")
flags.DEFINE_integer("warmup_steps", _T.warmup_steps, "Linear warm-up from 0 to the peak rate.")
flags.DEFINE_float("adamw_decay", _T.adamw_decay, "AdamW's decoupled weight decay.")
flags.DEFINE_float("label_smoothing", _T.label_smoothing, "Label smoothing of the cross-entropy.")
flags.DEFINE_float("years_l1", _T.years_l1, "The age_years head's loss adds this times |expected age - true age| in "
                   "years to its cross-entropy against a Gaussian around the true age (DLDL-v2, Gao et al. 2018): "
                   "the cross-entropy shapes the distribution, the L1 term pulls its mean, which is the predicted "
                   "age, onto the truth. Needs the age_years head. 0: off.", lower_bound=0.0)
flags.DEFINE_float("years_sigma_relative", _T.years_sigma_relative, "The age_years head learns a Gaussian "
                   "around each face's true age (label distribution learning) 2 years wide, or this share of the "
                   "age where that is wider: 0.08 makes it 4 years wide at 50 and 6.4 at 80, where labels and looks "
                   "say less about the exact year; never wider than half the years left to 100, where the classes "
                   "end, so that the target's mean stays at the age. The age prior that --age_prior_correction "
                   "takes out is made of the same targets. Needs the age_years head. 0: 2 years at every age.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("age_prior_correction", _T.age_prior_correction, "Predict age as if the training faces' "
                   "ages were less uneven: each age head's probabilities are softmax(logits / T + offsets), the "
                   "offsets tau * -log(its prior over the training folds) (post-hoc logit adjustment, Menon et "
                   "al. 2021; training/age_prior.py), in the test figures and every signature of the export. 1: "
                   "as if every age were equally common, though no age is taken as rarer than 1% of the most "
                   "common (a head learns nothing about ages it barely saw). For photos of all ages from a "
                   "dataset of mostly young adults; the test fold, which has the training faces' ages, scores "
                   "worse for it. Training, validation, the checkpoint it selects and the temperatures T are "
                   "unchanged (scripts/sweep_age_prior.py scores any tau on a trained run). Not with "
                   "--age_balance or --class_weights=balanced, which weigh the prior out of the loss already. "
                   "Needs the age or age_years head. 0: off.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("mixup", _T.mixup, "Mixup: blend each training face with another of its batch in a share drawn "
                   "from Beta(a, a), and their targets alike (training/mixing.py); a is this value, 0: off "
                   "(0.2 is usual).", lower_bound=0.0)
flags.DEFINE_float("cutmix", _T.cutmix, "CutMix: paste a rectangle of another face of the batch, its area's share "
                   "drawn from Beta(a, a), and mix the targets by area; a is this value, 0: off (1.0 is usual). "
                   "With --mixup too, each step does one or the other.", lower_bound=0.0)
flags.DEFINE_bool("flip_test", _T.flip_test, "Test-time augmentation: validation, calibration, the single-crop "
                  "test figures and the export's face signatures (serving_default, serve_images, "
                  "serve_probabilities) average each face's logits with its mirror's (twice the model's work per "
                  "face). The 10-crop over-sampling and serve_crops take each crop as it is: the 10 crops hold "
                  "their mirrors.")
flags.DEFINE_float("ema_decay", _T.ema_decay, "Keep an exponential moving average of the weights with this decay "
                   "and validate, select, calibrate, test and export it in place of the last weights "
                   "(training/ema.py). The decay ramps up as (1+n)/(10+n) over the n steps so far: 0.999 is "
                   "reached after ~9,000 steps (metrics.json says what was reached). 0: off.", lower_bound=0.0,
                   upper_bound=0.99999)
flags.DEFINE_enum("class_weights", _T.class_weights, ["none", "balanced"],
                  "balanced: weight each class of each class head by N / (C * n_c) over the training folds.")
flags.DEFINE_float("age_balance", _T.age_balance, "Weigh every head's loss of a face by its age bin's "
                   "(N / (C * n_c)) ** this, over the training folds, scaled to a mean of 1 (0.5: inverse square "
                   "root, for ages a dataset has few of, e.g. UTKFace's over-70s). Needs the age head. 0: off.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("age_balance_cap", _T.age_balance_cap, "With --age_balance, no age bin weighs more than this many "
                   "times the bin with the most training faces (before the mean is scaled to 1): a bin of a face "
                   "or two (utkface_dev's 4-10) would otherwise weigh 24.5 times the mean at 0.5 and 446 at 1, "
                   "and a run at 1 fails. The cap is on the age weight: --gender_balance multiplies it by its "
                   "own (the log gives the largest product). 0: no cap.", lower_bound=0.0)
flags.DEFINE_float("gender_balance", _T.gender_balance, "Weigh every head's loss of a face by its gender's "
                   "(n_a / (G * n_ag)) ** this within its age bin a, over the training folds, so that each bin "
                   "keeps its total weight and its men and women weigh alike (1: equal; UTKFace's 60-74 "
                   "year-olds are 12% women, which teaches that age is a cue to gender). Needs the age and gender "
                   "heads and shards built since the manifest counts gender by age. With --class_weights=balanced the "
                   "gender head's loss is weighed by both (women, fewer, then weigh more than men). 0: off.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_list("head_weights", list(_T.head_weights),
                  "Each head's weight in the loss, e.g. age=1,gender=0.5; heads not named weigh 1. Each head's "
                  "loss is its mean over the faces of the batch (all replicas) that carry its label.")
flags.DEFINE_float("clip_norm", _T.clip_norm, "Clip the whole batch's gradient (summed over replicas) to this global "
                   "norm; 0: off.")
flags.DEFINE_integer("head_steps", _T.head_steps, "Transfer: steps training the head only.")
flags.DEFINE_integer("fine_tune_layers", _T.fine_tune_layers,
                     "Transfer: backbone layers unfrozen after --head_steps (BatchNorm stays frozen).")
flags.DEFINE_float("fine_tune_lr_factor", _T.fine_tune_lr_factor, "Transfer: learning-rate factor when fine-tuning.")
flags.DEFINE_enum("distribution", _T.distribution, ["auto", "default", "one_device", "mirrored", "multi_worker"],
                  "auto: mirrored over all GPUs if there are several, else default. multi_worker: "
                  "MultiWorkerMirroredStrategy over the workers in the TF_CONFIG environment variable.")
flags.DEFINE_bool("expect_gpu", _T.expect_gpu,
                  "The run is meant for a GPU (configs/levi_hassner.flags and transfer.flags set it): when "
                  "TensorFlow finds none, say so in one line at the start (it trains on the CPU, many times "
                  "slower; pip install -e '.[gpu]' installs TensorFlow's CUDA libraries).")
flags.DEFINE_integer("cpu_devices", _T.cpu_devices,
                     "Split the CPU into this many logical devices; with --distribution=mirrored and no "
                     "GPU, each is a replica (tests and CPU stand-ins for multi-GPU runs).", lower_bound=1)
flags.DEFINE_enum("mixed_precision", _T.mixed_precision, ["auto", "off", "mixed_float16", "mixed_bfloat16"],
                  "auto: mixed_float16 on GPU, mixed_bfloat16 on CPUs with native bf16, else off.")
flags.DEFINE_bool("jit_compile", _T.jit_compile,
                  "Compile each replica's augmentation, forward and backward pass with XLA (see BENCHMARKS.md: "
                  "slower than TensorFlow's own kernels for Levi-Hassner on CPU).")
flags.DEFINE_integer("log_every", _T.log_every,
                     "Steps between progress lines and train summaries. The loss is read back from the device only "
                     "then (and at validations and checkpoints); on several workers a stop request (SIGTERM) also "
                     "takes effect at those steps.")
flags.DEFINE_integer("eval_every", _T.eval_every, "Steps between validation passes.")
flags.DEFINE_integer("checkpoint_every", _T.checkpoint_every, "Steps between checkpoints.")
flags.DEFINE_integer("keep_checkpoints", _T.keep_checkpoints, "Checkpoints kept.")
flags.DEFINE_integer("histogram_every", _T.histogram_every, "Steps between weight histograms; 0: none.")
flags.DEFINE_bool("export", _T.export, "Export a SavedModel with preprocessing and class names at the end.")


def configs_from_flags(values):
    """(DataConfig, ModelConfig, TrainConfig) from parsed flag values (an entry point's FLAGS):
    every field has the flag of its name (--image_size is the data's crop, the model's input).
    Settings the configs refuse raise app.UsageError with their message, for absl to print."""
    def value(name):
        found = values[name].value
        return tuple(found) if isinstance(found, list) else found  # Frozen configs hold tuples.

    if values["task"].present:
        said = ",".join(labels.TASK_HEADS[values["task"].value])
        logging.warning("--task is deprecated: %s", f"it is --heads={said} now" if not values["heads"].value else
                        f"and ignored, as --heads={','.join(values['heads'].value)} is given")
    try:
        return tuple(cls(**{f.name: value(f.name) for f in dataclasses.fields(cls)})
                     for cls in (DataConfig, ModelConfig, TrainConfig))
    except ValueError as e:
        raise app.UsageError(str(e)) from None
