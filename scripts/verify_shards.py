"""Checks a build_input shard set record by record.

    python scripts/verify_shards.py data/tfrecords/adience_sample [more shard folders]

For every shard that manifest.json lists, reads every record (TensorFlow's TFRecord
reader checks each record's length and data CRC32C), parses it as a tf.train.Example of
input_pipeline/schema.py, decodes its JPEG, and checks its size, its labels and its
fold. Then compares the counts per fold (examples, age and gender classes) with the
manifest, and looks for shards that are missing or not listed. Prints one line per
problem, naming the file, the record's index and its byte offset. Exit status: 0 when
all is well, 1 otherwise.
"""

import sys

from absl import app, flags

from input_pipeline.reader import verify

flags.DEFINE_integer("max_problems", 50, "Problem lines printed per shard folder; the rest are counted.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("name one or more shard folders (each with a manifest.json)")
    failed = False
    for shards_dir in argv[1:]:
        problems, read = verify.verify(shards_dir)
        for line in problems[:FLAGS.max_problems]:
            print(line)
        if len(problems) > FLAGS.max_problems:
            print(f"... and {len(problems) - FLAGS.max_problems} more problems")
        if problems:
            failed = True
            print(f"{shards_dir}: {len(problems)} problem(s) in {read:,} records read")
        else:
            print(f"{shards_dir}: OK, {read:,} records: every CRC, image, label and count checks out")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
