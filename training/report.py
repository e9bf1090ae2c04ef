"""What model.py prints at the end of a run: its metrics.json as a table."""

from input_pipeline.writer.manifest import PER_IMAGE_NOTE


def print_table(metrics, test_fold, model_dir):
    """Prints a run's `metrics` (metrics.json): the test fold's figures, head by head and crop
    by crop, with their fairness gaps, or for a run with no test fold (untested) how to score
    its export instead; then what to keep in mind (uncalibrated, synthetic, per-image ids)."""
    selection = metrics["selection"]
    chosen = (f"step {selection['step']}'s weights, the best validation score ({selection['score']:.4f})"
              if "step" in selection else f"the final weights ({selection['by'].split(': ')[1].split(';')[0]})")
    tested = "untested" not in metrics
    if not tested:
        print(f"no test fold ({model_dir}/metrics.json), {chosen}: every fold trained, so nothing was tested."
              + (f" Score the export on labelled photos it never saw:\n"
                 f"  python scripts/predict.py --model={model_dir}/export --format=csv --output=predictions.csv "
                 f"<photos>\n"
                 f"  python scripts/score_predictions.py --model={model_dir}/export --predictions=predictions.csv "
                 f"--labels=<labels.csv>" if "export_dir" in metrics else ""))
    else:
        print(f"test fold {test_fold} ({model_dir}/metrics.json), {chosen}:")
    for name in ("single_crop", "over_sampled") if tested else ():
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
        print(f"note: trained{' and tested' if tested else ''} on a SYNTHETIC sample drawn by a program, not real "
              "faces.")
    if metrics["subject_ids"] == "per_image" and tested:
        print(f"note: {PER_IMAGE_NOTE}.")
