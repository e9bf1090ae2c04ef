import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
import tensorflow as tf

from datasets import jpeg_bytes
from input_pipeline.reader import verify
from input_pipeline.writer.example import make_example
from processes import ROOT


def record_offsets(path):
    """Byte offset and data length of each record, from the TFRecord framing."""
    with open(path, "rb") as f:
        data = f.read()
    offsets, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        offsets.append((offset, length))
        offset += length + 16
    return offsets


def flip(path, position):
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)[0]
        f.seek(position)
        f.write(bytes([byte ^ 0x04]))


def test_a_good_shard_set_has_no_problems(small_shards):
    problems, read = verify.verify(small_shards)
    assert problems == []
    assert read == json.load(open(os.path.join(small_shards, "manifest.json")))["num_examples"] == 30


@pytest.mark.parametrize("part", ["length", "length_crc", "data", "data_crc"])
def test_a_flipped_byte_is_found_and_named(small_shards, tmp_path, part):
    shards = str(tmp_path / "copy")
    shutil.copytree(small_shards, shards)
    shard = os.path.join(shards, "fold3-00001-of-00002.tfrecord")
    offset, length = record_offsets(shard)[1]
    position = {"length": offset + 2, "length_crc": offset + 9, "data": offset + 12 + length // 2,
                "data_crc": offset + 12 + length + 1}[part]
    flip(shard, position)
    problems, _ = verify.verify(shards)
    assert problems[0].startswith(f"{shard}: record 1 (byte {offset}): corrupt"), problems
    assert "fold 3: 4 records, the manifest says 6" in problems  # Records 1 and 2 of that shard are lost.


def write_shard(path, examples):
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(example)


def test_bad_records_with_good_checksums_are_named(small_shards, tmp_path):
    shards = str(tmp_path / "copy")
    shutil.copytree(small_shards, shards)
    shard = os.path.join(shards, "fold0-00000-of-00002.tfrecord")
    good = dict(encoded=jpeg_bytes(size=(32, 32)), height=32, width=32, filename="x.jpg", subject_id="u", fold=0,
                age=(25, 32), gender=0, race=-1)
    write_shard(shard, [make_example(**{**good, "age": (40, 30)}),
                        make_example(**{**good, "encoded": b"\xff\xd8 not really", "race": 2}),
                        make_example(**{**good, "fold": 2, "gender": 3})])
    os.remove(os.path.join(shards, "fold1-00000-of-00002.tfrecord"))
    write_shard(os.path.join(shards, "stray.tfrecord"), [])
    problems, _ = verify.verify(shards)
    assert f"{shard}: record 0 (byte 0): age 40-30 is neither unknown (-1, -1) nor a range within 0-120" in problems
    assert any(p.startswith(f"{shard}: record 1 (byte ") and "race label 2 is outside -1..-1" in p for p in problems)
    assert any(p.startswith(f"{shard}: record 1 (byte ") and "the image does not decode" in p for p in problems)
    assert any(p.startswith(f"{shard}: record 2 (byte ") and "image/fold is 2 in a shard of fold 0" in p
               for p in problems)
    assert any(p.startswith(f"{shard}: record 2 (byte ") and "gender label 3 is outside -1..1" in p for p in problems)
    assert any(p.startswith("fold 0: age counts") for p in problems)
    assert f"{os.path.join(shards, 'fold1-00000-of-00002.tfrecord')}: missing" in problems
    assert f"{os.path.join(shards, 'stray.tfrecord')}: a shard the manifest does not list" in problems


def test_the_command_line_exits_1_on_a_problem(small_shards, tmp_path):
    shards = str(tmp_path / "copy")
    shutil.copytree(small_shards, shards)
    shard = os.path.join(shards, "fold4-00000-of-00002.tfrecord")
    flip(shard, os.path.getsize(shard) // 2)
    command = [sys.executable, os.path.join(ROOT, "scripts", "verify_shards.py"), small_shards, shards]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{small_shards}: OK, 30 records" in result.stdout
    assert f"{shard}: record " in result.stdout and "corrupt" in result.stdout
