"""Face datasets to TFRecord shards (build side) and, later, the tf.data reader.

Modules that run in worker processes (images, sample, synthetic_face, parallel) and
the ones entry points import at start-up (config, labels, rows, adience) do not
import TensorFlow; schema, shards and build do.
"""
