import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from datasets import jpeg_bytes, read_all, row, write_adience, write_file
from input_pipeline import labels, schema
from input_pipeline.config import BuildConfig
from input_pipeline.sources import adience
from input_pipeline.sources.rows import DatasetError
from input_pipeline.writer import build, example
from processes import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def good(user, face_id, age="(25, 32)", gender="f"):
    return row(user, face_id, age, gender, f"{face_id}_x_o.jpg")


@pytest.fixture
def broken_adience(tmp_path):
    """15 usable faces (one a PNG, converted) and 5 rows that must be skipped, one for each reason."""
    folds = {
        0: [good("a@N0", 1), good("a@N0", 2, "(0, 2)"), good("b@N0", 3, gender="m"),
            good("b@N0", 4), good("b@N0", 5, "None", "u")],
        1: [good("c@N1", 6), good("c@N1", 7), good("c@N1", 8, "(60, 100)", "m"), good("c@N1", 9)],
        2: [good("d@N2", 10), good("d@N2", 11), good("d@N2", 12), "d@N2\tbroken row"],
        3: [good("e@N3", 13, "(8, 12)"), good("e@N3", 14), good("e@N3", 15)],
        4: [good("f@N4", 16), good("f@N4", 17), good("f@N4", 18, gender="u"),
            good("f@N4", 19, age="None", gender="m")],
    }
    root = write_adience(str(tmp_path / "adience"), folds)

    def image(face_id, user):
        return os.path.join(root, adience.image_path("aligned", user, face_id, f"{face_id}_x_o.jpg"))

    os.remove(image(4, "b@N0"))
    write_file(image(9, "c@N1"), jpeg_bytes(size=(64, 64))[:200])
    png = os.path.join(str(tmp_path), "p.png")
    from PIL import Image
    Image.new("RGB", (8, 8)).save(png)
    os.replace(png, image(12, "d@N2"))
    write_file(image(15, "e@N3"), b"")
    return root


def run_build(data_dir, output_dir, **overrides):
    fields = dict(data_dir=data_dir, output_dir=str(output_dir), image_size=16, num_shards=2,
                  num_workers=1)
    fields.update(overrides)
    return build.build(BuildConfig(**fields))


def test_manifest_counts_and_skipped_reasons(broken_adience, tmp_path):
    out = tmp_path / "out"
    manifest = run_build(broken_adience, out)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["num_rows_read"] == 20 and manifest["num_examples"] == 15
    assert [f["num_examples"] for f in manifest["folds"]] == [3, 3, 3, 2, 4]
    assert [f["num_subjects"] for f in manifest["folds"]] == [2, 1, 1, 1, 1]
    assert manifest["folds"][0]["files"] == ["fold0-00000-of-00002.tfrecord", "fold0-00001-of-00002.tfrecord"]
    assert manifest["folds"][0]["age_counts"] == {"0-2": 1, "25-32": 2, "unknown": 0}  # As the source gives them.
    assert manifest["folds"][1]["age_counts"] == {"25-32": 2, "60-100": 1, "unknown": 0}
    assert manifest["folds"][0]["gender_counts"] == {"m": 1, "f": 2, "unknown": 0}
    assert manifest["folds"][4]["age_counts"]["unknown"] == 1
    assert manifest["folds"][4]["gender_counts"] == {"m": 1, "f": 2, "unknown": 1}
    # Each gender's ages (--gender_balance): faces whose gender and age are both known.
    assert manifest["folds"][0]["gender_age_counts"] == {"m": {"25-32": 1}, "f": {"0-2": 1, "25-32": 1}}
    assert manifest["folds"][4]["gender_age_counts"] == {"m": {}, "f": {"25-32": 2}}  # Not the unknowns.
    assert manifest["skipped"] == {"total": 5, "file": "skipped.csv", "by_reason": {
        "malformed_row": 1, "unknown_labels": 1, "missing_image": 1, "empty_image": 1, "truncated_image": 1}}
    assert manifest["converted_to_jpeg"] == {"total": 1, "by_kind": {"PNG": 1}}
    assert manifest["schema_version"] == schema.SCHEMA_VERSION and manifest["race_classes"] == []
    assert manifest["synthetic"] is False and manifest["subjects_in_several_folds"] == 0
    assert manifest["gender_classes"] == ["m", "f"] and manifest["label_policy"] == "strict"
    assert manifest["flags"]["label_policy"] == "strict" and "num_workers" not in manifest["flags"]

    with open(out / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert {(r["fold"], r["source"], r["reason"]) for r in skipped} == {
        ("0", "fold_0_data.txt:6", "unknown_labels"), ("2", "fold_2_data.txt:5", "malformed_row"),
        ("0", "fold_0_data.txt:5", "missing_image"), ("1", "fold_1_data.txt:5", "truncated_image"),
        ("3", "fold_3_data.txt:4", "empty_image")}
    missing = next(r for r in skipped if r["reason"] == "missing_image")
    assert missing["path"] == "aligned/b@N0/landmark_aligned_face.4.4_x_o.jpg"


def test_records_hold_the_rows_labels(broken_adience, tmp_path):
    manifest = run_build(broken_adience, tmp_path / "out")
    records = read_all(str(tmp_path / "out"), manifest)
    assert len(records) == manifest["num_examples"]
    rows = {f.path: f for f in adience.read(broken_adience).faces}
    for record in records:
        face = rows[record[schema.FILENAME].numpy().decode()]
        assert (int(record[schema.AGE_LOW]), int(record[schema.AGE_HIGH])) == face.age
        assert int(record[schema.GENDER]) == face.gender and int(record[schema.RACE]) == face.race == -1
        assert int(record[schema.FOLD]) == face.fold
        assert record[schema.SUBJECT_ID].numpy().decode() == face.subject_id
        assert tf.io.decode_jpeg(record[schema.ENCODED]).shape == (16, 16, 3)
        assert (int(record[schema.HEIGHT]), int(record[schema.WIDTH])) == (16, 16)


def test_image_size_zero_stores_the_files_bytes(small_adience, tmp_path):
    manifest = run_build(small_adience, tmp_path / "out", image_size=0)
    records = read_all(str(tmp_path / "out"), manifest)
    assert len(records) == 30
    for record in records:
        with open(os.path.join(small_adience, record[schema.FILENAME].numpy().decode()), "rb") as f:
            assert record[schema.ENCODED].numpy() == f.read()
        assert (int(record[schema.HEIGHT]), int(record[schema.WIDTH])) == (24, 24)


def files_of(directory):
    result = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            result[name] = f.read()
    return result


def test_output_is_byte_identical_across_runs_and_worker_counts(broken_adience, tmp_path):
    run_build(broken_adience, tmp_path / "one", num_workers=1)
    run_build(broken_adience, tmp_path / "two", num_workers=2)
    one, two = files_of(tmp_path / "one"), files_of(tmp_path / "two")
    assert len(one) == 5 * 2 + 2 and one == two


def test_an_existing_output_dir_needs_overwrite(small_adience, tmp_path):
    out = tmp_path / "out"
    run_build(small_adience, out, num_shards=1)
    with pytest.raises(DatasetError, match="already exists; pass --overwrite"):
        run_build(small_adience, out, num_shards=3)
    assert len(os.listdir(out)) == 5 + 2  # Untouched.
    run_build(small_adience, out, num_shards=3, overwrite=True)
    assert len(os.listdir(out)) == 15 + 2
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # No staging or old copy left.


def test_a_failed_overwrite_keeps_the_old_output(small_adience, tmp_path):
    out = tmp_path / "out"
    run_build(small_adience, out)
    before = files_of(out)
    with pytest.raises(DatasetError, match="not an Adience folder"):
        run_build(str(tmp_path), out, overwrite=True)
    assert files_of(out) == before


def test_zero_usable_rows_is_an_error_and_writes_nothing(tmp_path):
    root = write_adience(str(tmp_path / "a"), {0: [good("a@N0", 1, "None", "u")], 1: ["x\ty"]})
    with pytest.raises(DatasetError, match="no usable rows.*2 rows read.*1 malformed_row, 1 unknown_labels"):
        run_build(root, tmp_path / "out")
    root = write_adience(str(tmp_path / "b"), {0: [good("a@N0", 1)]}, images=False)
    with pytest.raises(DatasetError, match="no image could be used.*1 missing_image"):
        run_build(root, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_an_interrupted_run_leaves_nothing_that_looks_finished(small_adience, tmp_path, monkeypatch):
    calls = []

    def interrupt_on_fifth(**fields):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(**fields)

    real = example.make_example
    monkeypatch.setattr(example, "make_example", interrupt_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        run_build(small_adience, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["adience"]  # Not even the staging folder.


def worker_pids(token):
    """Pids of live spawned workers whose environment carries `token` (orphaned or not)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if b"spawn_main" in cmdline and f"BUILD_TEST_TOKEN={token}".encode() in environ:
            pids.append(int(pid))
    return pids


def start_held_build(data_dir, out, token):
    """Starts build_input with two worker processes (one worker encodes in the process
    itself) in its own session, held mid-encoding by a FIFO that stands in for one image
    (opening it blocks). Returns the process, its command, the FIFO and the image bytes it
    replaced."""
    blocker = os.path.join(data_dir, adience.image_path("aligned", "user30@N03", "19", "19_x_o.jpg"))
    with open(blocker, "rb") as f:
        original = f.read()
    os.remove(blocker)
    os.mkfifo(blocker)
    command = [sys.executable, os.path.join(ROOT, "build_input.py"), f"--data_dir={data_dir}",
               f"--output_dir={out}", "--image_size=16", "--num_shards=2", "--num_workers=2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "BUILD_TEST_TOKEN": token}, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert wait_for(lambda: worker_pids(token)), "no worker process started"
    staging = out.parent / f".{out.name}.partial"
    assert wait_for(lambda: staging.is_dir() and any(n.endswith(".tmp") for n in os.listdir(staging)))
    time.sleep(0.3)  # Let the worker reach the FIFO.
    assert process.poll() is None, "the build ended before it could be stopped"
    return process, command, blocker, original


def test_ctrl_c_stops_cleanly_and_writes_nothing(small_adience, tmp_path):
    out = tmp_path / "out"
    process, _, _, _ = start_held_build(small_adience, out, str(tmp_path))
    os.killpg(process.pid, signal.SIGINT)  # What a terminal sends the whole job.
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted; nothing was written" in stderr.decode()
    assert sorted(os.listdir(tmp_path)) == ["adience"]  # No output, no staging folder.
    assert wait_for(lambda: not worker_pids(str(tmp_path)))


def test_a_killed_run_leaves_no_finished_shard_and_a_rerun_matches(small_adience, tmp_path):
    """SIGKILL mid-encoding: no file that looks finished exists, the workers go away,
    and a rerun is byte-identical to a clean build."""
    clean = tmp_path / "clean"
    run_build(small_adience, clean, num_shards=2)
    out, token = tmp_path / "out", str(tmp_path)
    process, command, blocker, original = start_held_build(small_adience, out, token)
    staging = tmp_path / ".out.partial"
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not out.exists()
    finished = [n for n in os.listdir(staging) if n.endswith((".tfrecord", ".json", ".csv"))]
    assert finished == []

    # The orphaned worker, still blocked opening the FIFO, notices its parent is gone.
    assert wait_for(lambda: not worker_pids(token)), "worker outlived its killed parent"
    os.remove(blocker)
    write_file(blocker, original)
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    assert files_of(out) == files_of(clean)
    assert not staging.exists()


def test_command_line_success_and_failure(small_adience, tmp_path):
    script = os.path.join(ROOT, "build_input.py")
    ok = subprocess.run([sys.executable, script, f"--data_dir={small_adience}", f"--output_dir={tmp_path / 'o'}",
                         "--image_size=16", "--num_workers=1"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "wrote 30 examples" in ok.stdout and "fold 4: 6 examples, 2 subjects, 4 shards" in ok.stdout
    assert "encoding faces: 30/30 (100%)" in ok.stderr
    bad = subprocess.run([sys.executable, script, f"--data_dir={tmp_path / 'o'}", f"--output_dir={tmp_path / 'p'}"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "not an Adience folder" in bad.stderr and "Nothing was written" in bad.stderr
    assert not (tmp_path / "p").exists()


def test_nearest_policy_and_dedup_reach_the_manifest(tmp_path):
    root = write_adience(str(tmp_path / "a"), {
        0: [good("a@N0", 1, "35"), good("a@N0", 1, "35"), good("a@N0", 2, "(8, 23)", "u")]})
    strict = run_build(root, tmp_path / "s")
    assert strict["num_examples"] == 2 and strict["skipped"]["by_reason"] == {"unknown_labels": 1}
    nearest = run_build(root, tmp_path / "n", label_policy="nearest", dedup=True)
    assert nearest["num_examples"] == 2
    assert nearest["skipped"]["by_reason"] == {"duplicate_row": 1}
    # Kept as read; the nearest Adience groups, (25, 32) and (15, 20), are chosen when a model trains.
    assert nearest["folds"][0]["age_counts"] == {"8-23": 1, "35": 1, "unknown": 0}
    assert labels.bin_counts(nearest["folds"][0]["age_counts"], labels.ADIENCE, "nearest")["(15, 20)"] == 1
    assert labels.bin_counts(nearest["folds"][0]["age_counts"], labels.ADIENCE, "nearest")["(25, 32)"] == 1
    assert nearest["flags"]["dedup"] is True and nearest["label_policy"] == "nearest"


def test_overwrite_replaces_a_file_in_the_way(small_adience, tmp_path):
    write_file(str(tmp_path / "out"), "not a folder")
    with pytest.raises(DatasetError, match="already exists"):
        run_build(small_adience, tmp_path / "out")
    run_build(small_adience, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "manifest.json").is_file()
    assert sorted(os.listdir(tmp_path)) == ["adience", "out"]


def test_faces_are_written_in_a_seeded_random_order_not_the_sources(tmp_path):
    """UTKFace lists files sorted by name, which starts with the age; written in that order,
    every stretch of a shard held one narrow band of ages (and Adience one person)."""
    root = tmp_path / "UTKFace"
    for age in range(10, 90):
        write_file(str(root / f"{age}_0_0_2017011617452{age:04d}.jpg.chip.jpg"), jpeg_bytes(colour=(age, 50, 90)))

    def ages_in_write_order(out, **overrides):
        manifest = build.build(BuildConfig(dataset="utkface", data_dir=str(root), output_dir=str(out), image_size=16,
                                           num_shards=1, num_workers=1, **overrides))
        return [int(r[schema.AGE_LOW]) for r in read_all(str(out), manifest)], manifest

    ages, manifest = ages_in_write_order(tmp_path / "a")
    assert manifest["write_order"] == {"shuffled": True, "seed": 0}
    assert sorted(ages) == list(range(10, 90))
    per_fold = [ages[i:i + n] for i, n in zip(np.cumsum([0] + [f["num_examples"] for f in manifest["folds"]]),
                                               [f["num_examples"] for f in manifest["folds"]])]
    for fold in per_fold:  # Rank correlation of the written order with the source's (sorted) order: about 0.
        assert len(fold) > 5 and abs(np.corrcoef(np.argsort(np.argsort(fold)), np.arange(len(fold)))[0, 1]) < 0.6
    assert ages_in_write_order(tmp_path / "b")[0] == ages  # Seeded: the same input, the same order and bytes.
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    assert ages_in_write_order(tmp_path / "c", shuffle_seed=1)[0] != ages


def test_a_script_without_a_main_guard_builds_with_one_worker(small_adience, tmp_path):
    """One worker used to be a spawned process too, which re-ran the calling script: without
    an `if __name__ == "__main__":` guard, BrokenProcessPool."""
    script = tmp_path / "build_it.py"
    script.write_text("from input_pipeline.config import BuildConfig\n"
                      "from input_pipeline.writer import build\n"
                      f"manifest = build.build(BuildConfig(data_dir={small_adience!r}, output_dir="
                      f"{str(tmp_path / 'out')!r}, image_size=16, num_workers=1))\n"
                      "print('built', manifest['num_examples'])\n")
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "built 30" in result.stdout
