"""The two patches of Beam's private internals (imagesr.components.beam.beam_internals): each does
what it says on the Beam it was tested for, and on any other Beam keeps Beam's own behaviour."""

import io
import logging

import pytest

beam = pytest.importorskip("apache_beam")

from apache_beam.io import filesystem, tfrecordio  # noqa: E402

from imagesr.components.beam import beam_internals  # noqa: E402
from imagesr.core.records import iter_tfrecord  # noqa: E402


def test_gzip_level_writes_at_the_fastest_level(tmp_path):
    import zlib

    assert beam_internals.use_gzip_level() is True
    path = tmp_path / "records.gz"
    with open(path, "wb") as raw:
        f = filesystem.CompressedFile(raw, compression_type=filesystem.CompressionTypes.GZIP)
        f.write(b"imagesr " * 1000)
        f.close()
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[8] == 4  # XFL 4: "fastest"; Beam's level 6 leaves 0
    assert zlib.decompress(data, 31) == b"imagesr " * 1000


def test_fast_crc32c_gives_the_checksum_crcmod_gives():
    import crcmod.predefined
    import google_crc32c

    assert beam_internals.use_fast_crc32c() is True
    assert tfrecordio._default_crc32c_fn.fn is google_crc32c.value
    slow = crcmod.predefined.mkPredefinedCrcFun("crc-32c")
    for payload in (b"", b"a", bytes(range(256)) * 33):
        assert tfrecordio._default_crc32c_fn(payload) == slow(payload)
    buf = io.BytesIO()
    for payload in (b"first", b"second record"):
        tfrecordio._TFRecordUtil.write_record(buf, payload)
    assert list(iter_tfrecord(io.BytesIO(buf.getvalue()), verify=True)) == [b"first", b"second record"]


def test_another_beam_keeps_its_own_behaviour(monkeypatch, caplog):
    monkeypatch.setattr(beam_internals.apache_beam, "__version__", "9.99.0")
    monkeypatch.setattr(beam_internals, "_warned", set())
    with caplog.at_level(logging.WARNING, logger=beam_internals.__name__):
        assert beam_internals.use_gzip_level() is False
        assert beam_internals.use_fast_crc32c() is False
    assert sum("9.99.0" in r.getMessage() for r in caplog.records) == 2
