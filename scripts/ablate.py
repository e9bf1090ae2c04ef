"""The recipe's ablation: each piece of a training configuration turned off (or on) in its
own run, scored on the test fold and on labelled photos nobody trained on.

    python scripts/ablate.py --flagfile=configs/real_faces.flags --test_fold=0 --train_steps=1000 --warmup_steps=100 \\
        --photos=../shared/realfaces_dev/images --labels=../shared/realfaces_dev/labels.csv \\
        --output_dir=runs/ablation

Takes model.py's flags (the configuration every variant starts from) and trains, in
<output_dir>/<variant>, each of --variants (experiments/ablation.py: recipe, seed (the recipe
with another seed: the noise to read the other rows against), no_geometry, no_ema,
no_label_smoothing, no_flip_test, adam, mixup, cutmix, no_age_balance, age_balance,
no_gender_balance, no_gender_weight, years_l1, no_age_prior_correction, age_prior_correction,
levi_hassner; without --variants, every one that changes
something in the configuration given and whose heads it has). Each
export then predicts --photos with its default detector, as predict.py does, and
serving/score.py scores the answers against --labels (adults and children apart,
--adult_age). Writes ablation.md and ablation.json in --output_dir after each variant (rows
of variants not run this time are kept from ablation.json), and prints the table. A
variant's folder holding a finished run of the same settings is not trained again; one of
other settings is refused (another --output_dir, or delete it). A variant that changes
nothing in the configuration given (mixup when it has mixup already) is refused when named.
Rows are kept by variant name only: give each base configuration its own --output_dir.
"""

import glob
import json
import os
import sys

from absl import app, flags

import training.flags
from experiments import ablation
from input_pipeline.reader.manifest import ShardsError
from training import runtime
from training.checkpoints import Interrupted
from training.config import RunError

flags.DEFINE_list("variants", [], f"Variants to run, of {', '.join(ablation.VARIANTS)}; empty: every one that "
                  "changes something in the configuration given.")
flags.DEFINE_string("photos", "../shared/realfaces_dev/images", "A folder of labelled photos nobody trained on.")
flags.DEFINE_string("labels", "../shared/realfaces_dev/labels.csv", "Their labels (path, age, gender, race).")
flags.DEFINE_integer("adult_age", 18, "Photos' figures for adults (this age and over) and children apart; 0: not.",
                     lower_bound=0)
flags.DEFINE_string("output_dir", "runs/ablation", "Where each variant trains, and ablation.md goes.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = sorted(set(FLAGS.variants) - set(ablation.VARIANTS))
    if unknown:
        raise app.UsageError(f"unknown --variants {', '.join(unknown)}; choose from {', '.join(ablation.VARIANTS)}")
    photos = sorted(p for p in glob.glob(os.path.join(FLAGS.photos, "*")) if os.path.isfile(p))
    if not photos or not os.path.isfile(FLAGS.labels):
        raise app.UsageError(f"--photos={FLAGS.photos!r} holds no photos or --labels={FLAGS.labels!r} is not a file")
    runtime.quiet_tensorflow_info()
    configs = training.flags.configs_from_flags(FLAGS)
    if not configs[2].export:
        raise app.UsageError("--noexport: the photos are scored through each variant's export; drop it")
    try:
        configs[0].require_test_fold("ablate.py")
        variants = ablation.selected(configs, FLAGS.variants, FLAGS.output_dir)
    except (FileNotFoundError, ShardsError) as e:  # ShardsError is a ValueError: first.
        sys.exit(f"ablate.py: error: {e}")
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    saved = os.path.join(FLAGS.output_dir, "ablation.json")
    rows = []
    if os.path.isfile(saved):  # Earlier variants' rows stay; a variant run again replaces its own.
        with open(saved) as f:
            rows = json.load(f)
    try:
        for name in variants:
            row = ablation.run(configs, name, FLAGS.output_dir, photos, FLAGS.labels, FLAGS.adult_age or None)
            rows = ablation.merge(rows, row)
            with open(os.path.join(FLAGS.output_dir, "ablation.md"), "w") as f:
                f.write(ablation.table(rows))
            with open(saved, "w") as f:
                json.dump(rows, f, indent=2)
    except Interrupted as e:
        sys.exit(f"ablate.py: {e}")
    except (FileNotFoundError, ShardsError, RunError) as e:
        sys.exit(f"ablate.py: error: {e}")
    print(ablation.table(rows), end="")
    print(f"written: {FLAGS.output_dir}/ablation.md, ablation.json")


if __name__ == "__main__":
    app.run(main)
