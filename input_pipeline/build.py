"""Dataset rows -> TFRecord shards per fold, manifest.json and skipped.csv.

Everything is written into a staging folder beside the output folder (shards and
files under .tmp names, renamed when complete, the manifest last) and the staging
folder is renamed to the output folder only at the very end. An interrupted run
therefore leaves no output folder at all, only `.<name>.partial`, which the next run
removes. The same rows and config give byte-identical output, whatever the number
of workers.
"""

import collections
import csv
import dataclasses
import functools
import io
import json
import os
import shutil

from absl import logging

from input_pipeline import adience, csv_dataset, images, labels, parallel, schema, shards, utkface
from input_pipeline.progress import Progress
from input_pipeline.rows import NUM_FOLDS, SKIP_REASONS, DatasetError, Skip

MANIFEST = "manifest.json"
SKIPPED = "skipped.csv"
SKIPPED_COLUMNS = ("fold", "source", "path", "reason", "detail")
# Config fields that do not change what is written, so the manifest leaves them out.
_NOT_RECORDED = ("data_dir", "output_dir", "num_workers", "overwrite")


def read_rows(cfg):
    """The dataset's faces and skipped rows, in source order; DatasetError if unusable."""
    if cfg.dataset == "adience":
        return adience.read(cfg.data_dir, cfg.image_layout, cfg.label_policy, cfg.dedup)
    if cfg.dataset == "utkface":
        return utkface.read(cfg.data_dir, cfg.label_policy)
    csv_file = cfg.csv_file or os.path.join(cfg.data_dir, "labels.csv")
    return csv_dataset.read(csv_file, cfg.data_dir, cfg.label_policy, cfg.dedup)


def build(cfg, synthetic=False):
    """Writes the shard set for `cfg` and returns its manifest (a dict)."""
    output_dir = os.path.abspath(cfg.output_dir)
    if os.path.isfile(output_dir) or (os.path.isdir(output_dir) and os.listdir(output_dir)):
        if not cfg.overwrite:
            raise DatasetError(f"output dir {output_dir} already exists; pass --overwrite to replace it")
    rows = read_rows(cfg)
    if not rows.faces:
        raise DatasetError(f"no usable rows in {cfg.data_dir}: {_count_reasons(rows.skips, rows.num_read)}")
    logging.info("%s: %d rows read, %d faces to encode, %d rows skipped so far",
                 cfg.data_dir, rows.num_read, len(rows.faces), len(rows.skips))

    parent, name = os.path.split(output_dir)
    staging = os.path.join(parent, f".{name}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # Left by an interrupted run.
    os.makedirs(staging)
    try:
        manifest = _write(cfg, rows, staging, synthetic)
        _publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _write(cfg, rows, staging, synthetic):
    writers = [shards.FoldWriter(staging, k, cfg.num_shards) for k in range(NUM_FOLDS)]
    ages = [collections.Counter() for _ in range(NUM_FOLDS)]
    genders = [collections.Counter() for _ in range(NUM_FOLDS)]
    subjects = [set() for _ in range(NUM_FOLDS)]
    skips = list(rows.skips)
    encode = functools.partial(images.encode_face, image_size=cfg.image_size,
                               jpeg_quality=cfg.jpeg_quality)
    paths = (os.path.join(cfg.data_dir, face.path) for face in rows.faces)
    workers = parallel.resolve_workers(cfg.num_workers)
    logging.info("encoding %d faces with %d worker process(es)", len(rows.faces), workers)
    progress = Progress("encoding faces", len(rows.faces))
    for face, result in zip(rows.faces, parallel.ordered_map(encode, paths, workers), strict=True):
        progress.update()
        if isinstance(result, images.Failed):
            skips.append(Skip(face.fold, face.source, face.path, result.reason, result.detail))
            continue
        writers[face.fold].write(schema.make_example(
            encoded=result.data, height=result.height, width=result.width, filename=face.path,
            age=face.age, gender=face.gender, subject_id=face.subject_id, fold=face.fold))
        ages[face.fold][face.age] += 1
        genders[face.fold][face.gender] += 1
        subjects[face.fold].add(face.subject_id)

    num_examples = sum(w.count for w in writers)
    if num_examples == 0:
        raise DatasetError(f"no image could be used: {_count_reasons(skips, rows.num_read)}")
    folds = []
    for k, writer in enumerate(writers):
        folds.append({
            "fold": k,
            "files": writer.close(),
            "num_examples": writer.count,
            "num_subjects": len(subjects[k]),
            "age_counts": labels.class_counts(ages[k], labels.AGE_CLASSES),
            "gender_counts": labels.class_counts(genders[k], labels.GENDER_CLASSES),
        })
    shared = _shared_subjects(subjects)
    if shared:
        logging.warning("%d subjects have faces in more than one fold: the folds are not "
                        "subject-disjoint, so a held-out fold is not unseen people", shared)
    _write_file(staging, SKIPPED, _skipped_csv(skips))
    manifest = {
        "dataset": cfg.dataset,
        "synthetic": synthetic,
        "source_dir": os.path.abspath(cfg.data_dir),
        "flags": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _NOT_RECORDED},
        "image_size": cfg.image_size,
        "image_format": schema.IMAGE_FORMAT.decode(),
        "features": sorted(schema.FEATURES),
        "age_classes": list(labels.AGE_CLASSES),
        "gender_classes": list(labels.GENDER_CLASSES),
        "num_folds": NUM_FOLDS,
        "num_rows_read": rows.num_read,
        "num_examples": num_examples,
        "subjects_in_several_folds": shared,
        "folds": folds,
        "skipped": {"total": len(skips), "by_reason": _reason_counts(skips), "file": SKIPPED},
    }
    _write_file(staging, MANIFEST, json.dumps(manifest, indent=2) + "\n")  # Last: marks completion.
    return manifest


def _reason_counts(skips):
    counter = collections.Counter(s.reason for s in skips)
    return {reason: counter[reason] for reason in SKIP_REASONS if counter[reason]}


def _count_reasons(skips, num_read):
    reasons = ", ".join(f"{n} {r}" for r, n in _reason_counts(skips).items()) or "none"
    return f"{num_read} rows read, {len(skips)} skipped ({reasons})"


def _shared_subjects(subjects):
    seen = collections.Counter(s for fold in subjects for s in fold)
    return sum(1 for n in seen.values() if n > 1)


def _skipped_csv(skips):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SKIPPED_COLUMNS)
    for s in skips:
        writer.writerow(["" if s.fold is None else s.fold, s.source, s.path, s.reason, s.detail])
    return out.getvalue()


def _write_file(directory, name, text):
    path = os.path.join(directory, name)
    with open(path + shards.TMP_SUFFIX, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(path + shards.TMP_SUFFIX, path)


def _publish(staging, output_dir):
    """Moves the finished staging folder to `output_dir`, replacing an older one."""
    if not os.path.lexists(output_dir):
        os.rename(staging, output_dir)
        return
    parent, name = os.path.split(output_dir)
    old = os.path.join(parent, f".{name}.old")
    _remove(old)
    os.rename(output_dir, old)
    os.rename(staging, output_dir)
    _remove(old)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def summary(manifest, output_dir, seconds):
    """A few lines for the end of a run."""
    lines = [f"wrote {manifest['num_examples']:,} examples to {output_dir} in {seconds:.1f}s"]
    for fold in manifest["folds"]:
        lines.append(f"  fold {fold['fold']}: {fold['num_examples']:,} examples, "
                     f"{fold['num_subjects']:,} subjects, {len(fold['files'])} shards")
    skipped = manifest["skipped"]
    reasons = ", ".join(f"{r} {n}" for r, n in skipped["by_reason"].items())
    lines.append(f"skipped {skipped['total']:,} of {manifest['num_rows_read']:,} rows"
                 + (f" ({reasons}); see {os.path.join(output_dir, SKIPPED)}" if reasons else ""))
    return "\n".join(lines)
