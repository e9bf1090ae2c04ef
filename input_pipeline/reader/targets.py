"""Stored labels -> what each head learns: the age bin, the age in years, gender, race.

The bins are chosen at training time (labels.AgeBins); a record's age, a range of years
as its source gave it, is looked up in a table that labels.AgeBins.table computes in
Python, so the pipeline and every Python count (class weights, the log) agree exactly.
"""

import tensorflow as tf

from input_pipeline import labels


def make_targets(age_bins, policy):
    """A function from parsed records (parse.parse) to {head: int32 labels, -1 unknown}
    for every head, whichever the model has: evaluation breaks figures down by gender and
    race even when they are not heads."""
    table = tf.constant(age_bins.table(policy))

    def targets(record):
        low, high = record["age_low"], record["age_high"]
        known = low >= 0
        bounds = tf.clip_by_value(tf.stack([low, high], axis=-1), 0, labels.MAX_YEARS)
        return {
            "age": tf.where(known, tf.gather_nd(table, bounds), labels.UNKNOWN),
            # An exact age (low == high); older than the last class counts as that class.
            "age_years": tf.where(known & (low == high), tf.minimum(low, labels.YEARS - 1), labels.UNKNOWN),
            "gender": record["gender"],
            "race": record["race"],
        }

    return targets
