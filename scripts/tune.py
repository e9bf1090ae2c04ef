"""Hyperparameter search on Optuna: trains model.py's network once per trial and keeps the best.

    python scripts/tune.py --flagfile=configs/demo.flags --study_dir=runs/tune_demo --trials=12 \\
        --train_steps=300 --eval_every=100 --search=learning_rate:log:1e-4:3e-3 \\
        --search=dropout:float:0.2:0.7 --search=optimizer:choice:sgd,adam
    python scripts/tune.py --flagfile=configs/demo.flags --study_dir=runs/grid --sampler=grid \\
        --search=batch_size:choice:32,64 --search=optimizer:choice:sgd,adam

--search takes a model.py flag by its own name and a kind: float:low:high, log:low:high
(a float on a log scale), int:low:high, or choice:a,b,... Every other model.py flag
passes through to each trial. Trial n trains in <study_dir>/trial_<n> (checkpoints,
TensorBoard events, config.json) on the training folds, reports its validation score
(metrics.score, the headline figure: the mean over heads of accuracy, or of -MAE/10 for
age_years) at every --eval_every, and is pruned when it falls behind (--pruner). Trials
are chosen on validation only (--val_fraction must be > 0); at the end the best trial's
test fold is evaluated once and reported apart, and exported. A study remembers the
settings it does not search: a rerun with others is refused, naming them.

The study lives in --storage (default: a SQLite file in --study_dir). The same command
run again continues it: finished trials stay, an interrupted trial resumes from its
last checkpoint. Several tuners (processes or machines) given one --storage URL, e.g.
postgresql://user@host/db, share the study and never run a trial twice.

Writes trials.md and trials.csv (every trial's parameters, validation scores, state,
minutes), best.flags (the best trial's flags for model.py), history.png,
importances.png, parallel_coordinate.png and slice.png; `tensorboard
--logdir=<study_dir>` shows all trials side by side in its HParams tab.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO lines; warnings still show.

# ruff: noqa: E402 (imports after the environment set-up)
import optuna
from absl import app, flags, logging

import training.flags
from experiments import study_report, tuning
from input_pipeline.reader.manifest import ShardsError
from training import reruns, runtime
from training.checkpoints import Interrupted
from training.config import RunError
from training.loop import train_and_evaluate

flags.adopt_module_key_flags(training.flags)  # model.py's flags: --help lists them here too.
flags.DEFINE_multi_string("search", [], "A searched setting: <model.py flag>:<float|log|int>:<low>:<high> or "
                          "<flag>:choice:<a>,<b>,... (repeat the flag for each).")
flags.DEFINE_string("study_dir", "runs/tune", "Everything of one study: the trials, the tables, the plots and, "
                    "by default, the study's SQLite database.")
flags.DEFINE_string("storage", "", "An Optuna storage URL (sqlite:///..., postgresql://..., mysql://...) that "
                    "several tuners can share. Empty: sqlite:///<study_dir>/study.db.")
flags.DEFINE_string("study_name", "tune", "The study's name in --storage.")
flags.DEFINE_enum("sampler", "tpe", ["tpe", "random", "grid"],
                  "tpe: Optuna's Tree-structured Parzen Estimator; random; grid: every combination of the "
                  "listed choices (all --search values must be choice), each once.")
flags.DEFINE_enum("pruner", "median", ["median", "hyperband", "none"],
                  "median: stop a trial whose validation score is below the median of earlier trials at the "
                  "same step; hyperband: Optuna's Hyperband over --eval_every..--train_steps; none: never stop one.")
flags.DEFINE_integer("pruner_startup_trials", 3, "median: trials that finish before any is pruned.", lower_bound=0)
flags.DEFINE_integer("trials", 20, "Finished trials (complete or pruned) the study ends with, over all tuners "
                     "and reruns; a grid also ends when every combination is done.", lower_bound=1)
flags.DEFINE_float("timeout", 0, "Stop starting trials after this many seconds (the running one finishes); "
                   "0: no limit.", lower_bound=0)
flags.DEFINE_integer("sampler_seed", 0, "Seed of the sampler.")
flags.DEFINE_integer("heartbeat_seconds", 60, "A running trial's tuner writes a heartbeat this often; a trial "
                     "silent for three intervals is failed and resumed by another tuner.", lower_bound=1)
FLAGS = flags.FLAGS


def make_sampler(name, space, seed):
    if name == "grid":
        return optuna.samplers.GridSampler(tuning.grid(space), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name, startup_trials, eval_every, train_steps):
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=eval_every, max_resource=train_steps)
    return optuna.pruners.NopPruner()


def parse_choice(name, text):
    """A listed value in the flag's own type, checked by its own parser."""
    return FLAGS[name].parser.parse(text)


def passed_flags():
    """[(name, its flagfile line)] of the model.py flags set on the command line or in a flagfile."""
    return [(flag.name, flag.serialize()) for flag in FLAGS.get_flags_for_module(training.flags) if flag.present]


def evaluate_best(study, configs, space):
    """The best trial's test fold, evaluated once: test_metrics.json, kept for reruns."""
    best = study.best_trial
    path = os.path.join(FLAGS.study_dir, "test_metrics.json")
    if os.path.isfile(path):
        with open(path) as f:
            saved = json.load(f)
        if saved.get("trial") == best.number:
            return saved["metrics"]
    lock = os.path.join(FLAGS.study_dir, f"test_of_trial_{best.number}.lock")
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        logging.info("another tuner is evaluating trial %d's test fold", best.number)
        return None
    try:
        model_dir = best.user_attrs["model_dir"]
        values = {p.name: best.params[p.name] for p in space}
        metrics = train_and_evaluate(*tuning.with_params(configs, {**values, "model_dir": model_dir}))
        with open(path, "w") as f:
            json.dump({"trial": best.number, "params": best.params, "metrics": metrics}, f, indent=2)
        return metrics
    finally:
        os.remove(lock)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    runtime.quiet_tensorflow_info()
    try:
        space = [tuning.parse_param(spec, parse_choice) for spec in FLAGS.search]
        if not space:
            raise ValueError("give at least one --search, e.g. --search=learning_rate:log:1e-4:1e-2")
        if len({p.name for p in space}) != len(space):
            raise ValueError("a setting is searched twice")
        configs = training.flags.configs_from_flags(FLAGS)
        configs[0].require_test_fold("tune.py")
        if not configs[0].val_fraction:
            raise ValueError("--val_fraction=0 leaves no validation split, and trials are chosen on validation "
                             "only (never on the test fold): give it a share, e.g. --val_fraction=0.1")
        sampler = make_sampler(FLAGS.sampler, space, FLAGS.sampler_seed)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    os.makedirs(FLAGS.study_dir, exist_ok=True)
    url = FLAGS.storage or f"sqlite:///{os.path.abspath(os.path.join(FLAGS.study_dir, 'study.db'))}"
    study = optuna.create_study(storage=tuning.make_storage(url, FLAGS.heartbeat_seconds), sampler=sampler,
                                pruner=make_pruner(FLAGS.pruner, FLAGS.pruner_startup_trials, configs[2].eval_every,
                                                   configs[2].train_steps),
                                study_name=FLAGS.study_name, direction="maximize", load_if_exists=True)
    searched = sorted(FLAGS.search)
    if study.user_attrs.get("search", searched) != searched:
        sys.exit(f"tune.py: error: study {FLAGS.study_name!r} in {url} searches {study.user_attrs['search']}, not "
                 f"{searched}; use the same --search or another --study_dir / --study_name")
    try:
        fixed = tuning.fixed_settings(configs, space)
    except (FileNotFoundError, ShardsError) as e:
        sys.exit(f"tune.py: error: {e}")
    # A study with trials and no record of its settings was run by an older version: unknown.
    recorded = study.user_attrs.get("fixed", {} if study.get_trials(deepcopy=False) else fixed)
    changed = reruns.differences(recorded, fixed)
    if changed:
        sys.exit(f"tune.py: error: study {FLAGS.study_name!r} in {url} was run with other settings "
                 f"({'; '.join(changed)}): its trials are not comparable with this command's. Use the same flags, "
                 "or another --study_dir / --study_name")
    study.set_user_attr("search", searched)
    study.set_user_attr("fixed", fixed)
    study_report.write_hparams_config(FLAGS.study_dir, space)
    tuner = tuning.Tuner(study, configs, space, FLAGS.study_dir, FLAGS.trials, FLAGS.timeout or None)
    try:
        tuner.run()
        print(study_report.write_table(FLAGS.study_dir, study_report.rows(study, space)), end="")
        for name, result in study_report.write_plots(study, FLAGS.study_dir).items():
            print(f"{name}: {result}")
        test = None
        if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            best = study.best_trial
            flagfile = os.path.join(FLAGS.study_dir, "best.flags")
            with open(flagfile, "w") as f:
                f.write(study_report.flagfile(passed_flags(), best.params,
                                              os.path.join(FLAGS.study_dir, "best_model")))
            print(f"best trial's flags: {flagfile}")
            test = evaluate_best(study, configs, space)
    except Interrupted as e:
        logging.warning("%s; the trial will resume when the same command runs again", e)
        sys.exit(e.exit_status)
    except (FileNotFoundError, ShardsError, RunError) as e:
        sys.exit(f"tune.py: error: {e}")
    print(study_report.summary(study, test), end="")


if __name__ == "__main__":
    app.run(main)
