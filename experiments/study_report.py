"""What a study leaves in its directory: the trials table, the best trial's flagfile,
Optuna's plots as PNG, and the TensorBoard HParams set-up that shows the trials side by side."""

import collections
import csv
import io
import os

import tensorflow as tf
from optuna.trial import TrialState
from tensorboard.plugins.hparams import api as hp

from experiments import tuning


def rows(study, space):
    """One dict per trial: number, state, parameters, best and last validation score,
    the step it was last scored at, minutes, its directory and a note."""
    out = []
    resumed_by = {t.user_attrs[tuning.RESUMES]: t.number for t in study.get_trials(deepcopy=False)
                  if tuning.RESUMES in t.user_attrs}
    for t in study.get_trials(deepcopy=False):
        steps = sorted(t.intermediate_values)
        minutes = ((t.datetime_complete - t.datetime_start).total_seconds() / 60
                   if t.datetime_complete and t.datetime_start else None)
        note = ""
        if t.state == TrialState.PRUNED:
            note = f"pruned at step {steps[-1]}" if steps else "pruned"
        elif t.user_attrs.get(tuning.SURPLUS):
            note = "not run: the study had its trials"
        elif t.state in (TrialState.FAIL, TrialState.RUNNING) and t.number in resumed_by:
            note = f"interrupted; resumed by trial {resumed_by[t.number]}"
        elif t.state == TrialState.FAIL:
            note = "failed"
        if tuning.RESUMES in t.user_attrs:
            note = f"resumes trial {t.user_attrs[tuning.RESUMES]}" + (f"; {note}" if note else "")
        out.append({"trial": t.number, "state": t.state.name.lower(),
                    **{p.name: t.params.get(p.name, "") for p in space},
                    "best_val": t.value if t.value is not None else "",
                    "last_val": t.intermediate_values[steps[-1]] if steps else "",
                    "last_step": steps[-1] if steps else "",
                    "minutes": round(minutes, 2) if minutes is not None else "",
                    "model_dir": t.user_attrs.get("model_dir", ""), "note": note})
    return out


def markdown(table):
    if not table:
        return "no trials yet\n"
    names = list(table[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in table:
        lines.append("| " + " | ".join(_cell(row[n]) for n in names) + " |")
    return "\n".join(lines) + "\n"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_table(study_dir, table):
    """trials.md and trials.csv; returns the markdown."""
    text = markdown(table)
    with open(os.path.join(study_dir, "trials.md"), "w") as f:
        f.write(text)
    with open(os.path.join(study_dir, "trials.csv"), "w", newline="") as f:
        if table:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    return text


def flagfile(passed, best_params, model_dir):
    """A model.py flagfile: the flags the tuner was given, the best trial's values, and
    a model_dir of its own. `passed`: [(name, its flagfile line "--name=value")]."""
    lines = ["# The best trial's settings: python model.py --flagfile=<this file>"]
    lines += [line for name, line in passed if name not in best_params and name != "model_dir"]
    lines += [f"--{name}={_flag_text(value)}" for name, value in best_params.items()]
    lines.append(f"--model_dir={model_dir}")
    return "\n".join(lines) + "\n"


def _flag_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def write_plots(study, study_dir):
    """Optimization history, parameter importances, parallel coordinates and slices as
    PNG; returns {name: path or the reason it was not drawn}."""
    import matplotlib

    matplotlib.use("Agg")  # Files only, no display.
    import warnings

    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    out = {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    for name, draw, needs in (("history", plots.plot_optimization_history, 1),
                              ("importances", plots.plot_param_importances, 2),
                              ("parallel_coordinate", plots.plot_parallel_coordinate, 2),
                              ("slice", plots.plot_slice, 1)):
        if len(complete) < needs:
            out[name] = f"needs {needs} complete trials, the study has {len(complete)}"
            continue
        path = os.path.join(study_dir, f"{name}.png")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental.
                axes = draw(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(9, 5.5)
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
            out[name] = path
        except (ValueError, RuntimeError) as e:  # E.g. importances of parameters that never varied.
            out[name] = f"not drawn: {e}"
    return out


def write_hparams_config(study_dir, space):
    """The HParams dashboard's experiment at the study's root: the searched parameters
    and the validation score each trial logs (tensorboard --logdir=<study_dir>)."""
    hparams = [hp.HParam(p.name, hp.Discrete(list(p.choices)) if p.kind == "choice" else
                         (hp.IntInterval(int(p.low), int(p.high)) if p.kind == "int" else
                          hp.RealInterval(float(p.low), float(p.high)))) for p in space]
    with tf.summary.create_file_writer(study_dir).as_default():
        hp.hparams_config(hparams=hparams, metrics=[hp.Metric(tuning.SCORE_TAG, display_name="validation score")])


def summary(study, test_figures=None):
    """Lines for a person: trials by state, the best one, its test figures."""
    out = io.StringIO()
    trials = study.get_trials(deepcopy=False)
    counts = collections.Counter(t.state.name.lower() for t in trials)
    out.write(f"{len(trials)} trials: " + ", ".join(f"{n} {state}" for state, n in counts.items()) + "\n")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        out.write(f"best: trial {best.number}, validation score {best.value:.4f}, {best.params}\n")
    if test_figures:
        out.write(f"test fold {test_figures['test_fold']} of the best trial, evaluated once (reported apart; not "
                  "used to choose):\n")
        for head, f in test_figures["single_crop"].items():
            if not f["num_examples"]:
                figure = "no labelled faces"
            else:
                figure = f"MAE {f['mae']:.2f} years" if head == "age_years" else f"{100 * f['accuracy']:.1f}%"
            out.write(f"  {head}: {figure} single crop\n")
    return out.getvalue()
