"""serving/score.py and scripts/score_predictions.py: predict.py's CSV scored against true labels."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from input_pipeline import labels
from input_pipeline.sources import csv_file, rows
from processes import ROOT
from serving import metadata, score

THREE = labels.parse_bins("three")
HEADER = "input,face,box,status,age,age_probability,gender,gender_probability,race,race_probability,age_years\n"


def write(path, text):
    path.write_text(text)
    return str(path)


def test_every_head_is_scored_on_the_photos_with_a_face(tmp_path):
    truth_csv = write(tmp_path / "labels.csv", "path,age,gender,race\n"
                      "a/1.jpg,20,m,White\n"     # age right, gender right, race right, 2 years off
                      "a/2.jpg,35,female,asian\n"  # one bin off, gender wrong, race right, 5 years off
                      "a/3.jpg,70,f,\n"          # two bins off (old -> young), no race, 48 years off
                      "a/4.jpg,(25, 32),,black\n"  # a range: no exact age; no face found
                      "a/5.jpg,8,m,black\n")     # no bin of `three` holds 8: age unscored
    predictions = write(tmp_path / "p.csv", HEADER +
                        '/x/1.jpg,0,"0,0,9,9",ok,young,0.9,m,0.9,white,0.8,22.0\n'
                        '/x/1.jpg,1,"0,0,9,9",ok,old,0.9,f,0.9,black,0.8,70.0\n'  # a second face: ignored
                        '/x/2.jpg,0,"0,0,9,9",too_small,,,,,,,\n'
                        '/x/2.jpg,1,"0,0,9,9",ok,young,0.6,m,0.7,asian,0.5,30.0\n'
                        '/x/3.jpg,0,"0,0,9,9",ok,young,0.5,f,0.9,white,0.5,22.0\n'
                        '/x/5.jpg,0,"0,0,9,9",ok,young,0.5,m,0.9,black,0.5,10.5\n'
                        '/x/9.jpg,0,"0,0,9,9",ok,young,0.5,m,0.9,black,0.5,10.5\n')  # not labelled
    figures = score.score(score.read_predictions(predictions), score.read_truth(truth_csv, {}, THREE), THREE)
    assert figures["photos"] == 5 and figures["with_face"] == 4
    assert figures["age"] == {"exact": pytest.approx(1 / 3), "one_off": pytest.approx(2 / 3), "n": 3}
    assert figures["gender"] == {"accuracy": pytest.approx(3 / 4), "n": 4,  # 2.jpg, a woman, called a man.
                                 "by_true": {"m": {"accuracy": 1.0, "n": 2}, "f": {"accuracy": 0.5, "n": 2}}}
    assert "  gender    75.0% (4 photos, women 50.0% of 2, men 100.0% of 2)" in score.describe(figures)
    assert figures["race"] == {"accuracy": 1.0, "n": 3}
    assert figures["age_years"] == {"mae": pytest.approx((2 + 5 + 48 + 2.5) / 4),
                                    "bias": pytest.approx((2 - 5 - 48 + 2.5) / 4), "within_5": 0.75, "n": 4}
    assert score.describe(figures)[0] == "5 labelled photos, a face found in 4 (80.0%)"
    # Children and adults apart: 8 is a child; 20, 35 and 70 adults; the unquoted "(25, 32)" is no age.
    by_age = score.score(score.read_predictions(predictions), score.read_truth(truth_csv, {}, THREE), THREE,
                         adult_age=18)["by_age"]
    assert (by_age["children"]["photos"], by_age["adults"]["photos"]) == (1, 3)
    assert by_age["children"]["age_years"] == {"mae": 2.5, "bias": 2.5, "within_5": 1.0, "n": 1}
    assert by_age["adults"]["age_years"]["mae"] == pytest.approx((2 + 5 + 48) / 3)
    assert by_age["adults"]["gender"] == {"accuracy": pytest.approx(2 / 3), "n": 3,
                                          "by_true": {"m": {"accuracy": 1.0, "n": 1}, "f": {"accuracy": 0.5, "n": 2}}}
    # Groups of true ages: 8 and 20 in 0-29 (1.jpg's first face: 22 years, m), 35 in 30-59, 70 in 60+;
    # "(25, 32)" straddles 0-29 and 30-59, so it is in neither.
    groups = labels.parse_bins("0-29,30-59,60+", "--age_groups")
    by_group = score.score(score.read_predictions(predictions), score.read_truth(truth_csv, {}, THREE), THREE,
                           age_groups=groups)["by_group"]
    assert list(by_group) == ["0-29", "30-59", "60+"]
    assert score.score({}, score.read_truth(truth_csv, {}, THREE), THREE, age_groups=groups)["in_no_group"] == 1
    assert [(f["photos"], f["with_face"]) for f in by_group.values()] == [(2, 2), (1, 1), (1, 1)]
    assert by_group["0-29"]["age_years"] == {"mae": 2.25, "bias": 2.25, "within_5": 1.0, "n": 2}
    assert by_group["60+"]["age_years"]["bias"] == -48.0 and by_group["60+"]["gender"]["accuracy"] == 1.0
    assert by_group["30-59"]["gender"]["accuracy"] == 0.0
    table = score.group_table(by_group)
    assert table[2].split() == ["0-29", "2", "2", "100.0%", "-", "100.0%", "of", "2", "2.2", "+2.2"]
    assert table[3].split() == ["30-59", "1", "1", "0.0%", "0.0%", "of", "1", "-", "5.0", "-5.0"]
    assert table[4].split() == ["60+", "1", "1", "100.0%", "100.0%", "of", "1", "-", "48.0", "-48.0"]


def test_fold_keeps_the_photos_build_input_puts_in_it(tmp_path):
    rows = [f"p/{i}.jpg,{20 + i},m" for i in range(40)]
    truth_csv = write(tmp_path / "labels.csv", "path,age,gender\n" + "\n".join(rows) + "\n")
    folds = {os.path.basename(r.split(",")[0]): csv_file.fold_of_row({"path": r.split(",")[0]}) for r in rows}
    for k in range(5):
        assert set(score.read_truth(truth_csv, {}, THREE, fold=k)) == {n for n, f in folds.items() if f == k}
    # The same folds as the build: the CSV reader's faces.
    faces = csv_file.read(truth_csv, str(tmp_path)).faces
    assert {os.path.basename(f.path): f.fold for f in faces} == folds


@pytest.mark.parametrize("test_fold", [0, -1])
def test_faces_the_run_trained_on_are_refused(tmp_path, test_fold):
    """Scoring a model on its own dataset counts only the fold its run held out: a run of
    --test_fold=-1 (every fold trains) has none, and another fold, or all of them, it trained on."""
    source, shards, export = tmp_path / "utkface", tmp_path / "shards", tmp_path / "run" / "export"
    for folder in (source, shards, export):
        folder.mkdir(parents=True)
    (shards / "manifest.json").write_text(json.dumps({"source_dir": str(source), "flags": {}}))
    (tmp_path / "run" / "config.json").write_text(json.dumps({"data": {"test_fold": test_fold,
                                                                       "shards_dir": str(shards)}}))
    for own in (source, shards, source / "labels.csv"):
        for fold in (None, 0, 1):
            if test_fold == 0 and fold == 0:
                score.check_held_out(str(export) + "/", fold, str(own))  # The held-out fold: scored.
                continue
            with pytest.raises(ValueError, match="trained on") as refused:
                score.check_held_out(str(export), fold, str(own))
            assert ("every fold" in str(refused.value)) == (test_fold == -1)
            assert test_fold == -1 or str(refused.value).endswith("give --fold=0")
    with pytest.raises(ValueError, match="trained on"):  # A folder that holds its faces.
        score.check_held_out(str(export), None, str(tmp_path))
    assert score.check_held_out(str(export), None, str(tmp_path / "utkface_other"))  # Photos it never saw.
    assert not score.check_held_out(str(tmp_path / "elsewhere" / "export"), 1, str(source))  # Away: unknown.


def test_a_csv_dataset_s_faces_are_its_csv_and_another_shard_set_of_them_is_refused(tmp_path):
    """--dataset=csv: --data_dir is only where the CSV's paths start, so a test CSV beside
    the training one is scored; a second shard set built from the training CSV is refused."""
    data, shards, export = tmp_path / "faces", tmp_path / "shards", tmp_path / "run" / "export"
    for folder in (data, shards, export):
        folder.mkdir(parents=True)
    built = {"dataset": "csv", "source_dir": str(data), "flags": {"csv_file": str(data / "train.csv")}}
    (shards / "manifest.json").write_text(json.dumps(built))
    metadata.write(str(export / metadata.FILE), metadata.Metadata(
        {"gender": ["m", "f"]}, 64, 56, trained_on=metadata.trained_on(str(shards), built, 0)))
    assert score.check_held_out(str(export), None, str(data / "test.csv"), str(data / "test"))
    with pytest.raises(ValueError, match="give --fold=0"):
        score.check_held_out(str(export), None, str(data / "train.csv"))
    again = tmp_path / "shards_mtcnn"
    again.mkdir()
    (again / "manifest.json").write_text(json.dumps(built))
    with pytest.raises(ValueError, match="give --test_fold=0"):
        score.check_held_out(str(export), None, str(again), fold_flag="--test_fold")
    assert metadata.sources_of(str(shards), {"dataset": "csv", "source_dir": str(data), "flags": {}}) == [
        str(shards), str(data / "labels.csv")]  # build_input.py's default CSV.


def test_the_scored_photos_are_checked_too(exported_model, tmp_path):
    """Labels kept elsewhere, photos from the folder the model trained on: refused; a photo in a
    folder that only holds its run and shards is not one of them."""
    faces = os.path.join(os.path.dirname(os.path.dirname(exported_model)), "a", "aligned")  # Its Adience folder.
    truth_csv = write(tmp_path / "labels.csv", "path,gender\nface.jpg,m\n")
    predictions = write(tmp_path / "p.csv", "input,face,box,status,gender\n"
                        f'{os.path.join(faces, "face.jpg")},0,"0,0,9,9",ok,m\n')
    script = os.path.join(ROOT, "scripts", "score_predictions.py")
    result = subprocess.run([sys.executable, script, f"--model={exported_model}", f"--predictions={predictions}",
                             f"--labels={truth_csv}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "trained on, all but fold 0: give --fold=0" in result.stderr, result.stderr
    # A photo in a folder that holds the run (and so its shards), as the repository's root does: scored.
    predictions = write(tmp_path / "p.csv", "input,face,box,status,gender\n"
                        f'{os.path.dirname(os.path.dirname(faces))}/face.jpg,0,"0,0,9,9",ok,m\n')
    result = subprocess.run([sys.executable, script, f"--model={exported_model}", f"--predictions={predictions}",
                             f"--labels={truth_csv}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_run_s_relative_shards_dir_is_found_from_anywhere(tmp_path, monkeypatch):
    """An export written before metadata.json recorded its faces: its run's config.json
    names the shards relative to the folder the run started in (here the repository's
    root, a folder above the run), and the refusal must not depend on where the scoring
    script runs from."""
    repo = tmp_path / "repo"
    source, shards, export = tmp_path / "utkface", repo / "data" / "shards", repo / "runs" / "r" / "export"
    for folder in (source, shards, export):
        folder.mkdir(parents=True)
    (shards / "manifest.json").write_text(json.dumps({"source_dir": str(source), "flags": {}}))
    (repo / "runs" / "r" / "config.json").write_text(json.dumps({"data": {"test_fold": 0,
                                                                          "shards_dir": "data/shards"}}))
    for cwd in (repo, tmp_path, export):
        monkeypatch.chdir(cwd)
        with pytest.raises(ValueError, match="give --fold=0"):
            score.check_held_out(str(export), None, str(source))
    (shards / "manifest.json").unlink()  # Its shards gone: unknown, and said so, rather than half checked.
    assert not score.check_held_out(str(export), None, str(source))


def test_a_malformed_trained_on_is_a_clear_error(tmp_path):
    info = metadata.Metadata({"gender": ["m", "f"]}, 64, 56, trained_on={"sources": ["/data"]})
    metadata.write(str(tmp_path / metadata.FILE), info)
    with pytest.raises(ValueError, match="trained_on is not"):
        metadata.read(str(tmp_path))
    (tmp_path / metadata.FILE).write_text("[]")
    with pytest.raises(ValueError, match="not an object"):
        metadata.read(str(tmp_path))


def test_an_export_moved_from_its_run_is_still_refused_its_own_faces(exported_model, tmp_path):
    """metadata.json records the faces a run trained on (absolute paths) and the fold it held
    out, so the refusal holds for a copy of the export with no config.json beside it."""
    root = os.path.dirname(os.path.dirname(exported_model))
    recorded = metadata.read(exported_model).trained_on
    assert recorded == {"held_out_fold": 0, "sources": [os.path.realpath(os.path.join(root, "shards")),
                                                         os.path.realpath(os.path.join(root, "a"))]}
    moved = shutil.copytree(exported_model, tmp_path / "elsewhere" / "export")
    for own in (os.path.join(root, "a"), os.path.join(root, "shards")):
        with pytest.raises(ValueError, match="give --fold=0"):
            score.check_held_out(str(moved), None, own)
        with pytest.raises(ValueError, match="fold 1 is one it trained on; give --test_fold=0"):
            score.check_held_out(str(moved), 1, str(tmp_path), own, fold_flag="--test_fold")  # Any path of several.
        assert score.check_held_out(str(moved), 0, own)
    assert score.check_held_out(str(moved), None, str(tmp_path))  # Photos it never saw.
    tflite_json = metadata.write(str(tmp_path / "model.tflite.json"), dataclasses.replace(metadata.read(str(moved)),
                                                                                      trained_on={}))
    assert json.load(open(tflite_json))["trained_on"] == {}


def test_mapped_columns_and_a_name_given_twice(tmp_path):
    mapped = write(tmp_path / "train.csv", "ID,Class\n1.png,YOUNG\n2.png,OLD\n")
    truth = score.read_truth(mapped, csv_file.parse_columns("path=ID,age=Class"), THREE)
    assert truth == {"1.png": ((13, 30), -1, ""), "2.png": ((51, 120), -1, "")}
    twice = write(tmp_path / "twice.csv", "path,age\na/1.jpg,20\nb/1.jpg,30\n")
    with pytest.raises(ValueError, match=r"twice.csv:3: the file name 1.jpg is given twice"):
        score.read_truth(twice, {}, THREE)


def test_a_utkface_folder_s_file_names_are_its_labels(tmp_path):
    names = [f"{20 + i}_{i % 2}_{i % 5}_2017010100000{i:04d}.jpg.chip.jpg" for i in range(30)]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.jpg").write_bytes(b"")  # Not a UTKFace name: build_input skips it, and so does scoring.
    truth = score.truth_of_utkface(str(tmp_path))
    assert set(truth) == set(names)
    assert truth[names[3]] == ((23, 23), 1, "indian") and truth[names[4]] == ((24, 24), 0, "others")
    folds = {name: rows.fold_of(name) for name in names}  # As build_input.py --dataset=utkface assigns them.
    for k in range(5):
        assert set(score.truth_of_utkface(str(tmp_path), fold=k)) == {n for n, f in folds.items() if f == k}
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / names[0]).write_bytes(b"")
    with pytest.raises(ValueError, match="in two folders"):
        score.truth_of_utkface(str(tmp_path))


def test_the_command_line(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    metadata.write(str(export / metadata.FILE), metadata.Metadata({"age": list(THREE.names), "gender": ["m", "f"]},
                                                                   128, 112, age_bins=THREE.as_dict()))
    truth_csv = write(tmp_path / "labels.csv", "path,age,gender\n1.jpg,20,m\n2.jpg,40,f\n")
    predictions = write(tmp_path / "p.csv", "input,face,box,status,age,gender\n"
                        '1.jpg,0,"0,0,9,9",ok,young,m\n2.jpg,0,"0,0,9,9",ok,young,f\n')
    script = os.path.join(ROOT, "scripts", "score_predictions.py")
    result = subprocess.run([sys.executable, script, f"--model={export}", f"--predictions={predictions}",
                             f"--labels={truth_csv}", f"--output={tmp_path / 'f.json'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "does not say which faces it trained on" in result.stderr  # An export with no record, nor a run.
    assert result.stdout.splitlines() == ["2 labelled photos, a face found in 2 (100.0%)",
                                          "  age       exact 50.0%, one-off 100.0% (2 photos)",
                                          "  gender    100.0% (2 photos, women 100.0% of 1, men 100.0% of 1)",
                                          "adults, aged 18 and over:",
                                          "  2 labelled photos, a face found in 2 (100.0%)",
                                          "    age       exact 50.0%, one-off 100.0% (2 photos)",
                                          "    gender    100.0% (2 photos, women 100.0% of 1, men 100.0% of 1)"]
    assert json.loads((tmp_path / "f.json").read_text())["gender"]["accuracy"] == 1.0
    missing = subprocess.run([sys.executable, script, f"--model={export}", "--predictions=nope.csv",
                              f"--labels={truth_csv}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "--predictions='nope.csv' is not a file" in missing.stderr
    grouped = subprocess.run([sys.executable, script, f"--model={export}", f"--predictions={predictions}",
                              f"--labels={truth_csv}", "--adult_age=0", "--age_groups=0-29,30+"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert grouped.returncode == 0, grouped.stderr[-2000:]
    assert [line.split() for line in grouped.stdout.splitlines()[-2:]] == [
        ["0-29", "1", "1", "100.0%", "-", "100.0%", "of", "1", "-", "-"],  # A man of 20,
        ["30+", "1", "1", "100.0%", "100.0%", "of", "1", "-", "-", "-"]]  # a woman of 40.
    other = write(tmp_path / "other.csv", "input,face,box,status,gender\n"
                  '2.jpg,0,"0,0,9,9",ok,m\n1.jpg,0,"0,0,9,9",no_face,\n')  # Another model: a face in 2.jpg only.
    common = subprocess.run([sys.executable, script, f"--model={export}", f"--predictions={predictions}",
                             f"--labels={truth_csv}", "--adult_age=0", f"--found_by={other}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert common.returncode == 0, common.stderr[-2000:]
    assert common.stdout.splitlines()[:2] == [f"the 1 of 2 labelled photos in which {other} found a face too:",
                                              "1 labelled photos, a face found in 1 (100.0%)"]
    bad = subprocess.run([sys.executable, script, f"--model={export}", f"--predictions={predictions}",
                          f"--labels={truth_csv}", "--age_groups=old"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "--age_groups: 'old' is not a bin" in bad.stderr
    empty = write(tmp_path / "none.csv", "input,face,box,status\n")
    for flag, message in ((f"--found_by={empty}",
                           "found a face in none of the labelled photos"),
                          ("--age_groups=18+", "--age_groups: age bins need at least two bins")):
        refused = subprocess.run([sys.executable, script, f"--model={export}", f"--predictions={predictions}",
                                  f"--labels={truth_csv}", flag], cwd=ROOT, capture_output=True, text=True,
                                 timeout=120)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr[-2000:]
    elsewhere = write(tmp_path / "elsewhere.csv", 'input,face,box,status,gender\n3.jpg,0,"0,0,9,9",ok,m\n')
    refused = subprocess.run([sys.executable, script, f"--model={export}", f"--predictions={elsewhere}",
                              f"--labels={truth_csv}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "has a face in none of the 2 labelled photos" in refused.stderr


def test_two_photos_of_one_file_name_in_the_predictions_are_refused(tmp_path):
    twice = write(tmp_path / "p.csv", 'input,face,box,status\na/1.jpg,0,"0,0,9,9",ok\na/1.jpg,1,"0,0,9,9",ok\n'
                  'b/1.jpg,0,"0,0,9,9",ok\n')
    with pytest.raises(ValueError, match=r"p.csv:4: b/1.jpg and a/1.jpg have the same file name"):
        score.read_predictions(twice)
