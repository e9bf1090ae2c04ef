"""Fault injection: a share of the synthetic sample is broken in every way the issue
lists, and the build must account for each fault exactly."""

import collections
import csv
import json
import os
import random
import shutil

import pytest

from datasets import read_all
from input_pipeline import schema
from input_pipeline.config import BuildConfig
from input_pipeline.sources import adience, sample
from input_pipeline.writer import build

PER_KIND = 3  # Faults of each kind: 15 images and 12 rows of the sample's ~150 written rows.


def break_image(path, kind):
    """Damages the image at `path`; returns the skip reason the build must give."""
    with open(path, "rb") as f:
        data = f.read()
    if kind == "deleted":
        os.remove(path)
        return "missing_image"
    if kind == "zero_bytes":
        data = b""
        reason = "empty_image"
    elif kind == "truncated":
        data = data[:len(data) // 2]
        reason = "truncated_image"
    elif kind == "not_jpeg":
        data = b"this is a text file, not a photo\n" * 20
        reason = "not_an_image"
    else:  # garbled: a JPEG marker, then noise (a PNG under a .jpg name is converted, not a fault).
        data = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2
        reason = "corrupt_image"
    with open(path, "wb") as f:
        f.write(data)
    return reason


def break_row(raw, kind):
    """A damaged version of a fold-file row (bytes) and the skip reason it must get."""
    fields = raw.split(b"\t")
    if kind == "tabs_lost":
        return raw.replace(b"\t", b"  "), "malformed_row"
    if kind == "cut_short":
        return b"\t".join(fields[:4]), "malformed_row"
    if kind == "bad_face_id":
        return b"\t".join(fields[:2] + [b"x" + fields[2]] + fields[3:]), "malformed_row"
    # non_utf8: a Latin-1 byte in the image name.
    return b"\t".join(fields[:1] + [fields[1].replace(b".", b"\xe9.", 1)] + fields[2:]), "bad_encoding"


def fold_rows(data_dir):
    """{source ("fold_k_data.txt:N"): (fold, raw bytes)} of every non-blank row."""
    rows = {}
    for fold, name in enumerate(adience.FOLD_FILES):
        with open(os.path.join(data_dir, name), "rb") as f:
            for number, raw in enumerate(f.read().split(b"\n")[1:], start=2):
                if raw.strip():
                    rows[f"{name}:{number}"] = (fold, raw.rstrip(b"\r"))
    return rows


def image_of(raw):
    user_id, original_image, face_id = (field.decode().strip() for field in raw.split(b"\t")[:3])
    return adience.image_path("aligned", user_id, face_id, original_image)


def skipped(output_dir):
    with open(os.path.join(output_dir, schema.SKIPPED), newline="") as f:
        return collections.Counter((r["fold"], r["source"], r["path"], r["reason"]) for r in csv.DictReader(f))


def written(output_dir, manifest):
    """A Counter of (fold, filename) over every record of every shard."""
    return collections.Counter((int(r[schema.FOLD]), r[schema.FILENAME].numpy().decode())
                               for r in read_all(output_dir, manifest))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The sample (with its own planted faults) and its build, untouched."""
    root = tmp_path_factory.mktemp("faults")
    data_dir = str(root / "adience_sample")
    sample.generate(data_dir, sample.SampleConfig(num_faces=160, image_size=48, seed=11), num_workers=1)
    output = str(root / "clean")
    manifest = build.build(BuildConfig(data_dir=data_dir, output_dir=output, image_size=32, num_shards=2,
                                       num_workers=2))
    return data_dir, output, manifest


def test_every_injected_fault_is_skipped_with_its_reason_and_counts_are_exact(clean, tmp_path):
    data_dir, clean_output, clean_manifest = clean
    broken = str(tmp_path / "broken")
    shutil.copytree(data_dir, broken)
    rows = fold_rows(broken)
    already_skipped = {source for _, source, _, _ in skipped(clean_output)}
    usable = sorted(s for s in rows if s not in already_skipped)
    path_of = {s: image_of(rows[s][1]) for s in usable}
    sources_of = collections.defaultdict(list)  # An image may have several rows (the sample repeats some).
    for s in usable:
        sources_of[path_of[s]].append(s)

    rng = random.Random(5)
    image_kinds = ("deleted", "zero_bytes", "truncated", "not_jpeg", "garbled")
    row_kinds = ("tabs_lost", "cut_short", "bad_face_id", "non_utf8")
    paths = rng.sample(sorted(sources_of), PER_KIND * len(image_kinds))
    expected = collections.Counter()  # (fold, source, path, reason) of every new skip.
    for i, path in enumerate(paths):
        reason = break_image(os.path.join(broken, path), image_kinds[i // PER_KIND])
        for s in sources_of[path]:
            expected[str(rows[s][0]), s, path, reason] += 1
    damaged_rows = rng.sample([s for s in usable if path_of[s] not in paths], PER_KIND * len(row_kinds))
    new_lines = {}
    for i, s in enumerate(damaged_rows):
        new_lines[s], reason = break_row(rows[s][1], row_kinds[i // PER_KIND])
        expected[str(rows[s][0]), s, "", reason] += 1
    for name in adience.FOLD_FILES:
        path = os.path.join(broken, name)
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        lines = [new_lines.get(f"{name}:{n}", line) for n, line in enumerate(lines, start=1)]
        with open(path, "wb") as f:
            f.write(b"\n".join(lines))

    output = str(tmp_path / "out")
    manifest = build.build(BuildConfig(data_dir=broken, output_dir=output, image_size=32, num_shards=2,
                                       num_workers=2))

    # Every fault is in skipped.csv with its reason, beside the sample's own skips, and nothing else.
    assert skipped(output) == skipped(clean_output) + expected
    reasons = collections.Counter(clean_manifest["skipped"]["by_reason"])
    reasons.update(reason for (_, _, _, reason), n in expected.items() for _ in range(n))
    assert manifest["skipped"]["by_reason"] == {r: reasons[r] for r in manifest["skipped"]["by_reason"]}
    assert sum(manifest["skipped"]["by_reason"].values()) == sum(reasons.values())
    # What is written is exactly what remains.
    lost = collections.Counter()
    for (fold, source, path, _), n in expected.items():
        lost[int(fold), path or path_of[source]] += n
    assert written(output, manifest) == written(clean_output, clean_manifest) - lost
    for before, after in zip(clean_manifest["folds"], manifest["folds"], strict=True):
        removed = sum(n for (fold, _), n in lost.items() if fold == before["fold"])
        assert after["num_examples"] == before["num_examples"] - removed
    assert manifest["num_examples"] == clean_manifest["num_examples"] - sum(lost.values())
    assert json.load(open(os.path.join(output, schema.MANIFEST))) == manifest
