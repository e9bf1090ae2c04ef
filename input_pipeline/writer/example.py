"""A tf.train.Example serialized without TensorFlow: the protobuf wire format, by hand.

tensorflow/core/example/{example,feature}.proto:
    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }   (a map: repeated {key = 1, value = 2})
    Feature   { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    Int64List { repeated int64 value = 1 [packed = true]; }
The bytes are those of `SerializeToString(deterministic=True)`, which writes map entries
sorted by key, so shards are byte-identical across runs (tests/test_schema.py compares
the two).
"""

from input_pipeline import schema

_LENGTH_DELIMITED = 2  # Wire type of bytes, strings, sub-messages and packed fields.


def _varint(value):
    """Base-128 varint; a negative int64 is written as its 64-bit two's complement."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number, payload):
    """A length-delimited field: tag, length, payload."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _feature(kind, value):
    if kind == "bytes":
        return _field(1, _field(1, value))  # Feature.bytes_list { value }
    return _field(3, _field(1, _varint(value)))  # Feature.int64_list { packed value }


def serialize(values):
    """A serialized tf.train.Example of {key: value}, each key one of schema.FIELDS."""
    entries = b"".join(
        _field(1, _field(1, key.encode("utf-8")) + _field(2, _feature(schema.FIELDS[key][0], values[key])))
        for key in sorted(values))
    return _field(1, entries)  # Example.features { feature entries }


def make_example(**face):
    """The serialized record of one face (keyword arguments: schema.features)."""
    return serialize(schema.features(**face))
