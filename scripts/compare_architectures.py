"""Compares architectures: the headline score against cost, measured in one run on this machine.

    python scripts/compare_architectures.py --flagfile=configs/demo.flags --weights=none \\
        --train_minutes=3 --output_dir=runs/compare

For each of --archs (default: levi_hassner, compact and every transfer backbone): parameters,
multiply-adds per image (counted from the built model's Conv and Dense layers), training
images/s through model.py's own train step, inference latency at batch 1 and 64, then
training under one budget (--train_steps, or --train_minutes: the steps each
architecture's measured speed fits in that time) in <output_dir>/<arch>, its best
validation score and its test fold's score (metrics.score: the mean over heads of
accuracy, or -MAE/10 for age_years). Writes comparison.md, comparison.csv and
comparison.png (validation score against multiply-adds) and names the cheapest
architecture whose validation score reaches --target_score; the test fold is reported
beside it, evaluated once, never used to choose. Every model.py flag applies
(--shards_dir, --image_size, --weights, ...); with --weights=imagenet (where the weights
can be downloaded) the same command compares fine-tuned backbones: pass another
--output_dir, or --retrain. A finished architecture is read back only when it was
trained with the same settings; one trained with others is refused, naming them, unless
--retrain.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO lines; warnings still show.

# ruff: noqa: E402 (imports after the environment set-up)
from absl import app, flags, logging

import architectures
import training.flags
from experiments import architecture_comparison
from input_pipeline.reader.manifest import ShardsError
from training import runtime
from training.checkpoints import Interrupted
from training.config import RunError

flags.adopt_module_key_flags(training.flags)  # model.py's flags: --help lists them here too.
flags.DEFINE_list("archs", ["levi_hassner", "compact", *architectures.transfer.BACKBONES],
                  "Architectures to compare.")
flags.DEFINE_string("output_dir", "runs/compare", "Where each architecture trains and the table and plot go.")
flags.DEFINE_float("train_minutes", 0, "Budget per architecture in minutes of training at its measured speed; "
                   "0: --train_steps steps each.", lower_bound=0)
flags.DEFINE_float("target_score", 0.5, "Name the cheapest architecture whose validation score reaches this: "
                   "metrics.score, the mean over heads of accuracy (0..1), or for age_years of -MAE/10 (-0.5 is "
                   "an MAE of 5 years), so with age_years among the heads it is not an accuracy.")
flags.DEFINE_float("target_accuracy", None, "Deprecated: --target_score (the same figure, which is an accuracy "
                   "only when every head is a class head).")
flags.DEFINE_bool("retrain", False, "Train again, from the start, every architecture whose folder holds a run of "
                  "other settings (without it such a folder is refused, naming the settings that differ).")
flags.DEFINE_integer("timed_steps", 10, "Training steps timed per architecture (after 3 untimed).", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = sorted(set(FLAGS.archs) - set(architectures.ARCHITECTURES))
    if unknown:
        raise app.UsageError(f"unknown --archs {', '.join(unknown)}; choose from {sorted(architectures.ARCHITECTURES)}")
    target = FLAGS.target_score
    if FLAGS.target_accuracy is not None:
        logging.warning("--target_accuracy is deprecated: it is --target_score now")
        target = FLAGS.target_accuracy
    runtime.quiet_tensorflow_info()
    configs = training.flags.configs_from_flags(FLAGS)
    try:
        configs[0].require_test_fold("compare_architectures.py")
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    if not configs[0].val_fraction:
        raise app.UsageError("--val_fraction=0 leaves no validation split, and architectures are chosen on "
                             "validation, never on the test fold: give it a share, e.g. --val_fraction=0.1")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    rows = []
    try:
        budget = (configs[2].train_steps if not FLAGS.train_minutes else 0, FLAGS.train_minutes)
        if not FLAGS.retrain:  # Every folder checked before anything is measured or trained.
            architecture_comparison.refuse_other_runs(configs, FLAGS.archs, FLAGS.output_dir, *budget)
        for arch in FLAGS.archs:
            rows.append(architecture_comparison.run_one(configs, arch, FLAGS.output_dir, *budget, FLAGS.timed_steps,
                                                        FLAGS.retrain))
            architecture_comparison.write(FLAGS.output_dir, rows, target)  # After each one.
    except Interrupted as e:
        sys.exit(f"compare_architectures.py: {e}")
    except (FileNotFoundError, ShardsError, RunError) as e:
        sys.exit(f"compare_architectures.py: error: {e}")
    print(architecture_comparison.write(FLAGS.output_dir, rows, target), end="")
    print(f"written: {FLAGS.output_dir}/comparison.md, comparison.csv, comparison.png")


if __name__ == "__main__":
    app.run(main)
