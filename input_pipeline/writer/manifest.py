"""What a shard set says about itself: manifest.json, skipped.csv and the run's summary."""

import collections
import csv
import dataclasses
import io
import os

from input_pipeline import faces, labels, schema
from input_pipeline.sources.rows import NUM_FOLDS, SKIP_REASONS, SUBJECT_PER_IMAGE

SKIPPED_COLUMNS = ("fold", "source", "path", "reason", "detail")
# Config fields that do not change what is written, so the manifest leaves them out.
_NOT_RECORDED = ("data_dir", "output_dir", "num_workers", "overwrite")


class FoldCounts:
    """Examples, subjects and labels written to each fold, and the images converted to JPEG."""

    def __init__(self, race_classes):
        self.race_classes = race_classes
        self.ages = [collections.Counter() for _ in range(NUM_FOLDS)]
        self.genders = [collections.Counter() for _ in range(NUM_FOLDS)]
        self.races = [collections.Counter() for _ in range(NUM_FOLDS)]
        self.gender_ages = [collections.Counter() for _ in range(NUM_FOLDS)]  # (gender, age) pairs.
        self.subjects = [set() for _ in range(NUM_FOLDS)]
        self.converted = collections.Counter()

    def add(self, face, converted=""):
        self.ages[face.fold][face.age] += 1
        self.genders[face.fold][face.gender] += 1
        self.races[face.fold][face.race] += 1
        self.gender_ages[face.fold][face.gender, face.age] += 1
        self.subjects[face.fold].add(face.subject_id)
        if converted:
            self.converted[converted] += 1

    def fold(self, k, files, num_examples):
        """The manifest's entry of fold k. Ages are counted as the source gives them
        (labels.age_key: "26", "25-32", "unknown"), so a trainer can count any bins."""
        ages = {labels.age_key(*age): n for age, n in sorted(self.ages[k].items()) if age[0] >= 0}
        ages["unknown"] = self.ages[k][(labels.UNKNOWN, labels.UNKNOWN)]
        return {
            "fold": k,
            "files": files,
            "num_examples": num_examples,
            "num_subjects": len(self.subjects[k]),
            "age_counts": ages,
            "gender_counts": labels.class_counts(self.genders[k], labels.GENDER_CLASSES),
            "race_counts": labels.class_counts(self.races[k], self.race_classes),
            # The ages of each gender's faces (both known), for --gender_balance.
            "gender_age_counts": {name: {labels.age_key(*age): n for (g, age), n in sorted(
                self.gender_ages[k].items()) if g == label and age[0] >= 0} for label, name in enumerate(
                labels.GENDER_CLASSES)},
        }

    def shared_subjects(self):
        """Subjects with faces in more than one fold."""
        seen = collections.Counter(s for fold in self.subjects for s in fold)
        return sum(1 for n in seen.values() if n > 1)


def make_manifest(cfg, rows, folds, shared_subjects, skips, synthetic, converted):
    """manifest.json of a build of `rows` (sources.rows.Rows) into `folds`."""
    num_examples = sum(fold["num_examples"] for fold in folds)
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "dataset": cfg.dataset,
        "synthetic": synthetic,
        "source_dir": os.path.abspath(cfg.data_dir),
        "flags": {k: os.path.abspath(v) if k == "csv_file" and v else v  # Absolute, as source_dir.
                  for k, v in dataclasses.asdict(cfg).items() if k not in _NOT_RECORDED},
        "label_policy": cfg.label_policy,  # How model.py puts ages into its bins.
        "image_size": cfg.image_size,
        "image_format": schema.IMAGE_FORMAT.decode(),
        # How the stored faces were framed; model.py copies it into the export's metadata.
        "face_crop": cfg.crop_spec.as_dict() if cfg.crop_spec else faces.NO_CROP,
        "features": sorted(schema.FIELDS),
        "gender_classes": list(labels.GENDER_CLASSES),
        "race_classes": list(rows.race_classes),  # [] when the source has no race.
        "num_folds": NUM_FOLDS,
        # Whether who is in each image is known; "per_image": folds cannot keep people apart.
        "subject_ids": rows.subject_ids,
        "faces_without_subject_id": rows.without_subject,  # Each counts as its own person.
        # Each fold's faces in a seeded random order (writer.build.write_order), not the source's.
        "write_order": {"shuffled": True, "seed": cfg.shuffle_seed},
        "num_rows_read": rows.num_read,
        "num_examples": num_examples,
        "converted_to_jpeg": {"total": sum(converted.values()), "by_kind": dict(sorted(converted.items()))},
        "subjects_in_several_folds": shared_subjects,
        "folds": folds,
        "skipped": {"total": len(skips), "by_reason": reason_counts(skips), "file": schema.SKIPPED},
    }


def reason_counts(skips):
    counter = collections.Counter(s.reason for s in skips)
    return {reason: counter[reason] for reason in SKIP_REASONS if counter[reason]}


def describe_skips(skips, num_read):
    """'N rows read, M skipped (n reason, ...)', for errors."""
    reasons = ", ".join(f"{n} {r}" for r, n in reason_counts(skips).items()) or "none"
    return f"{num_read} rows read, {len(skips)} skipped ({reasons})"


def skipped_csv(skips):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SKIPPED_COLUMNS)
    for s in skips:
        writer.writerow(["" if s.fold is None else s.fold, s.source, s.path, s.reason, s.detail])
    return out.getvalue()


def summary(manifest, output_dir, seconds):
    """A few lines for the end of a run."""
    lines = [f"wrote {manifest['num_examples']:,} examples to {output_dir} in {seconds:.1f}s"]
    for fold in manifest["folds"]:
        lines.append(f"  fold {fold['fold']}: {fold['num_examples']:,} examples, "
                     f"{fold['num_subjects']:,} subjects, {len(fold['files'])} shards")
    converted = manifest["converted_to_jpeg"]
    if converted["total"]:
        kinds = ", ".join(f"{k} {n}" for k, n in converted["by_kind"].items())
        lines.append(f"converted {converted['total']:,} images to RGB JPEG ({kinds})")
    skipped = manifest["skipped"]
    reasons = ", ".join(f"{r} {n}" for r, n in skipped["by_reason"].items())
    lines.append(f"skipped {skipped['total']:,} of {manifest['num_rows_read']:,} rows"
                 + (f" ({reasons}); see {os.path.join(output_dir, schema.SKIPPED)}" if reasons else ""))
    if manifest["subject_ids"] == SUBJECT_PER_IMAGE:
        lines.append(f"note: {PER_IMAGE_NOTE}")
    return "\n".join(lines)


# What a shard set without person ids means for its figures (the build's summary, model.py's table).
PER_IMAGE_NOTE = ("each image counts as its own person (no person ids), so one person's photos can be in the training "
                  "folds and the test fold at once, and test figures overstate accuracy on new people")
