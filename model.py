"""Trains and evaluates one network for any of the heads age, gender, race and age_years on a build_input shard set.

    python model.py --flagfile=configs/demo.flags          # the sample, a few minutes on 2 CPUs
    python model.py --flagfile=configs/levi_hassner.flags --shards_dir=data/tfrecords/adience

A custom training loop (tf.GradientTape in a tf.function, run by a tf.distribute
strategy) with mixed precision, checkpoints that resume, TensorBoard summaries, and at
the end the test fold's figures (none with --test_fold=-1: every fold trains) in
<model_dir>/metrics.json and an exported SavedModel.
The flags are training/flags.py's; the loop is training/loop.py. The same command run
again resumes; another command into the same --model_dir is refused (training/reruns.py).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO lines; warnings still show.

# ruff: noqa: E402 (imports after the environment set-up)
from absl import app, flags, logging

import training.flags
from input_pipeline.reader.manifest import ShardsError
from training import runtime
from training.checkpoints import Interrupted
from training.config import RunError
from training.loop import train_and_evaluate
from training.report import print_table

flags.adopt_module_key_flags(training.flags)  # --help lists them as model.py's own.
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    runtime.quiet_tensorflow_info()
    data_cfg, model_cfg, train_cfg = training.flags.configs_from_flags(FLAGS)
    try:
        metrics = train_and_evaluate(data_cfg, model_cfg, train_cfg)
    except Interrupted as e:
        logging.warning("%s", e)
        sys.exit(e.exit_status)
    except (FileNotFoundError, ShardsError, RunError) as e:
        sys.exit(f"model.py: error: {e}")
    if metrics is None:
        print("worker done: the chief writes metrics and the export")
        return
    print_table(metrics, data_cfg.test_fold, train_cfg.model_dir)


if __name__ == "__main__":
    app.run(main)
