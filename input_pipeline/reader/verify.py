"""Checks a shard set record by record (scripts/verify_shards.py).

For every shard that manifest.json lists, reads every record (TensorFlow's TFRecord
reader checks each record's length and data CRC32C), parses it as a tf.train.Example of
input_pipeline/schema.py, decodes its JPEG, and checks its size, its labels and its
fold. Then compares the counts per fold (examples, age and gender classes) with the
manifest, and looks for shards that are missing or not listed. Each problem is one line
naming the file, the record's index and its byte offset.
"""

import collections
import json
import os

import tensorflow as tf

from input_pipeline import labels, preprocess, schema
from input_pipeline.progress import Progress
from input_pipeline.reader import parse

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


def check_example(serialized, fold, image_size):
    """(problems, (age, gender)) of one record; no problems means it is good."""
    try:
        example = parse.parse_example(serialized)
    except tf.errors.InvalidArgumentError as e:
        return [f"not a tf.train.Example of this schema: {e.message.splitlines()[0][:200]}"], None
    age, gender = int(example[schema.AGE]), int(example[schema.GENDER])
    problems = []
    if not labels.UNKNOWN <= age < len(labels.AGE_CLASSES):
        problems.append(f"age label {age} is outside -1..{len(labels.AGE_CLASSES) - 1}")
    if not labels.UNKNOWN <= gender < len(labels.GENDER_CLASSES):
        problems.append(f"gender label {gender} is outside -1..{len(labels.GENDER_CLASSES) - 1}")
    if int(example[schema.CLASS]) != age:
        problems.append(f"{schema.CLASS} {int(example[schema.CLASS])} differs from the age label {age}")
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
    return problems, (age, gender)


def verify(shards_dir):
    """(problems, records read) of a shard set; each problem a line naming its place."""
    path = os.path.join(shards_dir, schema.MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        return [f"{path}: cannot be read: {e}"], 0
    problems = []
    listed = {name for fold in manifest["folds"] for name in fold["files"]}
    for name in sorted(os.listdir(shards_dir)):
        if name.endswith(".tfrecord") and name not in listed:
            problems.append(f"{os.path.join(shards_dir, name)}: a shard the manifest does not list")
    progress = Progress(f"verified {shards_dir}", manifest["num_examples"])
    read = 0
    for fold in manifest["folds"]:
        k = fold["fold"]
        count, ages, genders = 0, collections.Counter(), collections.Counter()
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
                found, labels_of = check_example(record, k, manifest["image_size"])
                problems += [f"{where}: {p}" for p in found]
                count += 1
                if labels_of:
                    ages[labels_of[0]] += 1
                    genders[labels_of[1]] += 1
                progress.update()
        read += count
        if count != fold["num_examples"]:
            problems.append(f"fold {k}: {count} records, the manifest says {fold['num_examples']}")
            continue  # The class counts differ too; that says nothing new.
        for what, counter, class_names in (("age", ages, labels.AGE_CLASSES),
                                           ("gender", genders, labels.GENDER_CLASSES)):
            counts = labels.class_counts(counter, class_names)
            if counts != fold[f"{what}_counts"]:
                problems.append(f"fold {k}: {what} counts {counts}, the manifest says {fold[f'{what}_counts']}")
    return problems, read
