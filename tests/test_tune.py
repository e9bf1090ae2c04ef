"""experiments/tuning.py and scripts/tune.py: Optuna studies over model.py's flags that prune,
resume after a kill, share one storage between tuners and walk a grid."""

import csv
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import plugin_data_pb2

from configs import tiny
from experiments import study_report, tuning
from processes import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "tune.py")
TINY = ["--image_size=24", "--batch_size=4", "--val_fraction=0.3", "--shuffle_buffer=16", "--optimizer=adam",
        "--schedule=constant", "--log_every=2", "--histogram_every=0", "--mixed_precision=off", "--weights=none"]


def tune(shards, study_dir, *extra, wait=True):
    command = [sys.executable, SCRIPT, f"--shards_dir={shards}", f"--study_dir={study_dir}", *TINY, *extra]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def load(study_dir):
    return optuna.load_study(study_name="tune", storage=f"sqlite:///{os.path.join(study_dir, 'study.db')}")


def states(study):
    return [t.state.name for t in study.get_trials()]


def hparams_data(folder):
    """{summary tag: HParamsPluginData} of the TensorBoard events in folder, as the HParams tab reads them."""
    found = {}
    for name in os.listdir(folder):
        if name.startswith("events.out.tfevents"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name == "hparams":
                        found[value.tag] = plugin_data_pb2.HParamsPluginData.FromString(
                            value.metadata.plugin_data.content)
    return found


def test_search_specs():
    parse = {"optimizer": str, "batch_size": int}.get
    assert tuning.parse_param("learning_rate:log:1e-4:1e-2", None) == tuning.Param("learning_rate", "log", 1e-4, 1e-2)
    assert tuning.parse_param("batch_size:choice:16,32", lambda n, t: parse(n)(t)).choices == (16, 32)
    for spec, message in (("model_dir:choice:a,b", "not a setting"), ("test_fold:int:0:4", "not a setting"),
                          ("nope:float:0:1", "not a setting"), ("dropout:uniform:0:1", "kind must be"),
                          ("dropout:float:0.6:0.2", "low < high"), ("learning_rate:log:0:1", "low > 0"),
                          ("batch_size:float:8:64", "integer setting"), ("heads:choice:age,gender", "list setting"),
                          ("optimizer:choice:adam", "at least two")):
        with pytest.raises(ValueError, match=message):
            tuning.parse_param(spec, lambda n, t: t)
    with pytest.raises(ValueError, match="listed values only"):
        tuning.grid([tuning.Param("dropout", "float", 0.1, 0.5)])
    data, model, train = tuning.with_params(tiny("s"), {"image_size": 32, "dropout": 0.3, "learning_rate": 0.1})
    assert data.image_size == 32 and not hasattr(model, "image_size") and model.dropout == 0.3 and train.learning_rate == 0.1


class PruneAtStep4(optuna.pruners.BasePruner):
    """Prunes every trial after trial 0 once it has reported step 4."""

    def prune(self, study, trial):
        return trial.number > 0 and max(trial.intermediate_values, default=0) >= 4


def test_a_pruned_trial_stops_and_is_marked_pruned(small_shards, tmp_path):
    study = optuna.create_study(direction="maximize", pruner=PruneAtStep4(),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    space = [tuning.Param("learning_rate", "log", 1e-4, 1e-2)]
    configs = tiny(small_shards, train_steps=8, eval_every=2, checkpoint_every=4, histogram_every=0)
    tuning.Tuner(study, configs, space, str(tmp_path), trials=2).run()
    first, second = study.get_trials()
    assert first.state.name == "COMPLETE" and sorted(first.intermediate_values) == [2, 4, 6, 8]
    assert second.state.name == "PRUNED" and sorted(second.intermediate_values) == [2, 4]
    rows = study_report.rows(study, space)
    assert rows[1]["note"] == "pruned at step 4" and rows[1]["state"] == "pruned"


def test_a_three_trial_tpe_study_writes_its_table_flagfile_and_plots(small_shards, tmp_path):
    study_dir = tmp_path / "study"
    result = tune(small_shards, study_dir, "--trials=3", "--train_steps=4", "--eval_every=2", "--checkpoint_every=2",
                  "--search=learning_rate:log:1e-4:1e-2", "--search=dropout:float:0.2:0.6")
    study = load(study_dir)
    assert states(study) == ["COMPLETE"] * 3
    with open(study_dir / "trials.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["trial"] for r in table] == ["0", "1", "2"] and all(r["state"] == "complete" for r in table)
    assert {"learning_rate", "dropout", "best_val", "minutes", "model_dir"} <= set(table[0])
    assert "| trial | state | learning_rate | dropout |" in (study_dir / "trials.md").read_text()
    for name in ("history", "importances", "parallel_coordinate", "slice"):
        assert (study_dir / f"{name}.png").stat().st_size > 5000, name
    best = study.best_trial
    flags = (study_dir / "best.flags").read_text().splitlines()
    assert f"--learning_rate={best.params['learning_rate']!r}" in flags and f"--shards_dir={small_shards}" in flags
    assert flags[-1] == f"--model_dir={study_dir / 'best_model'}" and "--image_size=24" in flags
    for n in range(3):  # Each trial trained in its own directory, with its TensorBoard events.
        assert (study_dir / f"trial_{n}" / "config.json").is_file() and (study_dir / f"trial_{n}" / "train").is_dir()
    # HParams: the searched settings and the score at the study's top, each trial a session named by its folder.
    experiment = hparams_data(study_dir)["_hparams_/experiment"].experiment
    assert sorted(h.name for h in experiment.hparam_infos) == ["dropout", "learning_rate"]
    assert [m.name.tag for m in experiment.metric_infos] == [tuning.SCORE_TAG]
    session = hparams_data(study_dir / "trial_1" / "train")["_hparams_/session_start_info"].session_start_info
    assert session.group_name == "trial_1"
    assert session.hparams["learning_rate"].number_value == pytest.approx(study.trials[1].params["learning_rate"])
    # The test fold: only the best trial's, once, after the search.
    assert (study_dir / "test_metrics.json").is_file() and "evaluated once" in result.stdout
    assert [n for n in range(3) if (study_dir / f"trial_{n}" / "metrics.json").exists()] == [best.number]
    again = tune(small_shards, study_dir, "--trials=3", "--train_steps=4", "--eval_every=2", "--checkpoint_every=2",
                 "--search=learning_rate:log:1e-4:1e-2", "--search=dropout:float:0.2:0.6")
    assert states(load(study_dir)) == ["COMPLETE"] * 3 and "trial 0 in" not in again.stderr  # Nothing re-run.
    other = subprocess.run([sys.executable, SCRIPT, f"--shards_dir={small_shards}", f"--study_dir={study_dir}",
                            "--search=dropout:float:0.1:0.2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert other.returncode != 0 and "use the same --search" in other.stderr
    # The settings it does not search are the study's too: trials of another budget are not comparable.
    longer = subprocess.run([sys.executable, SCRIPT, f"--shards_dir={small_shards}", f"--study_dir={study_dir}", *TINY,
                             "--trials=3", "--train_steps=6", "--eval_every=2", "--checkpoint_every=2",
                             "--search=learning_rate:log:1e-4:1e-2", "--search=dropout:float:0.2:0.6"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert longer.returncode != 0 and "--train_steps: 4 there, 6 now" in longer.stderr
    unvalidated = subprocess.run([sys.executable, SCRIPT, f"--shards_dir={small_shards}",
                                  f"--study_dir={tmp_path / 'other'}", "--val_fraction=0",
                                  "--search=dropout:float:0.1:0.2"], cwd=ROOT, capture_output=True, text=True,
                                 timeout=300)
    assert unvalidated.returncode != 0 and "--val_fraction=0 leaves no validation split" in unvalidated.stderr


def test_grid_search_visits_every_combination_once(small_shards, tmp_path):
    study_dir = tmp_path / "grid"
    tune(small_shards, study_dir, "--sampler=grid", "--trials=10", "--train_steps=2", "--eval_every=2",
         "--checkpoint_every=2", "--search=optimizer:choice:sgd,adam", "--search=batch_size:choice:2,4")
    study = load(study_dir)
    assert states(study) == ["COMPLETE"] * 4
    assert sorted((t.params["optimizer"], t.params["batch_size"]) for t in study.get_trials()) == [
        ("adam", 2), ("adam", 4), ("sgd", 2), ("sgd", 4)]


@pytest.mark.parametrize("signum,left", [(signal.SIGKILL, ["COMPLETE", "RUNNING"]),  # What a kill leaves.
                                         (signal.SIGTERM, ["COMPLETE", "FAIL", "WAITING"])])  # Saved and queued.
def test_a_killed_study_resumes_its_trial_and_ends_with_the_requested_trials(small_shards, tmp_path, signum, left):
    study_dir = tmp_path / "killed"
    args = ["--trials=2", "--train_steps=200", "--eval_every=100", "--checkpoint_every=10", "--pruner=none",
            "--search=learning_rate:log:1e-4:1e-2"]
    process = tune(small_shards, study_dir, *args, wait=False)
    checkpoint = study_dir / "trial_1" / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()[1][-3000:]
    process.send_signal(signum)
    process.communicate()
    assert process.returncode in (-signal.SIGKILL, 128 + signal.SIGTERM) and states(load(study_dir)) == left
    result = tune(small_shards, study_dir, *args)
    study = load(study_dir)
    assert states(study) == ["COMPLETE", "FAIL", "COMPLETE"]
    resumed = study.get_trials()[2]
    assert resumed.user_attrs[tuning.RESUMES] == 1 and resumed.params == study.get_trials()[1].params
    assert resumed.user_attrs["model_dir"] == str(study_dir / "trial_1") and not (study_dir / "trial_2").exists()
    assert "resumed from" in result.stderr and "trial_1/checkpoints/ckpt-" in result.stderr
    notes = [r["note"] for r in study_report.rows(study, [tuning.Param("learning_rate", "log", 1e-4, 1e-2)])]
    assert notes == ["", "interrupted; resumed by trial 2", "resumes trial 1"]


def test_two_tuners_share_one_storage_and_run_no_trial_twice(small_shards, tmp_path):
    study_dir = tmp_path / "shared"
    args = ["--trials=4", "--train_steps=6", "--eval_every=2", "--checkpoint_every=2", "--pruner=none",
            "--search=learning_rate:log:1e-4:1e-2", f"--storage=sqlite:///{study_dir / 'study.db'}"]
    os.makedirs(study_dir)
    processes = [tune(small_shards, study_dir, *args, wait=False) for _ in range(2)]
    for process in processes:
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-3000:]
    trials = load(study_dir).get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and all(t.state.name == "COMPLETE" or t.user_attrs.get(tuning.SURPLUS) for t in trials)
    assert len({t.user_attrs["model_dir"] for t in complete}) == 4  # Each trial trained once, in its own folder.
    assert len({t.user_attrs["pid"] for t in complete}) == 2  # Both tuners worked.
