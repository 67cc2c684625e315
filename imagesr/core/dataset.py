"""The patch-pair dataset on disk, local or ``gs://``: its layout, its manifest, its record files
per split and counting them, in one place for every stage that writes or reads one (the Beam
writer and the TFX patch ExampleGen, the trainer, the evaluator, ``imagesr records count`` and the
benchmarks). No Beam, TFX or TensorFlow: counting a dataset or finding its files needs none.

The layout is TFX ExampleGen's, so TFX consumes the folder as an Examples artifact::

    DATASET/Split-train/data_tfrecord-00000-of-00002.gz   gzip TFRecords of tf.train.Example
    DATASET/Split-eval/data_tfrecord-00000-of-00001.gz
    DATASET/dead_letter.jsonl   one line per input that failed, with the reason
    DATASET/manifest.json       options, counts per dataset/scale/split, every input's status

``manifest.json`` is written last: a folder without it is not a finished dataset.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

from imagesr.core import fs
from imagesr.core.errors import UserError
from imagesr.core.records import iter_tfrecord

SPLITS = ("train", "eval")
MANIFEST = "manifest.json"
DEAD_LETTER = "dead_letter.jsonl"
RECORD_PREFIX = "data_tfrecord"  # the record files' names: <prefix>-<shard>-of-<shards>.gz


class DatasetError(UserError):
    """An examples folder that is missing, empty or not patch-pair records."""


def split_name(split: str) -> str:
    """The folder of ``split`` inside a dataset (TFX's ``Split-<name>``)."""
    return f"Split-{split}"


ENTRIES = (MANIFEST, DEAD_LETTER) + tuple(split_name(s) for s in SPLITS)  # all a finished dataset holds


def split_dir(root: str, split: str) -> str:
    return fs.join(root, split_name(split))


def manifest_path(root: str) -> str:
    return fs.join(root, MANIFEST)


def read_manifest(root: str) -> Optional[Dict]:
    """The dataset's manifest, or None for a folder without one (unfinished, or not a dataset)."""
    path = manifest_path(root)
    return json.loads(fs.read_text(path)) if fs.isfile(path) else None


def record_files(path: str, split: Optional[str] = None) -> List[str]:
    """The TFRecord files of a dataset folder (``Split-<split>/*`` when ``split`` is given), of a
    split folder, of a glob or a single file; local or gs://. Raises :class:`DatasetError` when
    there are none, naming where it looked."""
    if any(c in path for c in "*?["):
        files = fs.glob(path)
    elif fs.isfile(path):
        files = [path]
    elif fs.isdir(path):
        sub = split_dir(path, split) if split else None
        if sub and not fs.isdir(sub) and any(fs.isdir(split_dir(path, s)) for s in SPLITS):
            raise DatasetError(f"{path}: no {split_name(split)}/ folder (the dataset has no {split} split)")
        folder = sub if sub and fs.isdir(sub) else path
        files = [f for f in fs.glob(fs.join(folder, "*"))
                 if not f.rsplit("/", 1)[-1].startswith(".") and not f.endswith((MANIFEST, ".jsonl"))]
    else:
        raise DatasetError(f"{path}: no such examples folder or file")
    if not files:
        where = fs.join(path, split_name(split)) if split else path
        raise DatasetError(f"{where}: no TFRecord files (run `imagesr patches` first)")
    return files


def _count(path: str) -> int:
    if not fs.is_remote(path):
        return sum(1 for _ in iter_tfrecord(path))
    with fs.open_binary(path) as f:  # gzip is detected from the bytes; a corrupt file is named
        return sum(1 for _ in iter_tfrecord(f, name=path))


def count_records(root: str) -> Dict:
    """Count the records in a dataset's files themselves, per split, next to what its manifest
    says: ``{"output", "records": {split: n}, "total", "manifest": {split: n} | None, "match"}``."""
    if not fs.is_remote(root) and fs.exists(root) and not fs.isdir(root):
        raise DatasetError(f"{root}: not a folder (a patch dataset is the folder imagesr patches wrote)")
    counts = {split: sum(_count(f) for f in fs.glob(fs.join(split_dir(root, split), "*"))) for split in SPLITS}
    manifest = read_manifest(root)
    if not any(counts.values()) and manifest is None:
        if not fs.exists(root):
            raise DatasetError(f"{root}: no such folder")
        raise DatasetError(f"{root}: not a patch dataset (no Split-*/ record files and no {MANIFEST})")
    by_split = manifest["counts"]["pairs_by_split"] if manifest is not None else None
    return {"output": root, "records": counts, "total": sum(counts.values()), "manifest": by_split,
            "match": by_split == counts if by_split is not None else None}


def staged_locally(files: Sequence[str], folder: str) -> List[str]:
    """``files`` as local paths: remote record files copied into ``folder`` (tf.data and the
    numpy reader read local files; the copies keep their base names behind an index, so the
    shards of two splits never collide), local ones as they are."""
    out = []
    for i, f in enumerate(files):
        if not fs.is_remote(f):
            out.append(f)
            continue
        os.makedirs(folder, exist_ok=True)
        local = os.path.join(folder, f"{i:05d}-{f.rsplit('/', 1)[-1]}")
        with open(local, "wb") as dst:
            dst.write(fs.read_bytes(f))
        out.append(local)
    return out
