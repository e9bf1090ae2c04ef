"""Trains and evaluates one network for any of the heads age, gender, race and age_years on a build_input shard set.

    python model.py --flagfile=configs/demo.flags          # the sample, a few minutes on 2 CPUs
    python model.py --flagfile=configs/levi_hassner.flags --shards_dir=data/tfrecords/adience

A custom training loop (tf.GradientTape in a tf.function, run by a tf.distribute
strategy) with mixed precision, checkpoints that resume, TensorBoard summaries, and at
the end the test fold's figures in <model_dir>/metrics.json and an exported SavedModel.
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
from input_pipeline.writer.manifest import PER_IMAGE_NOTE
from training import runtime
from training.checkpoints import Interrupted
from training.config import RunError
from training.loop import train_and_evaluate

flags.adopt_module_key_flags(training.flags)  # --help lists them as model.py's own.
FLAGS = flags.FLAGS


def print_table(metrics, test_fold, model_dir):
    selection = metrics["selection"]
    chosen = (f"step {selection['step']}'s weights, the best validation score ({selection['score']:.4f})"
              if "step" in selection else f"the final weights ({selection['by'].split(': ')[1].split(';')[0]})")
    if "untested" in metrics:
        print(f"no test fold ({model_dir}/metrics.json), {chosen}: every fold trained, so nothing was tested. "
              f"Score the export on labelled photos of your own:\n"
              f"  python scripts/predict.py --model={model_dir}/export --format=csv --output=predictions.csv <photos>\n"
              f"  python scripts/score_predictions.py --model={model_dir}/export --predictions=predictions.csv "
              f"--labels=<labels.csv>")
    else:
        print(f"test fold {test_fold} ({model_dir}/metrics.json), {chosen}:")
    for name in ("single_crop", "over_sampled") if "untested" not in metrics else ():
        for head, f in metrics[name].items():
            if not f["num_examples"]:
                print(f"  {name:12s} {head}: no labelled test faces")
                continue
            if head == "age_years":
                line = (f"  {name:12s} {head}: MAE {f['mae']:.1f} years, {100 * f['within_5']:.1f}% within 5, "
                        + (f"bin {100 * f['bin_accuracy']:.1f}%" if f["bin_accuracy"] is not None else "no bins"))
            else:
                line = f"  {name:12s} {head}: exact {100 * f['accuracy']:.1f}%"
                if "one_off_accuracy" in f:
                    line += f", one-off {100 * f['one_off_accuracy']:.1f}%"
                line += f", ECE {100 * f['ece']:.1f}%"
                if f.get("ece_calibrated") is not None:
                    line += f" ({100 * f['ece_calibrated']:.1f}% calibrated, T={f['temperature']:.2f})"
            gaps = [f"{a} gap {fair['gap'] if head == 'age_years' else 100 * fair['gap']:.1f}"
                    f"{'' if head == 'age_years' else ' pts'} ({fair['best']} best, {fair['worst']} worst)"
                    for a, fair in f["fairness"].items() if fair["gap"] is not None]
            print(line + f" ({f['num_examples']} faces)")
            if gaps:
                print(f"{'':16s}fairness: {'; '.join(gaps)}")
    calibration = metrics.get("calibration", {})
    class_heads = [h for h in metrics.get("heads", []) if h != "age_years"]
    if class_heads and not any(calibration.get("temperatures", {}).values()):
        by = calibration.get("by", "none: a run from before calibration")
        why = by.split(": ", 1)[-1] if by.startswith("none") else "no head had a labelled validation face"
        print(f"note: the exported probabilities are NOT calibrated ({why}).")
    if metrics["synthetic_data"]:
        print("note: trained and tested on a SYNTHETIC sample drawn by a program, not real faces.")
    if metrics["subject_ids"] == "per_image":
        print(f"note: {PER_IMAGE_NOTE}.")


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
