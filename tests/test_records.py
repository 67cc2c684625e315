
import numpy as np
import pytest

from imagesr.core import records
from imagesr.core.records import PatchPair, RecordError

SCHEMA = __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "schemas", "schema.pbtxt")


def _pair(residual=True):
    r = np.random.default_rng(0)
    return PatchPair(
        lr=r.integers(0, 256, (16, 16, 3), dtype=np.uint8), hr=r.integers(0, 256, (48, 48, 3), dtype=np.uint8),
        scale=3.0, dataset="T91", source="T91/x.bmp", frame=7, y=24, x=480,
        residual=r.integers(-255, 256, (48, 48, 3)).astype(np.int16) if residual else None,
    )


def test_roundtrip_and_tensorflow_agree():
    tf = pytest.importorskip("tensorflow")
    p = _pair()
    data = records.encode_pair(p)
    ex = tf.train.Example.FromString(data)
    f = ex.features.feature
    assert f["scale"].float_list.value == [3.0] and f["x"].int64_list.value == [480]
    assert f["lr"].bytes_list.value[0] == p.lr.tobytes()
    # TF's own serialization parses with ours
    q = records.decode_pair(ex.SerializeToString())
    np.testing.assert_array_equal(q.hr, p.hr)
    np.testing.assert_array_equal(q.residual, p.residual)
    assert (q.scale, q.dataset, q.source, q.frame, q.y, q.x) == (3.0, "T91", "T91/x.bmp", 7, 24, 480)


def test_fast_encoder_equals_generic_encoder():
    p = _pair()
    generic = records.encode_features({
        "lr": p.lr.tobytes(), "hr": p.hr.tobytes(), "residual": p.residual.astype("<i2").tobytes(),
        "lr_height": 16, "lr_width": 16, "hr_height": 48, "hr_width": 48, "channels": 3, "scale": 3.0,
        "dataset": b"T91", "source": b"T91/x.bmp", "frame": 7, "y": 24, "x": 480, "degradation": b"clean",
    })
    assert records.encode_pair(p) == generic
    assert records.decode_features(records.encode_features({"neg": -5}))["neg"] == [-5]


def test_schema_file_matches_codec():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(open(SCHEMA).read(), schema_pb2.Schema())
    names = {f.name: f for f in schema.feature}
    assert set(names) == set(records.FEATURE_KEYS)
    feats = records.decode_features(records.encode_pair(_pair()))
    for name, f in names.items():
        v = feats[name][0]
        want = {schema_pb2.BYTES: bytes, schema_pb2.INT: int, schema_pb2.FLOAT: float}[f.type]
        assert isinstance(v, want), name
        assert (f.presence.min_fraction == 1.0) == (name in records.REQUIRED_KEYS), name


def test_tfrecord_framing_plain_and_gzip(tmp_path):
    tf = pytest.importorskip("tensorflow")
    data = [records.encode_pair(_pair(residual=i % 2 == 0)) for i in range(4)]
    plain = tmp_path / "a.tfrecord"
    with open(plain, "wb") as f:
        for d in data:
            records.write_tfrecord(f, d)
    assert [bytes(x.numpy()) for x in tf.data.TFRecordDataset(str(plain))] == data
    gz = tmp_path / "b.tfrecord.gz"
    with tf.io.TFRecordWriter(str(gz), options="GZIP") as w:
        for d in data:
            w.write(d)
    assert list(records.iter_tfrecord(str(gz), verify=True)) == data
    assert list(records.iter_tfrecord(str(plain), verify=True)) == data


def test_bad_records_and_files(tmp_path):
    with pytest.raises(RecordError, match="lacks required feature"):
        records.decode_pair(records.encode_features({"hr": b"x"}))
    with pytest.raises(RecordError):
        records.decode_pair(b"\x0a\xff\xff")
    bad_sizes = records.encode_pair(_pair())
    p = _pair()
    p.lr = p.lr[:8]
    wrong = records.decode_features(records.encode_pair(p))
    wrong["lr_height"] = [16]
    with pytest.raises(RecordError, match="do not match"):
        records.decode_pair(records.encode_features({k: v if len(v) > 1 else v[0] for k, v in wrong.items()}))
    path = tmp_path / "t.tfrecord"
    with open(path, "wb") as f:
        records.write_tfrecord(f, bad_sizes)
    raw = path.read_bytes()
    path.write_bytes(raw[:-10])
    with pytest.raises(RecordError, match="truncated record 0"):
        list(records.iter_tfrecord(str(path)))
    flipped = bytearray(raw)
    flipped[100] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(RecordError, match="CRC mismatch"):
        list(records.iter_tfrecord(str(path), verify=True))
