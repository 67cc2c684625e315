"""Input pipelines over the patch-pair TFRecords of the Beam job.

Two readers give the same (inputs, targets) for the same records:

* :func:`tf_dataset`: tf.data, for the TensorFlow backend and the TFX Trainer;
* :func:`numpy_batches`: pure Python + numpy through ``imagesr.core.records`` (no TensorFlow), for
  the JAX backend on the GPU machine.

Per record, for a model of kind ``vdsr`` the input is the bicubic upscale of the LR patch at
HR size (exactly ``HR - residual`` when the record has a ``residual``, else the core MATLAB
bicubic: the same numbers either way), for ``subpixel`` the LR patch itself; the target is the
HR patch. Values are float32 in [0, 255]. Records of other scales are skipped; an optional
HR crop size takes the top-left ``crop`` pixels (aligned to the LR grid).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from imagesr.core.dataset import DatasetError
from imagesr.core.errors import UserError
from imagesr.core.records import RecordError, decode_pair, iter_tfrecord
from imagesr.core.resize import imresize
from imagesr.core.scale import Scale

log = logging.getLogger(__name__)


def has_records(files: Sequence[str]) -> bool:
    """Whether any of ``files`` holds a record (read up to the first one)."""
    return any(next(iter_tfrecord(f), None) is not None for f in files)


def check_records(files: Sequence[str], scales: Optional[Sequence[float]] = None) -> None:
    """Fail early, with the file named, before any training starts: a file that is not
    patch-pair records, or is corrupt or truncated anywhere (every file is read through:
    a bad shard would otherwise stop training midway), and a wanted scale no record has
    (an input pipeline that filters by scale would wait forever for it)."""
    wanted = [float(s) for s in scales] if scales else []
    found, records = set(), 0
    for f in files:
        try:
            for i, rec in enumerate(iter_tfrecord(f)):
                records += 1
                if i == 0 or any(not _scale_ok(s, found) for s in wanted):
                    try:
                        found.add(decode_pair(rec).scale)
                    except RecordError as e:
                        raise DatasetError(f"{f}: record {i}: {e}") from None
        except RecordError as e:
            raise DatasetError(str(e)) from None
    if not records:
        raise DatasetError(f"{files[0]}...: the TFRecord files hold no records")
    missing = [s for s in wanted if not _scale_ok(s, found)]
    if missing:
        have = ", ".join(f"x{s:g}" for s in sorted(found))
        raise DatasetError(f"{os.path.dirname(files[0]) or files[0]}: no records at "
                           f"{', '.join(f'x{s:g}' for s in missing)} (the records hold {have}); "
                           "train on those scales or make patches at the others")


@functools.lru_cache(maxsize=None)
def _input_at_output_size(kind: str) -> bool:
    """The architecture's input: the bicubic upscale at HR size (VDSR), or the LR patch."""
    from imagesr.training.models import spec  # Keras loads here, not in the parsing workers

    return spec(kind).input_at_output_size


@functools.lru_cache(maxsize=256)
def _as_scale(value) -> Scale:
    return Scale(value)


def _scale_ok(scale: float, scales: Optional[Sequence[float]]) -> bool:
    """Whether a record's scale (float32 in the record, snapped to its exact Scale) is wanted."""
    return scales is None or _as_scale(scale) in {_as_scale(s) for s in scales}


def example_arrays(record: bytes, kind: str, scales=None, crop: Optional[int] = None):
    """(input, target) float32 arrays for one serialized record, or None if its scale is not wanted."""
    p = decode_pair(record)
    if not _scale_ok(p.scale, scales):
        return None
    lr, hr = p.lr, p.hr
    if crop and crop < hr.shape[0]:
        scale = Scale(p.scale)
        if crop % scale.modulus:
            raise UserError(f"crop {crop} is not a multiple of {scale.modulus} (scale {scale})")
        lc = scale.lr_side(crop)
        hr, lr = hr[:crop, :crop], lr[:lc, :lc]
        residual = None if p.residual is None else p.residual[:crop, :crop]
    else:
        residual = p.residual
    if _input_at_output_size(kind):
        if residual is not None and (crop is None or crop >= p.hr.shape[0]):
            x = hr.astype(np.int16) - residual  # exact: residual = HR - bicubic(LR)
        else:
            x = imresize(lr, size=hr.shape[:2])
    else:
        x = lr
    return np.asarray(x, np.float32), np.asarray(hr, np.float32)


def iter_examples(files: Sequence[str], kind: str, scales=None, crop=None, shuffle_files: bool = False,
                  seed: int = 0) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    files = list(files)
    if shuffle_files:
        random.Random(seed).shuffle(files)
    for f in files:
        for rec in iter_tfrecord(f):
            ex = example_arrays(rec, kind, scales, crop)
            if ex is not None:
                yield ex


def _shuffled(examples, buffer: int, rng: random.Random):
    """tf.data-style buffer shuffle (an identity when ``buffer`` <= 0)."""
    if buffer <= 0:
        yield from examples
        return
    buf: List = []
    for ex in examples:
        if len(buf) < buffer:
            buf.append(ex)
            continue
        i = rng.randrange(len(buf))
        yield buf[i]
        buf[i] = ex
    rng.shuffle(buf)
    yield from buf


def _batched(examples, batch_size: int, drop_remainder: bool):
    xs: List[np.ndarray] = []
    ys: List[np.ndarray] = []
    for x, y in examples:
        xs.append(x)
        ys.append(y)
        if len(xs) == batch_size:
            yield np.stack(xs), np.stack(ys)
            xs, ys = [], []
    if xs and not drop_remainder:
        yield np.stack(xs), np.stack(ys)


def numpy_batches(files: Sequence[str], kind: str, batch_size: int, scales=None, crop=None,
                  shuffle_buffer: int = 0, repeat: bool = False, seed: int = 0
                  ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Batches (inputs, targets) of float32 NHWC arrays without TensorFlow.

    Without shuffling the order is file order then record order, as :func:`tf_dataset`;
    repeating drops the last partial batch of each pass (as tf.data's drop_remainder).
    """
    rng = random.Random(seed)
    epoch = 0
    while True:
        examples = iter_examples(files, kind, scales, crop, shuffle_files=shuffle_buffer > 0, seed=seed + epoch)
        produced = 0
        for batch in _batched(_shuffled(examples, shuffle_buffer, rng), batch_size, drop_remainder=repeat):
            produced += 1
            yield batch
        if not repeat:
            return
        if produced == 0:
            raise DatasetError(f"fewer than {batch_size} records of scale {scales} in {list(files)[:3]}")
        epoch += 1


def _load_file(f: str, kind: str, scales, crop) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(inputs, targets) of one file as uint8 arrays, or None if it holds no wanted records."""
    xs, ys = [], []
    for x, y in iter_examples([f], kind, scales, crop):
        xs.append(x.astype(np.uint8))
        ys.append(y.astype(np.uint8))
    if not xs:
        return None
    return np.stack(xs), np.stack(ys)


_CHILD = """
import json, sys
import numpy as np
from imagesr.training.data import _load_file
f, kind, scales, crop, out = json.loads(sys.argv[1])
pair = _load_file(f, kind, scales, crop)
if pair is not None:
    np.save(out + "_x.npy", pair[0])
    np.save(out + "_y.npy", pair[1])
"""


def _load_files_in_children(files, kind, scales, crop, workers: int):
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="imagesr-load-") as tmp:
        pending = list(enumerate(files))
        running = []
        while pending or running:
            while pending and len(running) < workers:
                i, f = pending.pop(0)
                arg = json.dumps([f, kind, list(scales) if scales else None, crop, os.path.join(tmp, str(i))])
                running.append((i, f, subprocess.Popen([sys.executable, "-c", _CHILD, arg],
                                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
            i, f, p = running.pop(0)
            err = p.communicate()[1]
            if p.returncode != 0:
                for _, _, q in running:
                    q.kill()
                last = (err.decode(errors="replace").strip().splitlines() or ["exit status %d" % p.returncode])[-1]
                raise DatasetError(f"{f}: cannot read records: {last}")
        parts = []
        for i, _ in enumerate(files):
            xp = os.path.join(tmp, f"{i}_x.npy")
            if os.path.exists(xp):
                parts.append((np.load(xp), np.load(os.path.join(tmp, f"{i}_y.npy"))))
        return parts


def load_arrays(files: Sequence[str], kind: str, scales=None, crop=None,
                workers: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """All (input, target) pairs of ``files`` as two uint8 arrays (N, H, W, 3), through the same
    per-record function as the readers. For GPU training, where a Python reader per batch
    would starve the accelerator: 150k pairs of 48 px patches take about 2 GB.

    ``workers > 1`` parses the files in up to that many child Python processes (new
    interpreters, not forks: safe after JAX or TensorFlow started their threads, and they do
    not re-run the caller's main script as multiprocessing's spawn would); the order of the
    pairs is the order of ``files``."""
    files = list(files)
    if workers > 1 and len(files) > 1:
        parts = _load_files_in_children(files, kind, scales, crop, workers)
    else:
        parts = [p for p in (_load_file(f, kind, scales, crop) for f in files) if p is not None]
    if not parts:
        raise DatasetError(f"no records of scale {scales} in {files[:3]}")
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def array_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int = 0,
                  dihedral: bool = True, prefetch: int = 0) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Endless random batches (float32) from in-memory arrays, with a random flip/rotation
    per batch (the eight symmetries of the square keep LR/HR aligned).

    ``prefetch > 0`` makes the batches in a background thread, that many ahead, so that the
    training loop does not wait for the gather on the host between device steps (numpy
    releases the GIL while it copies). The sequence is the same either way."""
    n = len(x)
    if n < batch_size:
        raise DatasetError(f"{n} examples, fewer than one batch of {batch_size}")

    def batches():
        rng = np.random.default_rng(seed)
        while True:
            idx = rng.integers(0, n, batch_size)
            bx, by = x[idx], y[idx]
            if dihedral:
                k = int(rng.integers(8))
                if k >= 4:
                    bx, by = bx[:, :, ::-1], by[:, :, ::-1]
                bx, by = np.rot90(bx, k % 4, axes=(1, 2)), np.rot90(by, k % 4, axes=(1, 2))
            yield np.ascontiguousarray(bx, np.float32), np.ascontiguousarray(by, np.float32)

    if prefetch <= 0:
        yield from batches()
        return
    import queue
    import threading

    q: "queue.Queue" = queue.Queue(prefetch)
    stop = threading.Event()

    def produce():
        for b in batches():
            while not stop.is_set():
                try:
                    q.put(b, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return

    threading.Thread(target=produce, name="array-batches", daemon=True).start()
    try:
        while True:
            yield q.get()
    finally:
        stop.set()


# --------------------------------------------------------------------------- tf.data


def tf_dataset(files: Sequence[str], kind: str, batch_size: int, scales=None, crop=None,
               shuffle_buffer: int = 0, repeat: bool = False, seed: int = 0):
    """The same batches as :func:`numpy_batches` (same order without shuffling) with tf.data."""
    import tensorflow as tf

    spec = {
        "lr": tf.io.FixedLenFeature([], tf.string),
        "hr": tf.io.FixedLenFeature([], tf.string),
        "residual": tf.io.FixedLenFeature([], tf.string, default_value=b""),
        "lr_height": tf.io.FixedLenFeature([], tf.int64),
        "lr_width": tf.io.FixedLenFeature([], tf.int64),
        "hr_height": tf.io.FixedLenFeature([], tf.int64),
        "hr_width": tf.io.FixedLenFeature([], tf.int64),
        "channels": tf.io.FixedLenFeature([], tf.int64),
        "scale": tf.io.FixedLenFeature([], tf.float32),
    }
    wanted = tf.constant([float(s) for s in scales] if scales else [0.0], tf.float32)

    def parse(serialized):
        f = tf.io.parse_single_example(serialized, spec)
        c = tf.cast(f["channels"], tf.int32)
        lr = tf.reshape(tf.io.decode_raw(f["lr"], tf.uint8), tf.stack([tf.cast(f["lr_height"], tf.int32), tf.cast(f["lr_width"], tf.int32), c]))
        hr = tf.reshape(tf.io.decode_raw(f["hr"], tf.uint8), tf.stack([tf.cast(f["hr_height"], tf.int32), tf.cast(f["hr_width"], tf.int32), c]))
        return lr, hr, f["residual"], f["scale"]

    def keep(lr, hr, residual, scale):
        if not scales:
            return tf.constant(True)
        return tf.reduce_any(tf.abs(wanted - scale) < 1e-6)

    def to_arrays(lr, hr, residual, scale):
        if crop:
            lc = tf.cast(tf.round(tf.cast(crop, tf.float32) / scale), tf.int32)
            cropped = tf.shape(hr)[0] > crop
            hr_c = hr[:crop, :crop]
            lr = tf.cond(cropped, lambda: lr[:lc, :lc], lambda: lr)
            residual = tf.cond(cropped, lambda: tf.constant(b""), lambda: residual)
            hr = tf.cond(cropped, lambda: hr_c, lambda: hr)
        if not _input_at_output_size(kind):
            x = tf.cast(lr, tf.float32)
        else:
            def from_residual():
                r = tf.reshape(tf.io.decode_raw(residual, tf.int16, little_endian=True), tf.shape(hr))
                return tf.cast(tf.cast(hr, tf.int16) - r, tf.float32)

            def from_bicubic():
                up = tf.numpy_function(lambda a, b: imresize(a, size=b.shape[:2]).astype(np.float32), [lr, hr], tf.float32)
                return tf.reshape(up, tf.shape(hr))

            x = tf.cond(tf.strings.length(residual) > 0, from_residual, from_bicubic)
        # Records are RGB (schema: channels 3..3); static channels let the models build.
        return tf.ensure_shape(x, [None, None, 3]), tf.ensure_shape(tf.cast(hr, tf.float32), [None, None, 3])

    ds = tf.data.TFRecordDataset(list(files), compression_type="GZIP" if _is_gzip(files[0]) else "")
    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=shuffle_buffer == 0)
    ds = ds.filter(keep).map(to_arrays, num_parallel_calls=tf.data.AUTOTUNE, deterministic=shuffle_buffer == 0)
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"
