"""Dataset rows -> TFRecord shards per fold, manifest.json and skipped.csv.

Everything is written into a staging folder beside the output folder (shards and
files under .tmp names, renamed when complete, the manifest last) and the staging
folder is renamed to the output folder only at the very end. An interrupted run
therefore leaves no output folder at all, only `.<name>.partial`, which the next run
removes. The same rows and config give byte-identical output, whatever the number
of workers.
"""

import functools
import json
import os
import random
import shutil

from absl import logging

from input_pipeline import parallel, schema, sources
from input_pipeline.progress import Progress
from input_pipeline.sources.rows import NUM_FOLDS, SUBJECT_PER_IMAGE, DatasetError, Skip
from input_pipeline.writer import encode, example, manifest, shards


def build(cfg, synthetic=False):
    """Writes the shard set for `cfg` and returns its manifest (a dict)."""
    output_dir = os.path.abspath(cfg.output_dir)
    if os.path.isfile(output_dir) or (os.path.isdir(output_dir) and os.listdir(output_dir)):
        if not cfg.overwrite:
            raise DatasetError(f"output dir {output_dir} already exists; pass --overwrite to replace it")
    rows = sources.read(cfg)
    if not rows.faces:
        raise DatasetError(f"no usable rows in {cfg.data_dir}: {manifest.describe_skips(rows.skips, rows.num_read)}")
    logging.info("%s: %d rows read, %d faces to encode, %d rows skipped so far",
                 cfg.data_dir, rows.num_read, len(rows.faces), len(rows.skips))
    csv_path = cfg.csv_file or os.path.join(cfg.data_dir, "labels.csv")
    if rows.subject_ids == SUBJECT_PER_IMAGE and cfg.dataset == "csv":
        logging.warning("%s has no subject_id column: %s. Name the column that says who is in each image with "
                        "--csv_columns=subject_id=<column>.", csv_path, manifest.PER_IMAGE_NOTE)
    elif rows.without_subject and cfg.dataset == "csv":
        logging.warning("%d of %d faces in %s have an empty subject_id: each of them counts as its own person, so "
                        "one person's photos among them can land in training and test at once",
                        rows.without_subject, len(rows.faces), csv_path)

    parent, name = os.path.split(output_dir)
    staging = os.path.join(parent, f".{name}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # Left by an interrupted run.
    os.makedirs(staging)
    try:
        written = _write(cfg, rows, staging, synthetic)
        _publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def write_order(num_faces, seed):
    """The order faces are written in: a permutation of range(num_faces) seeded by `seed`.

    Sources list faces grouped by person (Adience's fold files) or sorted by label
    (UTKFace's file names start with the age). Written in that order, every shard of a
    fold holds the same people at the same offsets and a reader's shuffle buffer sees a
    narrow slice of ages at a time; written in a random order, any stretch of a shard is
    a random sample. The same rows and seed give the same order, so the same bytes.
    """
    order = list(range(num_faces))
    random.Random(seed).shuffle(order)
    return order


def _write(cfg, rows, staging, synthetic):
    writers = [shards.FoldWriter(staging, k, cfg.num_shards) for k in range(NUM_FOLDS)]
    counts = manifest.FoldCounts(rows.race_classes)
    failed = []  # (source index, Skip) of the faces that could not be encoded.
    encode_face = functools.partial(encode.encode_face, image_size=cfg.image_size, jpeg_quality=cfg.jpeg_quality,
                                    crop_spec=cfg.crop_spec)
    order = write_order(len(rows.faces), cfg.shuffle_seed)
    faces = [rows.faces[i] for i in order]
    paths = (os.path.join(cfg.data_dir, face.path) for face in faces)
    workers = parallel.resolve_workers(cfg.num_workers)
    logging.info("encoding %d faces with %d worker process(es)", len(rows.faces), workers)
    if cfg.crop_spec:
        logging.info("finding faces with %s and storing their canonical crops: %s", cfg.detector, cfg.crop_spec)
    progress = Progress("detecting and cropping faces" if cfg.crop_spec else "encoding faces", len(rows.faces))
    results = parallel.ordered_map(encode_face, paths, workers)
    for index, face, result in zip(order, faces, results, strict=True):
        progress.update()
        if isinstance(result, encode.Failed):
            failed.append((index, Skip(face.fold, face.source, face.path, result.reason, result.detail)))
            continue
        writers[face.fold].write(example.make_example(
            encoded=result.data, height=result.height, width=result.width, filename=face.path,
            age=face.age, gender=face.gender, race=face.race, subject_id=face.subject_id, fold=face.fold))
        counts.add(face, result.converted)

    skips = list(rows.skips) + [skip for _, skip in sorted(failed, key=lambda pair: pair[0])]  # Source order.
    if sum(w.count for w in writers) == 0:
        raise DatasetError(f"no image could be used: {manifest.describe_skips(skips, rows.num_read)}")
    folds = [counts.fold(k, writer.close(), writer.count) for k, writer in enumerate(writers)]
    shared = counts.shared_subjects()
    if shared:
        logging.warning("%d subjects have faces in more than one fold: the folds are not "
                        "subject-disjoint, so a held-out fold is not unseen people", shared)
    _write_file(staging, schema.SKIPPED, manifest.skipped_csv(skips))
    result = manifest.make_manifest(cfg, rows, folds, shared, skips, synthetic, counts.converted)
    _write_file(staging, schema.MANIFEST, json.dumps(result, indent=2) + "\n")  # Last: marks completion.
    return result


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
