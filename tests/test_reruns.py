"""training/reruns.py: a run's fingerprint, and reruns with other settings refused (model.py)
or trained again on request (the experiment drivers), never silently mixed or reused."""

import dataclasses
import json
import os

import pytest

from configs import tiny
from experiments import cross_validation
from training import reruns
from training.config import RunError
from training.loop import train_and_evaluate


def run(small_shards, tmp_path, **train):
    return tiny(small_shards, tmp_path / "run", train_steps=2, export=False, histogram_every=0, **train)


def test_another_command_into_a_run_folder_is_refused_before_anything_is_written(small_shards, tmp_path):
    data, model_cfg, cfg = run(small_shards, tmp_path)
    train_and_evaluate(data, model_cfg, cfg)
    config = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(RunError, match=r"--learning_rate: 0.001 there, 0.002 now.*Pass another --model_dir"):
        train_and_evaluate(data, model_cfg, dataclasses.replace(cfg, learning_rate=2e-3))
    # Adding a head used to resume, then die at the very end on an AssertionError about fc8_gender.
    with pytest.raises(RunError, match=r"--heads: \['age'\] there, \['age', 'gender'\] now"):
        train_and_evaluate(dataclasses.replace(data, task="age_gender"), model_cfg, cfg)
    assert (tmp_path / "run" / "config.json").read_text() == config  # Not overwritten.
    # The same command, or one that says the same in other words (--heads=age for --task=age, the
    # shards by another path) or changes only how it runs and logs, resumes.
    same = dataclasses.replace(data, heads=("age",), shards_dir=small_shards + "/")
    again = train_and_evaluate(same, model_cfg, dataclasses.replace(cfg, log_every=1, keep_checkpoints=5))
    assert again["test_fold"] == 0


def test_rebuilt_shards_are_another_run(small_adience, small_shards, tmp_path):
    from input_pipeline.config import BuildConfig
    from input_pipeline.writer import build

    data, model_cfg, cfg = run(small_shards, tmp_path)
    train_and_evaluate(data, model_cfg, cfg)
    build.build(BuildConfig(data_dir=small_adience, output_dir=small_shards, image_size=32, num_shards=2,
                            num_workers=1, shuffle_seed=5, overwrite=True))
    with pytest.raises(RunError, match=r"the shard set \(its manifest.json\)"):
        train_and_evaluate(data, model_cfg, cfg)


def test_a_run_of_an_older_version_is_refused_naming_what_was_not_recorded(small_shards, tmp_path):
    data, model_cfg, cfg = run(small_shards, tmp_path)
    train_and_evaluate(data, model_cfg, cfg)
    path = tmp_path / "run" / "config.json"
    old = json.loads(path.read_text())
    del old["fingerprint"]
    path.write_text(json.dumps(old))
    with pytest.raises(RunError, match=r"has no fingerprint \(an older version wrote it\)"):
        train_and_evaluate(data, model_cfg, cfg)


def test_a_setting_added_since_a_run_counts_as_its_default_there(small_shards):
    """A run recorded before --gender_balance existed trained without it: the same command
    resumes it, one asking for the new setting is another run."""
    data, model_cfg, cfg = tiny(small_shards)
    older = reruns.fingerprint(data, model_cfg, cfg)
    del older["gender_balance"]
    assert reruns.differences(older, reruns.fingerprint(data, model_cfg, cfg)) == []
    balanced = reruns.fingerprint(data, model_cfg, dataclasses.replace(cfg, gender_balance=1.0))
    assert reruns.differences(older, balanced) == ["--gender_balance: 0.0 there, 1.0 now"]


def test_a_run_recorded_before_the_age_balance_cap_had_none(small_shards):
    """--age_balance_cap's default (4) is not what older runs did (no cap): an older
    balanced run is another run than today's capped one, and the cap does not matter to a
    run without --age_balance."""
    data, model_cfg, cfg = tiny(small_shards)
    older = reruns.fingerprint(data, model_cfg, cfg)
    del older["age_balance_cap"]
    assert reruns.differences(older, reruns.fingerprint(data, model_cfg, cfg)) == []
    balanced = dataclasses.replace(cfg, age_balance=0.5)
    older_balanced = reruns.fingerprint(data, model_cfg, balanced)
    del older_balanced["age_balance_cap"]
    assert reruns.differences(older_balanced, reruns.fingerprint(data, model_cfg, balanced)) == [
        "--age_balance_cap: 0.0 there, 4.0 now"]
    uncapped = dataclasses.replace(balanced, age_balance_cap=0.0)
    assert reruns.differences(older_balanced, reruns.fingerprint(data, model_cfg, uncapped)) == []
    # A run recorded before --age_balance existed resumes under today's defaults.
    oldest = dict(older)
    del oldest["age_balance"]
    assert reruns.differences(oldest, reruns.fingerprint(data, model_cfg, cfg)) == []
    # A study searching --age_balance has it on neither side: the cap is compared.
    study = {k: v for k, v in reruns.fingerprint(data, model_cfg, cfg).items() if k != "age_balance"}
    assert reruns.differences(study, dict(study, age_balance_cap=0.0)) == ["--age_balance_cap: 4.0 there, 0.0 now"]
    assert reruns.differences({k: v for k, v in older.items() if k != "age_balance"}, study) == [
        "--age_balance_cap: 0.0 there, 4.0 now"]


def test_the_precision_is_recorded_as_this_machine_resolves_it(small_shards):
    """--mixed_precision=auto is float32 on one machine and mixed_float16 on another (other
    weights to restore): the fingerprint holds what it resolved to."""
    data, model_cfg, cfg = tiny(small_shards, mixed_precision="auto")
    assert reruns.fingerprint(data, model_cfg, cfg)["precision"] in ("float32", "mixed_bfloat16", "mixed_float16")
    assert reruns.fingerprint(data, model_cfg, dataclasses.replace(cfg, mixed_precision="off"))["precision"] == "float32"


def test_settings_an_architecture_never_reads_are_not_compared(small_shards):
    """compare_architectures trains levi_hassner with --weights=none; model.py's default is
    imagenet. Levi-Hassner reads neither, so the two commands are one run."""
    data, model_cfg, cfg = tiny(small_shards)
    lh = dataclasses.replace(model_cfg, arch="levi_hassner")

    def differ(model_a, model_b, cfg_b=cfg, searched=()):
        found, wanted = reruns.fingerprint(data, model_a, cfg), reruns.fingerprint(data, model_b, cfg_b)
        return reruns.differences(*({k: v for k, v in f.items() if k not in searched} for f in (found, wanted)))

    assert not differ(dataclasses.replace(lh, weights="none"), dataclasses.replace(lh, weights="imagenet", head_units=64))
    assert not differ(lh, lh, dataclasses.replace(cfg, head_steps=7, fine_tune_layers=3))
    assert differ(lh, dataclasses.replace(lh, weight_decay=0.0)) == ["--weight_decay: 0.0005 there, 0.0 now"]
    backbone = dataclasses.replace(model_cfg, arch="mobilenetv2", weights="imagenet")
    assert not differ(backbone, dataclasses.replace(backbone, weight_decay=0.0))  # Levi-Hassner's only.
    assert differ(backbone, dataclasses.replace(backbone, weights="none")) == ["--weights: 'imagenet' there, 'none' now"]
    fine_tuned = dataclasses.replace(cfg, fine_tune_layers=10)
    assert differ(backbone, backbone, fine_tuned) == ["--fine_tune_layers: 0 there, 10 now"]
    assert not differ(backbone, backbone, dataclasses.replace(cfg, head_steps=7))  # Frozen throughout.
    assert differ(backbone, backbone, dataclasses.replace(fine_tuned, head_steps=7),
                  ) == ["--fine_tune_layers: 0 there, 10 now", "--head_steps: 0 there, 7 now"]
    scratch = dataclasses.replace(backbone, weights="none")  # Nothing frozen, nothing fine-tuned.
    assert not differ(scratch, scratch, dataclasses.replace(cfg, head_steps=7))
    # A study searching --arch shares the other settings: which ones its trials read is not
    # known, so all of them count (a rerun with other backbone weights is another study).
    assert differ(dataclasses.replace(lh, weights="imagenet"), dataclasses.replace(lh, weights="none"),
                  searched=("arch",)) == [
        "--weights: 'imagenet' there, 'none' now"]


def test_an_empty_folder_or_one_without_a_run_is_no_run(tmp_path):
    assert reruns.recorded(str(tmp_path / "absent")) is None
    (tmp_path / "crashed").mkdir()
    (tmp_path / "crashed" / "config.json").write_text("{}")  # Written, then killed before any checkpoint.
    assert reruns.recorded(str(tmp_path / "crashed")) is None


def test_cross_validation_reuses_a_fold_only_with_its_settings(small_shards, tmp_path, caplog):
    data, model_cfg, train = tiny(small_shards, train_steps=2, log_every=1, checkpoint_every=1, histogram_every=0,
                                  export=False)
    cv_dir = str(tmp_path / "cv")
    first = cross_validation.run_fold(data, model_cfg, train, 0, cv_dir)
    with caplog.at_level("INFO", logger="absl"):
        assert cross_validation.run_fold(data, model_cfg, train, 0, cv_dir) == first
    assert "fold 0: done already with these settings" in caplog.text
    other = dataclasses.replace(model_cfg, dropout=0.2)
    with pytest.raises(RunError, match=r"--dropout: 0.5 there, 0.2 now.*Pass --retrain"):
        cross_validation.run_fold(data, other, train, 0, cv_dir)
    # The command line checks every fold's folder before anything trains: fold 3 (new) waits.
    with pytest.raises(RunError, match=r"fold_0 \(--dropout: 0.5 there, 0.2 now\)"):
        cross_validation.refuse_other_runs((data, other, train), [3, 0], cv_dir)
    assert not os.path.exists(os.path.join(cv_dir, "fold_3"))
    retrained = cross_validation.run_fold(data, other, train, 0, cv_dir, retrain=True)
    config = json.loads(open(os.path.join(cv_dir, "fold_0", "config.json")).read())
    assert config["model"]["dropout"] == 0.2 and retrained["test_fold"] == 0


def test_a_worker_reading_config_json_while_the_chief_writes_it_reads_the_run(tmp_path):
    # The multi-worker rerun failed in CI: a worker checking the fingerprint read the config.json the
    # chief was rewriting, half-written, as "a run of unknown settings", and refused the same command.
    import threading
    (tmp_path / "metrics.json").write_text("{}")
    config = {"fingerprint": {"learning_rate": 0.001, "padding": "x" * 200_000}}
    reruns.record(str(tmp_path), config)
    done, seen = threading.Event(), []

    def chief():
        for _ in range(200):
            reruns.record(str(tmp_path), config)
        done.set()

    thread = threading.Thread(target=chief)
    thread.start()
    while not done.is_set():
        seen.append(reruns.recorded(str(tmp_path)) == config["fingerprint"])
    thread.join()
    assert all(seen) and len(seen) > 10
    assert sorted(os.listdir(tmp_path)) == ["config.json", "metrics.json"]


def test_retrain_is_refused_on_the_workers_of_a_multi_worker_run(tmp_path, monkeypatch):
    # Each worker would delete the folder while another writes its new run there.
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    reruns.record(str(run), {"fingerprint": {"learning_rate": 0.001}})
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    with pytest.raises(RunError, match=r"--learning_rate: 0.001 there, 0.002 now.*cannot delete it safely together"):
        reruns.reusable(str(run), {"learning_rate": 0.002}, retrain=True)
    assert (run / "metrics.json").exists()
    monkeypatch.delenv("TF_CONFIG")
    assert not reruns.reusable(str(run), {"learning_rate": 0.002}, retrain=True)
    assert not run.exists()
