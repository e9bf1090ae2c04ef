"""Trains and evaluates an age or gender classifier on a build_input shard set.

    python model.py --flagfile=configs/demo.flags          # the sample, a few minutes on 2 CPUs
    python model.py --flagfile=configs/levi_hassner.flags --shards_dir=data/tfrecords/adience

A custom training loop (tf.GradientTape in a tf.function, run by a tf.distribute
strategy) with mixed precision, checkpoints that resume, TensorBoard summaries, and at
the end the test fold's figures in <model_dir>/metrics.json and an exported SavedModel.
The flags are training/flags.py's; the loop is training/loop.py.
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
from training.loop import train_and_evaluate

flags.adopt_module_key_flags(training.flags)  # --help lists them as model.py's own.
FLAGS = flags.FLAGS


def print_table(metrics, test_fold, model_dir):
    print(f"test fold {test_fold} ({model_dir}/metrics.json):")
    for name in ("single_crop", "over_sampled"):
        for head, f in metrics[name].items():
            if head == "age_years":
                line = (f"  {name:12s} {head}: MAE {f['mae']:.1f} years, {100 * f['within_5']:.1f}% within 5, "
                        f"bin {100 * f['bin_accuracy']:.1f}%")
            else:
                line = f"  {name:12s} {head}: exact {100 * f['accuracy']:.1f}%"
                if "one_off_accuracy" in f:
                    line += f", one-off {100 * f['one_off_accuracy']:.1f}%"
                line += f", ECE {100 * f['ece']:.1f}%"
            gaps = [f"{a} gap {fair['gap'] if head == 'age_years' else 100 * fair['gap']:.1f}"
                    f"{'' if head == 'age_years' else ' pts'} ({fair['best']} best, {fair['worst']} worst)"
                    for a, fair in f["fairness"].items() if fair["gap"] is not None]
            print(line + f" ({f['num_examples']} faces)")
            if gaps:
                print(f"{'':16s}fairness: {'; '.join(gaps)}")
    if metrics["synthetic_data"]:
        print("note: trained and tested on a SYNTHETIC sample drawn by a program, not real faces.")


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
    except (FileNotFoundError, ShardsError) as e:
        sys.exit(f"model.py: error: {e}")
    if metrics is None:
        print("worker done: the chief writes metrics and the export")
        return
    print_table(metrics, data_cfg.test_fold, train_cfg.model_dir)


if __name__ == "__main__":
    app.run(main)
