"""Checks a shard set record by record (scripts/verify_shards.py).

For every shard that manifest.json lists, reads every record (TensorFlow's TFRecord
reader checks each record's length and data CRC32C), parses it as a tf.train.Example of
input_pipeline/schema.py, decodes its JPEG, and checks its size, its labels and its
fold. Then compares the counts per fold (examples, ages as stored, genders and races)
with the manifest, and looks for shards that are missing or not listed. Each problem is one line
naming the file, the record's index and its byte offset.
"""

import collections
import os

import tensorflow as tf

from input_pipeline import labels, preprocess, schema
from input_pipeline.progress import Progress
from input_pipeline.reader import parse
from input_pipeline.reader.manifest import load_manifest

RECORD_OVERHEAD = 16  # uint64 length, uint32 CRC of the length, the data, uint32 CRC of the data.


def records(path):
    """(index, byte offset, serialized record) of each record of a TFRecord file, then
    (index, offset, DataLossError) if the file is corrupt from there on."""
    offset = 0
    iterator = iter(tf.data.TFRecordDataset(path))
    index = 0
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return
        except tf.errors.DataLossError as e:
            yield index, offset, e
            return
        yield index, offset, record
        offset += len(record.numpy()) + RECORD_OVERHEAD
        index += 1


def check_example(serialized, fold, image_size, num_races):
    """(problems, (age, gender, race)) of one record; no problems means it is good."""
    try:
        example = parse.parse_example(serialized)
    except tf.errors.InvalidArgumentError as e:
        return [f"not a tf.train.Example of this schema: {e.message.splitlines()[0][:200]}"], None
    age = (int(example[schema.AGE_LOW]), int(example[schema.AGE_HIGH]))
    gender, race = int(example[schema.GENDER]), int(example[schema.RACE])
    problems = []
    if age != (labels.UNKNOWN, labels.UNKNOWN) and not 0 <= age[0] <= age[1] <= labels.MAX_YEARS:
        problems.append(f"age {age[0]}-{age[1]} is neither unknown (-1, -1) nor a range within 0-{labels.MAX_YEARS}")
    if not labels.UNKNOWN <= gender < len(labels.GENDER_CLASSES):
        problems.append(f"gender label {gender} is outside -1..{len(labels.GENDER_CLASSES) - 1}")
    if not labels.UNKNOWN <= race < num_races:
        problems.append(f"race label {race} is outside -1..{num_races - 1} (the manifest's race_classes)")
    if int(example[schema.FOLD]) != fold:
        problems.append(f"{schema.FOLD} is {int(example[schema.FOLD])} in a shard of fold {fold}")
    if example[schema.FORMAT].numpy() != schema.IMAGE_FORMAT:
        problems.append(f"{schema.FORMAT} is {example[schema.FORMAT].numpy()!r}")
    try:
        height, width = preprocess.decode_jpeg(example[schema.ENCODED]).shape[:2]
    except tf.errors.InvalidArgumentError as e:
        problems.append(f"the image does not decode: {e.message.splitlines()[0][:200]}")
    else:
        stored = (int(example[schema.HEIGHT]), int(example[schema.WIDTH]))
        if (height, width) != stored:
            problems.append(f"the image is {height}x{width} but the record says {stored[0]}x{stored[1]}")
        elif image_size and (height, width) != (image_size, image_size):
            problems.append(f"the image is {height}x{width}, the manifest's image_size is {image_size}")
    return problems, (age, gender, race)


def verify(shards_dir):
    """(problems, records read) of a shard set; each problem a line naming its place."""
    path = os.path.join(shards_dir, schema.MANIFEST)
    try:
        manifest = load_manifest(shards_dir)
    except (OSError, ValueError) as e:
        return [f"{path}: cannot be read: {e}"], 0
    race_classes = manifest["race_classes"]
    problems = []
    listed = {name for fold in manifest["folds"] for name in fold["files"]}
    for name in sorted(os.listdir(shards_dir)):
        if name.endswith(".tfrecord") and name not in listed:
            problems.append(f"{os.path.join(shards_dir, name)}: a shard the manifest does not list")
    progress = Progress(f"verified {shards_dir}", manifest["num_examples"])
    read = 0
    for fold in manifest["folds"]:
        k = fold["fold"]
        count, ages, genders, races = 0, collections.Counter(), collections.Counter(), collections.Counter()
        for name in fold["files"]:
            shard = os.path.join(shards_dir, name)
            if not os.path.isfile(shard):
                problems.append(f"{shard}: missing")
                continue
            for index, offset, record in records(shard):
                where = f"{shard}: record {index} (byte {offset})"
                if isinstance(record, tf.errors.DataLossError):
                    reason = record.message.splitlines()[0].split("}} ")[-1].split(" [Op:")[0]
                    problems.append(f"{where}: corrupt ({reason}); the rest of the file cannot be read")
                    break
                found, labels_of = check_example(record, k, manifest["image_size"], len(race_classes))
                problems += [f"{where}: {p}" for p in found]
                count += 1
                if labels_of:
                    ages[labels.age_key(*labels_of[0])] += 1
                    genders[labels_of[1]] += 1
                    races[labels_of[2]] += 1
                progress.update()
        read += count
        if count != fold["num_examples"]:
            problems.append(f"fold {k}: {count} records, the manifest says {fold['num_examples']}")
            continue  # The class counts differ too; that says nothing new.
        found = {"age": {key: n for key, n in ages.items() if n},
                 "gender": labels.class_counts(genders, labels.GENDER_CLASSES),
                 "race": labels.class_counts(races, race_classes)}
        for what, counts in found.items():
            stated = fold[f"{what}_counts"]
            if what == "age":
                stated = {key: n for key, n in stated.items() if n}
            if counts != stated:
                problems.append(f"fold {k}: {what} counts {counts}, the manifest says {fold[f'{what}_counts']}")
    return problems, read
