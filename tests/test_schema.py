import os

import tensorflow as tf

from datasets import jpeg_bytes
from input_pipeline import schema
from input_pipeline.reader import parse
from input_pipeline.writer import shards, tfrecord
from input_pipeline.writer.example import make_example


def example(i, **overrides):
    fields = dict(encoded=jpeg_bytes(colour=(i, 2 * i, 3 * i)), height=24, width=24,
                  filename=f"aligned/u{i}/landmark_aligned_face.{i}.x.jpg", age=(i, i + 7 * (i % 2)),
                  gender=i % 2, race=i % 5 - 1, subject_id=f"u{i}@N00", fold=i % 5)
    fields.update(overrides)
    return fields


def read_records(paths):
    return [parse.parse_example(r) for r in tf.data.TFRecordDataset(paths)]


def tf_example(fields):
    """The same record built with TensorFlow's own protobuf classes."""
    def feature(kind, value):
        if kind == "bytes":
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    values = schema.features(**fields)
    features = {key: feature(schema.FIELDS[key][0], value) for key, value in values.items()}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def test_the_writer_serializes_examples_byte_for_byte_as_tensorflow():
    """The writer has no TensorFlow: its hand-written protobuf must be TF's exact bytes,
    including negative labels (10-byte varints), empty strings and large values."""
    cases = [example(i) for i in range(8)] + [
        example(8, age=(-1, -1), gender=-1, race=-1, fold=-1, filename="", subject_id=""),
        example(9, height=2**31, width=300, filename="ünïcode/é.jpg", encoded=b"\x00" * 200_000)]
    for fields in cases:
        assert make_example(**fields) == tf_example(fields)


def test_the_writer_frames_records_byte_for_byte_as_tensorflow(tmp_path):
    records = [make_example(**example(i)) for i in range(5)] + [b"", b"x" * 70_000]
    with tfrecord.Writer(str(tmp_path / "ours.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    assert (tmp_path / "ours.tfrecord").read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "ours.tfrecord"))] == records


def test_round_trip_gives_back_exact_bytes_and_labels(tmp_path):
    path = str(tmp_path / "x.tfrecord")
    written = [example(i) for i in range(6)] + [example(6, age=(-1, -1), gender=1), example(7, gender=-1),
                                                example(8, age=(120, 120), race=4)]
    with tfrecord.Writer(path) as writer:
        for fields in written:
            writer.write(make_example(**fields))
    parsed = read_records([path])
    assert len(parsed) == len(written)
    for fields, got in zip(written, parsed, strict=True):
        assert got[schema.ENCODED].numpy() == fields["encoded"]
        assert got[schema.FORMAT].numpy() == b"jpeg"
        assert got[schema.HEIGHT].numpy() == 24 and got[schema.WIDTH].numpy() == 24
        assert got[schema.FILENAME].numpy().decode() == fields["filename"]
        assert (got[schema.AGE_LOW].numpy(), got[schema.AGE_HIGH].numpy()) == fields["age"]
        assert got[schema.GENDER].numpy() == fields["gender"]
        assert got[schema.RACE].numpy() == fields["race"]
        assert got[schema.SUBJECT_ID].numpy().decode() == fields["subject_id"]
        assert got[schema.FOLD].numpy() == fields["fold"]
        assert got[schema.AGE_LOW].dtype == tf.int64
        assert tf.io.decode_jpeg(got[schema.ENCODED]).shape == (24, 24, 3)


def test_parse_works_inside_a_dataset_map(tmp_path):
    path = str(tmp_path / "x.tfrecord")
    with tfrecord.Writer(path) as writer:
        writer.write(make_example(**example(3)))
    ages = [(int(e[schema.AGE_LOW]), int(e[schema.AGE_HIGH]), int(e[schema.RACE]))
            for e in tf.data.TFRecordDataset(path).map(parse.parse_example)]
    assert ages == [(3, 10, 2)]


def test_fold_writer_names_balances_and_renames(tmp_path):
    writer = shards.FoldWriter(str(tmp_path), fold=2, num_shards=3)
    assert sorted(os.listdir(tmp_path)) == [
        f"fold2-0000{i}-of-00003.tfrecord.tmp" for i in range(3)]
    for i in range(7):
        writer.write(make_example(**example(i)))
    names = writer.close()
    assert names == [f"fold2-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert sorted(os.listdir(tmp_path)) == names  # No .tmp left.
    sizes = [len(read_records([str(tmp_path / n)])) for n in names]
    assert sizes == [3, 2, 2]
    # Round-robin: example i is record i // 3 of shard i % 3.
    first = read_records([str(tmp_path / names[1])])[0]
    assert first[schema.ENCODED].numpy() == example(1)["encoded"]
