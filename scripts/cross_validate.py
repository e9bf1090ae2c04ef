"""The Adience 5-fold protocol: train with each fold held out, test on it, tabulate.

    python scripts/cross_validate.py --flagfile=configs/demo.flags --cv_dir=runs/cv_demo
    python scripts/cross_validate.py --flagfile=configs/levi_hassner.flags --cv_dir=runs/cv_lh

Takes every flag of model.py (a preset and overrides) plus --cv_dir, --folds and
--retrain. Fold k trains in <cv_dir>/fold_<k> with --test_fold=k
(experiments/cross_validation.py). Resumable: a fold with a metrics.json of the same
settings is done and skipped; an interrupted fold resumes from its last checkpoint; a
fold trained with other settings is refused, naming them, unless --retrain. Writes
<cv_dir>/results.json, results.md (the headline score, then each figure per fold, mean
and standard deviation over folds, next to Levi & Hassner's figures) and results.png
(the confusion matrix summed over folds, and per-fold bars).

    python scripts/cross_validate.py --flagfile=configs/demo.flags --shards_dir=data/tfrecords/utkface_sample \\
        --heads=age,gender,race,age_years --age_bins=utk12 --train_steps=600 --folds=0 \\
        --compare_heads --cv_dir=runs/cv_heads

--compare_heads also trains one network per head (in <cv_dir>/only_<head>/) and adds a
table of the two to results.md: each head's figure, parameters and training time. With
--folds=0 only fold 0 is held out (five networks of 600 steps, about 14 minutes on 2 CPU
cores); without it, all five folds.
"""

import os
import sys

from absl import app, flags, logging

import training.flags
from experiments import cross_validation
from input_pipeline.reader.manifest import ShardsError
from training import runtime
from training.checkpoints import Interrupted
from training.config import RunError

flags.adopt_module_key_flags(training.flags)  # model.py's flags: --help lists them here too.
flags.DEFINE_string("cv_dir", "runs/cv", "Folder of the cross-validation: one model_dir per fold, results.")
flags.DEFINE_list("folds", ["0", "1", "2", "3", "4"], "Folds to hold out, in turn.")
flags.DEFINE_bool("retrain", False, "Train again, from the start, every fold whose folder holds a run of other "
                  "settings (without it such a fold is refused, naming the settings that differ).")
flags.DEFINE_bool("compare_heads", False, "With several --heads: also train one network per head, in "
                  "<cv_dir>/only_<head>/, and compare the two ways in results.md (figures, parameters, time).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    runtime.quiet_tensorflow_info()
    configs = training.flags.configs_from_flags(FLAGS)
    if FLAGS.compare_heads and len(configs[0].head_names) < 2:
        raise app.UsageError("--compare_heads needs at least two --heads")
    folds = [int(k) for k in FLAGS.folds]
    os.makedirs(FLAGS.cv_dir, exist_ok=True)
    try:
        if not FLAGS.retrain:  # Every folder checked before anything trains.
            cross_validation.refuse_other_runs(configs, folds, FLAGS.cv_dir, FLAGS.compare_heads)
        metrics = {k: cross_validation.run_fold(*configs, k, FLAGS.cv_dir, FLAGS.retrain) for k in folds}
        separate = (cross_validation.run_separate(configs, folds, FLAGS.cv_dir, FLAGS.retrain) if FLAGS.compare_heads
                    else None)
    except Interrupted as e:
        logging.warning("%s", e)
        sys.exit(e.exit_status)
    except (FileNotFoundError, ShardsError, RunError) as e:
        sys.exit(f"cross_validate.py: error: {e}")
    if any(m is None for m in metrics.values()):  # A multi-worker run's other worker: the chief tabulates.
        return
    print(cross_validation.write_results(FLAGS.cv_dir, metrics, configs))
    if separate:
        print(cross_validation.write_comparison(FLAGS.cv_dir, cross_validation.compare_heads(metrics, separate)))
    print(f"written: {FLAGS.cv_dir}/results.md, results.json, results.png")


if __name__ == "__main__":
    app.run(main)
