"""Face datasets -> TFRecord shard sets -> tf.data, in the order the data flows.

    sources/    a raw dataset (Adience folds, UTKFace, a CSV, the synthetic sample) -> rows
    writer/     rows -> a shard set: encoded faces, shards, manifest.json, skipped.csv
    reader/     a shard set -> tf.data pipelines for training and evaluation
    schema.py   the record's keys, shared by writer and reader
    labels.py   age groups, label policies, gender, the heads of a task
    config.py   BuildConfig (the writer's) and DataConfig (the reader's)
    preprocess.py   every resize and crop between a stored face and the model

sources/ and writer/ never import TensorFlow: build_input.py and its worker processes
start in a fraction of a second (tests/test_layout.py checks it).
"""
