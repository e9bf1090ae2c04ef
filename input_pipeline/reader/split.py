"""Which records a split reads: validation is a slice of the training folds chosen by
*subject*, never by image, so validation faces belong to people the model has not seen."""

import tensorflow as tf


def in_validation(subject_id, val_fraction):
    """True for a stable `val_fraction` of subjects (a hash of the subject id)."""
    bucket = tf.strings.to_hash_bucket_fast(subject_id, 10_000)
    return bucket < int(round(val_fraction * 10_000))


def keep(record, split, heads, val_fraction):
    """The record belongs to `split` ("train", "val" or "test": the test fold's files)
    and has a label for at least one of `heads` (each head's loss masks the others)."""
    known = tf.reduce_any(tf.stack([record[head] >= 0 for head in heads]), axis=0)
    if split == "test":
        return known
    validation = in_validation(record["subject_id"], val_fraction)
    return known & (validation if split == "val" else tf.logical_not(validation))
