import os

import tensorflow as tf

from datasets import jpeg_bytes
from input_pipeline import schema, shards


def example(i, **overrides):
    fields = dict(encoded=jpeg_bytes(colour=(i, 2 * i, 3 * i)), height=24, width=24,
                  filename=f"aligned/u{i}/landmark_aligned_face.{i}.x.jpg", age=i % 8,
                  gender=i % 2, subject_id=f"u{i}@N00", fold=i % 5)
    fields.update(overrides)
    return fields


def read_records(paths):
    return [schema.parse_example(r) for r in tf.data.TFRecordDataset(paths)]


def test_round_trip_gives_back_exact_bytes_and_labels(tmp_path):
    path = str(tmp_path / "x.tfrecord")
    written = [example(i) for i in range(6)] + [example(6, age=-1, gender=1), example(7, gender=-1)]
    with tf.io.TFRecordWriter(path) as writer:
        for fields in written:
            writer.write(schema.make_example(**fields))
    parsed = read_records([path])
    assert len(parsed) == len(written)
    for fields, got in zip(written, parsed, strict=True):
        assert got[schema.ENCODED].numpy() == fields["encoded"]
        assert got[schema.FORMAT].numpy() == b"jpeg"
        assert got[schema.HEIGHT].numpy() == 24 and got[schema.WIDTH].numpy() == 24
        assert got[schema.FILENAME].numpy().decode() == fields["filename"]
        assert got[schema.AGE].numpy() == fields["age"]
        assert got[schema.CLASS].numpy() == fields["age"]
        assert got[schema.GENDER].numpy() == fields["gender"]
        assert got[schema.SUBJECT_ID].numpy().decode() == fields["subject_id"]
        assert got[schema.FOLD].numpy() == fields["fold"]
        assert got[schema.AGE].dtype == tf.int64
        assert tf.io.decode_jpeg(got[schema.ENCODED]).shape == (24, 24, 3)


def test_parse_works_inside_a_dataset_map(tmp_path):
    path = str(tmp_path / "x.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(schema.make_example(**example(3)))
    ages = [int(e[schema.AGE]) for e in tf.data.TFRecordDataset(path).map(schema.parse_example)]
    assert ages == [3]


def test_fold_writer_names_balances_and_renames(tmp_path):
    writer = shards.FoldWriter(str(tmp_path), fold=2, num_shards=3)
    assert sorted(os.listdir(tmp_path)) == [
        f"fold2-0000{i}-of-00003.tfrecord.tmp" for i in range(3)]
    for i in range(7):
        writer.write(schema.make_example(**example(i)))
    names = writer.close()
    assert names == [f"fold2-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert sorted(os.listdir(tmp_path)) == names  # No .tmp left.
    sizes = [len(read_records([str(tmp_path / n)])) for n in names]
    assert sizes == [3, 2, 2]
    # Round-robin: example i is record i // 3 of shard i % 3.
    first = read_records([str(tmp_path / names[1])])[0]
    assert first[schema.ENCODED].numpy() == example(1)["encoded"]
