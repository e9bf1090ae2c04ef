"""Hyperparameter search on Optuna over model.py's own settings.

A search space is a list of Params named after config fields (the flags of model.py).
Each trial trains with training.loop.train_and_evaluate in <study_dir>/trial_<n>, reports
its validation score at every evaluation and is pruned when it falls behind; it never
looks at the test fold. The study lives in an Optuna storage (a SQLite file by default,
or a database several processes share), so that:

- a tuner killed and rerun with the same command continues: its unfinished trial is
  marked failed and a new trial with the same parameters resumes its checkpoints in the
  same directory (RESUMES names it);
- tuners on several processes or machines share the study: Optuna hands each trial to
  one of them, a trial whose tuner stopped sending heartbeats is failed and resumed, and
  none starts a trial once the study has its number of trials running or finished.
"""

import dataclasses
import os
import socket
import time
import warnings

import optuna
import tensorflow as tf
from absl import logging
from optuna.trial import TrialState

from architectures.config import ModelConfig
from input_pipeline.config import DataConfig
from training import reruns
from training.checkpoints import Interrupted
from training.config import RunError, TrainConfig
from training.loop import train_and_evaluate

KINDS = ("float", "log", "int", "choice")
# Settings a search may not change: where a trial writes, and the test fold it must not see.
FIXED = ("model_dir", "test_fold")
RESUMES = "resumes"  # User attribute of a trial that continues an interrupted trial's directory.
SURPLUS = "surplus"  # User attribute of a trial started after the study had its number of trials.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SCORE_TAG = "tuning/validation_score"  # The metric TensorBoard's HParams dashboard shows per trial.


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched setting: a float range (linear or log), an int range or listed choices."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def suggest(self, trial):
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")


def config_fields():
    """{field name: its default} of DataConfig, ModelConfig and TrainConfig (model.py's flags)."""
    return {f.name: getattr(cls(), f.name) for cls in (DataConfig, ModelConfig, TrainConfig)
            for f in dataclasses.fields(cls)}


def parse_param(spec, parse_choice):
    """The Param of a --search value "name:kind:args": learning_rate:log:1e-4:1e-2,
    dropout:float:0.2:0.6, batch_size:int:16:64, optimizer:choice:sgd,adam.
    `parse_choice(name, text)` turns a listed value into the setting's type. ValueError
    saying what is wrong."""
    name, _, rest = spec.partition(":")
    kind, _, args = rest.partition(":")
    fields = config_fields()
    if name not in fields or name in FIXED:
        raise ValueError(f"--search={spec}: {name!r} is not a setting a search can change (a model.py flag other "
                         f"than {', '.join(FIXED)})")
    if kind not in KINDS:
        raise ValueError(f"--search={spec}: the kind must be one of {', '.join(KINDS)}, e.g. "
                         "learning_rate:log:1e-4:1e-2")
    if isinstance(fields[name], tuple):
        raise ValueError(f"--search={spec}: {name} is a list setting; search its values as one choice")
    if kind == "choice":
        choices = tuple(parse_choice(name, text.strip()) for text in args.split(",") if text.strip())
        if len(choices) < 2 or len(set(choices)) != len(choices):
            raise ValueError(f"--search={spec}: list at least two different values, e.g. {name}:choice:a,b")
        return Param(name, kind, choices=choices)
    low, sep, high = args.partition(":")
    number = int if kind == "int" else float
    try:
        low, high = number(low), number(high)
    except ValueError:
        raise ValueError(f"--search={spec}: {kind} needs a low and a high bound, e.g. {name}:{kind}:1:10") from None
    if not sep or low >= high or (kind == "log" and low <= 0):
        raise ValueError(f"--search={spec}: need low < high{' and low > 0 on a log scale' if kind == 'log' else ''}")
    if kind != "int" and isinstance(fields[name], int):  # bool is an int too.
        raise ValueError(f"--search={spec}: {name} is an integer setting; use {name}:int:low:high")
    return Param(name, kind, low, high)


def grid(space):
    """Optuna's GridSampler space: every combination of the listed choices."""
    ranged = [p.name for p in space if p.kind != "choice"]
    if ranged:
        raise ValueError(f"--sampler=grid takes listed values only (name:choice:a,b,...); {', '.join(ranged)} "
                         "is a range")
    return {p.name: list(p.choices) for p in space}


def with_params(configs, values):
    """(DataConfig, ModelConfig, TrainConfig) with each named setting replaced in every
    config that has it."""
    return tuple(dataclasses.replace(cfg, **{k: v for k, v in values.items()
                                             if k in {f.name for f in dataclasses.fields(cfg)}})
                 for cfg in configs)


def make_score_logger(trial_dir):
    """A function (step, score) that logs a trial's validation score in <trial_dir>/train,
    the run whose HParams session training.loop writes: the dashboard's metric column."""
    writer = tf.summary.create_file_writer(os.path.join(trial_dir, "train"))

    def log(step, score):
        with writer.as_default():
            tf.summary.scalar(SCORE_TAG, score, step=step)
        writer.flush()

    return log


def fixed_settings(configs, space):
    """The fingerprint every trial of a study shares: the settings it does not search,
    and not the trials' own folders."""
    searched = {p.name for p in space} | {"model_dir"}
    return {name: value for name, value in reruns.fingerprint(*configs).items() if name not in searched}


def trial_dir(study_dir, trial):
    """<study_dir>/trial_<n>, n the number of the trial this one resumes, if any."""
    return os.path.join(study_dir, f"trial_{trial.user_attrs.get(RESUMES, trial.number)}")


class Tuner:
    """Runs trials of one study until it has `trials` finished (complete or pruned) ones,
    or `timeout` seconds have passed, or a grid is done."""

    def __init__(self, study, configs, space, study_dir, trials, timeout=None, poll_seconds=5.0):
        self.study, self.configs, self.space, self.study_dir = study, configs, space, study_dir
        self.trials, self.timeout, self.poll_seconds = trials, timeout, poll_seconds
        self.current = None  # The trial this process is training.

    def objective(self, trial):
        self.current = trial
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if self._surplus(trial):
            trial.set_user_attr(SURPLUS, True)
            raise Surplus(f"trial {trial.number}: the study already has its {self.trials} trials")
        values = {p.name: p.suggest(trial) for p in self.space}
        model_dir = trial_dir(self.study_dir, trial)
        trial.set_user_attr("model_dir", model_dir)
        data_cfg, model_cfg, train_cfg = with_params(self.configs, {**values, "model_dir": model_dir})
        logging.info("trial %d in %s: %s", trial.number, model_dir, values)

        log_score = make_score_logger(model_dir)

        def report(step, score):
            if score is None:
                raise RunError(f"trial {trial.number}: the validation split had no labelled face at step {step}; "
                               "a search needs one (raise --val_fraction)")
            log_score(step, score)
            trial.report(score, step)
            if step < train_cfg.train_steps and trial.should_prune():  # Not once the training is done.
                raise optuna.TrialPruned(f"validation score {score:.4f} at step {step} is behind the other trials")

        result = train_and_evaluate(data_cfg, model_cfg, train_cfg, on_validation=report, test=False)
        trial.set_user_attr("train_seconds", result["train_seconds"])
        trial.set_user_attr("num_parameters", result["num_parameters"])
        return result["best_val"]

    def run(self):
        """Trials until the study is done; raises Interrupted (the trial saved, and queued to resume)."""
        start = time.monotonic()
        while True:
            fail_dead_trials(self.study)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)  # Tuners elsewhere that stopped their heartbeat.
            states = [t.state for t in self.study.get_trials(deepcopy=False)]
            finished = sum(s in FINISHED for s in states)
            running = states.count(TrialState.RUNNING)
            sampler = self.study.sampler
            if (finished >= self.trials or (self.timeout and time.monotonic() - start > self.timeout)
                    or (isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(self.study)
                        and not running)):
                return
            if finished + running >= self.trials:  # Others are training the last ones: wait for them.
                time.sleep(self.poll_seconds)
                continue
            self.current = None
            try:
                self.study.optimize(self.objective, n_trials=1, catch=(FloatingPointError, Surplus),
                                    gc_after_trial=True)
            except Interrupted:
                if self.current is not None:
                    resume(self.study, self.study.get_trials(deepcopy=False)[self.current.number])
                raise

    def _surplus(self, trial):
        """Whether `trial` was started (at the same moment as another tuner's) after the
        study had its number of trials: earlier running and finished ones fill it."""
        earlier = [t for t in self.study.get_trials(deepcopy=False)
                   if t.number < trial.number and (t.state in FINISHED or t.state == TrialState.RUNNING)]
        return len(earlier) >= self.trials


class Surplus(Exception):
    """A trial started after the study had its number of trials; it is failed at once."""


def resume(study, failed):
    """Queues a trial with the parameters of `failed` that continues its directory."""
    study.enqueue_trial(failed.params, user_attrs={RESUMES: failed.user_attrs.get(RESUMES, failed.number)})
    logging.warning("trial %d did not finish; a new trial will resume it from its last checkpoint", failed.number)


def fail_dead_trials(study):
    """Fails the running trials of this machine whose tuner process is gone (killed) and
    queues their resumption. Only the tuner that fails a trial queues it: the storage
    refuses the second."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") != host or pid is None or _alive(pid):
            continue
        try:
            if study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                resume(study, trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # Another tuner failed it first.


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_storage(url, heartbeat_seconds, attempts=5):
    """Optuna's RDBStorage with heartbeats: a trial whose tuner stopped sending them for
    three intervals is failed and resumed by another tuner. Tuners started together on a
    new database race to create its tables; the loser tries again once they exist."""
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_seconds,
                                              grace_period=3 * heartbeat_seconds,
                                              heartbeat_stale_trial_callback=resume)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
