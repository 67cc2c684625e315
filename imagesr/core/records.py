"""The patch-pair record codec: tf.train.Example and TFRecord files without TensorFlow.

One record is one LR/HR patch pair (the contract in ``schemas/schema.pbtxt``):

=============  =======  ==========================================================
feature        type     meaning
=============  =======  ==========================================================
lr, hr         bytes    raw uint8 HxWxC, row-major
residual       bytes    optional: HR - bicubic_up(LR patch) as int16 little-endian
lr_height ...  int64    lr_height, lr_width, hr_height, hr_width, channels
scale          float    HR size / LR size (2, 3, 4, 1.5, ...)
dataset        bytes    the input's dataset name (e.g. "T91", "davis", "video")
source         bytes    source id (dataset/relative path or sequence), the split key
frame          int64    frame index within the source (0 for a still image)
y, x           int64    the patch's top-left corner in the HR frame
=============  =======  ==========================================================

The protobuf wire format is written and parsed here directly (a few dozen lines), so the
Beam job, the TF-free training reader on the GPU machine (no TensorFlow there) and tests
share one codec; TensorFlow's ``tf.train.Example`` parses the same bytes. TFRecord framing
(length, masked CRC32C) is implemented too, gzip detected by its magic bytes.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Dict, Iterator, List, Optional, Union

import numpy as np

from imagesr.core.errors import UserError

FEATURE_KEYS = (
    "lr", "hr", "residual", "lr_height", "lr_width", "hr_height", "hr_width", "channels",
    "scale", "dataset", "source", "frame", "y", "x", "degradation",
)
OPTIONAL_KEYS = ("residual", "degradation")  # records written before degradations existed are "clean"
REQUIRED_KEYS = tuple(k for k in FEATURE_KEYS if k not in OPTIONAL_KEYS)


class RecordError(UserError):
    """A record or record file that does not follow the patch-pair contract."""


@dataclass
class PatchPair:
    lr: np.ndarray  # uint8 h x w x c
    hr: np.ndarray  # uint8 H x W x c
    scale: float
    dataset: str
    source: str
    frame: int
    y: int
    x: int
    residual: Optional[np.ndarray] = None  # int16 H x W x c
    degradation: str = "clean"  # how the LR was made (imagesr.core.degrade: "clean", "h264-crf27+lanczos", ...)


# --------------------------------------------------------------------------- protobuf wire


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: memoryview, pos: int):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise RecordError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise RecordError("varint too long")


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _feature_bytes(values: List[bytes]) -> bytes:
    inner = b"".join(_len_field(1, v) for v in values)
    return _len_field(1, inner)  # Feature.bytes_list


def _feature_floats(values: List[float]) -> bytes:
    packed = struct.pack(f"<{len(values)}f", *values)
    return _len_field(2, _len_field(1, packed))  # Feature.float_list, packed


def _feature_ints(values: List[int]) -> bytes:
    packed = b"".join(_varint(int(v)) for v in values)
    return _len_field(3, _len_field(1, packed))  # Feature.int64_list, packed


def encode_features(features: Dict[str, Union[bytes, float, int, List]]) -> bytes:
    """Serialize a dict to tf.train.Example bytes: bytes -> BytesList, float -> FloatList, int -> Int64List."""
    entries = []
    for key in sorted(features):
        v = features[key]
        vals = v if isinstance(v, list) else [v]
        if all(isinstance(x, (bytes, bytearray, memoryview)) for x in vals):
            feat = _feature_bytes([bytes(x) for x in vals])
        elif all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in vals):
            feat = _feature_ints(vals)
        elif all(isinstance(x, (float, int, np.floating, np.integer)) for x in vals):
            feat = _feature_floats([float(x) for x in vals])
        else:
            raise TypeError(f"feature {key!r}: unsupported value {v!r}")
        entry = _len_field(1, key.encode()) + _len_field(2, feat)
        entries.append(_len_field(1, entry))
    return _len_field(1, b"".join(entries))


def _iter_fields(buf: memoryview):
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 2:
            n, pos = _read_varint(buf, pos)
            if pos + n > len(buf):
                raise RecordError("truncated length-delimited field")
            yield field, wire, buf[pos : pos + n]
            pos += n
        elif wire == 0:
            v, pos = _read_varint(buf, pos)
            yield field, wire, v
        elif wire == 5:
            yield field, wire, buf[pos : pos + 4]
            pos += 4
        elif wire == 1:
            yield field, wire, buf[pos : pos + 8]
            pos += 8
        else:
            raise RecordError(f"unsupported wire type {wire}")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _parse_feature(buf: memoryview):
    for kind, _, payload in _iter_fields(buf):
        if kind == 1:
            return [bytes(p) for f, w, p in _iter_fields(payload) if f == 1]
        if kind == 2:
            out: List[float] = []
            for f, w, p in _iter_fields(payload):
                if w == 2:
                    out.extend(struct.unpack(f"<{len(p) // 4}f", p))
                elif w == 5:
                    out.append(struct.unpack("<f", p)[0])
            return out
        if kind == 3:
            out_i: List[int] = []
            for f, w, p in _iter_fields(payload):
                if w == 2:
                    pos = 0
                    while pos < len(p):
                        v, pos = _read_varint(p, pos)
                        out_i.append(_signed64(v))
                elif w == 0:
                    out_i.append(_signed64(p))
            return out_i
    return []


def decode_features(data: bytes) -> Dict[str, list]:
    """Parse tf.train.Example bytes into {key: list of values} (bytes, floats or ints)."""
    out: Dict[str, list] = {}
    try:
        for f, w, features in _iter_fields(memoryview(data)):
            if f != 1 or w != 2:
                continue
            for f2, w2, entry in _iter_fields(features):
                if f2 != 1 or w2 != 2:
                    continue
                key, value = None, []
                for f3, w3, p in _iter_fields(entry):
                    if f3 == 1:
                        key = bytes(p).decode()
                    elif f3 == 2:
                        value = _parse_feature(p)
                if key is not None:
                    out[key] = value
    except (struct.error, UnicodeDecodeError, IndexError) as e:
        raise RecordError(f"not a tf.train.Example: {e}") from None
    return out


# --------------------------------------------------------------------------- patch pairs


_ENTRY_KEY = {k: _len_field(1, k.encode()) for k in FEATURE_KEYS}


def _entry(key: str, feature: bytes) -> bytes:
    entry = _ENTRY_KEY[key] + b"\x12" + _varint(len(feature)) + feature
    return b"\x0a" + _varint(len(entry)) + entry


def _bytes_feature(v: bytes) -> bytes:
    inner = b"\x0a" + _varint(len(v)) + v
    return b"\x0a" + _varint(len(inner)) + inner


def _int_feature(v: int) -> bytes:
    packed = _varint(int(v))
    inner = b"\x0a" + _varint(len(packed)) + packed
    return b"\x1a" + _varint(len(inner)) + inner


def _float_feature(v: float) -> bytes:
    return b"\x12\x06\x0a\x04" + struct.pack("<f", v)


def encode_pair(p: PatchPair) -> bytes:
    """PatchPair -> tf.train.Example bytes following the schema.

    A specialised form of :func:`encode_features` (same bytes): the per-record cost is on the
    Beam job's hot path (hundreds of thousands of records), about 5x cheaper this way.
    """
    lr = np.ascontiguousarray(p.lr, dtype=np.uint8)
    hr = np.ascontiguousarray(p.hr, dtype=np.uint8)
    parts = [
        _entry("channels", _int_feature(hr.shape[2])),
        _entry("dataset", _bytes_feature(p.dataset.encode())),
        _entry("degradation", _bytes_feature(p.degradation.encode())),
        _entry("frame", _int_feature(p.frame)),
        _entry("hr", _bytes_feature(hr.tobytes())),
        _entry("hr_height", _int_feature(hr.shape[0])),
        _entry("hr_width", _int_feature(hr.shape[1])),
        _entry("lr", _bytes_feature(lr.tobytes())),
        _entry("lr_height", _int_feature(lr.shape[0])),
        _entry("lr_width", _int_feature(lr.shape[1])),
    ]
    if p.residual is not None:
        parts.append(_entry("residual", _bytes_feature(np.ascontiguousarray(p.residual, dtype="<i2").tobytes())))
    parts += [
        _entry("scale", _float_feature(float(p.scale))),
        _entry("source", _bytes_feature(p.source.encode())),
        _entry("x", _int_feature(p.x)),
        _entry("y", _int_feature(p.y)),
    ]
    body = b"".join(parts)
    return b"\x0a" + _varint(len(body)) + body


def _one(feats: Dict[str, list], key: str):
    v = feats.get(key)
    if not v:
        raise RecordError(f"record lacks required feature {key!r} (is this a patch-pair dataset?)")
    return v[0]


def decode_pair(data: bytes) -> PatchPair:
    """tf.train.Example bytes -> PatchPair; RecordError if the schema does not match."""
    f = decode_features(data)
    c = int(_one(f, "channels"))
    lh, lw, hh, hw = (int(_one(f, k)) for k in ("lr_height", "lr_width", "hr_height", "hr_width"))
    lr_b, hr_b = _one(f, "lr"), _one(f, "hr")
    if len(lr_b) != lh * lw * c or len(hr_b) != hh * hw * c:
        raise RecordError(f"lr/hr byte sizes {len(lr_b)}/{len(hr_b)} do not match their shapes")
    residual = None
    if f.get("residual"):
        r = f["residual"][0]
        if len(r) != hh * hw * c * 2:
            raise RecordError("residual byte size does not match the HR shape")
        residual = np.frombuffer(r, "<i2").reshape(hh, hw, c)
    return PatchPair(
        lr=np.frombuffer(lr_b, np.uint8).reshape(lh, lw, c),
        hr=np.frombuffer(hr_b, np.uint8).reshape(hh, hw, c),
        scale=float(_one(f, "scale")),
        dataset=_one(f, "dataset").decode(),
        source=_one(f, "source").decode(),
        frame=int(_one(f, "frame")),
        y=int(_one(f, "y")),
        x=int(_one(f, "x")),
        residual=residual,
        degradation=f["degradation"][0].decode() if f.get("degradation") else "clean",
    )


# --------------------------------------------------------------------------- TFRecord files


def _crc32c_table():
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = None


def crc32c(data: bytes) -> int:
    try:
        import google_crc32c

        return google_crc32c.value(bytes(data))
    except ImportError:  # pure Python fallback (slow; only for verification without the package)
        global _TABLE
        if _TABLE is None:
            _TABLE = _crc32c_table()
        c = 0xFFFFFFFF
        for b in bytes(data):
            c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
        return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_tfrecord(f: BinaryIO, record: bytes) -> None:
    """Append one record to an open binary file (TFRecord framing)."""
    header = struct.pack("<Q", len(record))
    f.write(header)
    f.write(struct.pack("<I", masked_crc(header)))
    f.write(record)
    f.write(struct.pack("<I", masked_crc(record)))


class _Prepended(io.RawIOBase):
    """A read-only stream with some already-read bytes put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = head, rest

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            out, self._head = self._head + self._rest.read(), b""
            return out
        out, self._head = self._head[:n], self._head[n:]
        if len(out) < n:
            out += self._rest.read(n - len(out))
        return out


def _open_maybe_gzip(f: BinaryIO) -> BinaryIO:
    head = f.read(2)
    stream = _Prepended(head, f)
    return gzip.GzipFile(fileobj=stream) if head == b"\x1f\x8b" else stream


def iter_tfrecord(source: Union[str, BinaryIO], verify: bool = False, name: Optional[str] = None) -> Iterator[bytes]:
    """Yield the records of a TFRecord file (plain or gzip), checking framing; CRCs if ``verify``.
    ``name``: what errors call a stream (default: its ``name``)."""
    name = name or (source if isinstance(source, str) else getattr(source, "name", "<stream>"))
    raw = open(source, "rb") if isinstance(source, str) else source
    try:
        f = _open_maybe_gzip(raw)
        index = 0
        while True:
            try:
                header = f.read(8)
            except (OSError, EOFError, zlib.error) as e:
                raise RecordError(f"{name}: corrupt compressed data at record {index} ({e})") from None
            if not header:
                return
            try:
                if len(header) < 8:
                    raise RecordError(f"{name}: truncated record header at record {index}")
                (length,) = struct.unpack("<Q", header)
                hcrc = f.read(4)
                # The length's CRC is always checked (8 bytes, cheap): a file that is not a
                # TFRecord fails here instead of asking for an absurd read.
                if len(hcrc) < 4 or struct.unpack("<I", hcrc)[0] != masked_crc(header):
                    raise RecordError(f"{name}: not a TFRecord file or corrupt (bad length checksum at record {index})")
                data = f.read(length)
                dcrc = f.read(4)
            except (OSError, EOFError, zlib.error) as e:
                raise RecordError(f"{name}: corrupt compressed data at record {index} ({e})") from None
            if len(hcrc) < 4 or len(data) < length or len(dcrc) < 4:
                raise RecordError(f"{name}: truncated record {index}")
            if verify and struct.unpack("<I", dcrc)[0] != masked_crc(data):
                raise RecordError(f"{name}: CRC mismatch at record {index}")
            index += 1
            yield data
    finally:
        if isinstance(source, str):
            raw.close()
