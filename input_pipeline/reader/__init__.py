"""A shard set -> tf.data: its manifest and folds, record parsing, the subject-disjoint
validation split, the training and evaluation pipelines, and a record-by-record check."""
