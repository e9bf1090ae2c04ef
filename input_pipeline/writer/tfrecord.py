"""TFRecord files written without TensorFlow.

Each record is framed as TensorFlow's record_writer.cc writes it:
    uint64 length, uint32 masked CRC32C of the length, the data, uint32 masked CRC32C of the data
(little-endian). TensorFlow's reader checks both checksums. CRC32C comes from
google-crc32c, Google's C implementation (a pure-Python CRC would cost ~2 ms a face).
"""

import struct

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data):
    """TensorFlow's masked CRC32C: rotated right by 15 bits, plus a constant."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data):
    """One record's bytes as they go into the file."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


class Writer:
    """Appends framed records to a file (a context manager, like tf.io.TFRecordWriter)."""

    def __init__(self, path):
        self.file = open(path, "wb")

    def write(self, data):
        self.file.write(frame(data))

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
