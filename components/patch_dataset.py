"""A patch-pair dataset on disk (local or gs://): the Beam pipeline that writes it, staging,
the manifest and dead-letter list, and counting it back. Shared by the Beam job
(``pipelines.patch_job``) and the TFX patch ExampleGen (``components.patch_example_gen``).

Layout (the splits as TFX ExampleGen writes them, so TFX consumes it as an Examples artifact)::

    OUTPUT/Split-train/data_tfrecord-00000-of-00002.gz   gzip TFRecords of tf.train.Example
    OUTPUT/Split-eval/data_tfrecord-00000-of-00001.gz
    OUTPUT/dead_letter.jsonl   one line per input that failed, with the reason
    OUTPUT/manifest.json       options, counts per dataset/scale/split, every input's status

Everything is first written under ``OUTPUT/.staging-<run>/`` and moved into place only when
the run succeeded and produced records; ``manifest.json`` is written last, so a folder
without it is not a finished dataset. A run in which no input is valid fails with the
reasons and leaves nothing behind.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import defaultdict
from typing import Dict, List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from components.patch_transform import SPLITS, STATUS_TAG, MediaToPatchPairs, write_split
from imagesr.patches import PatchOptions
from imagesr.sources import join

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DEAD_LETTER = "dead_letter.jsonl"
RECORD_PREFIX = "data_tfrecord"


class PatchDatasetError(Exception):
    """A dataset run that cannot start or produced nothing; the message says why."""


def build_pipeline(p: beam.Pipeline, sources: List[Dict], patch_options: PatchOptions, staging: str,
                   frame_stride: int = 5, max_frames: Optional[int] = None, progress_dir: Optional[str] = None):
    """Wire the job into ``p``: sources -> patch pairs -> sharded TFRecords + statuses."""
    out = (
        p
        | "Sources" >> beam.Create(sources)
        | "MediaToPatchPairs" >> MediaToPatchPairs(patch_options, frame_stride, max_frames, progress_dir)
    )
    for split in SPLITS:
        write_split(out[split], join(staging, f"Split-{split}", RECORD_PREFIX), split.title())
    (
        out[STATUS_TAG]
        | "StatusToJson" >> beam.Map(lambda st: json.dumps(st, sort_keys=True))
        | "WriteStatuses" >> beam.io.WriteToText(join(staging, "status", "status"), file_name_suffix=".jsonl")
    )
    return out


class MarkerProgress:
    """Local runs: sources done, pairs written and their rate, read from the workers' marker
    files by a background thread, shown with imagesr.progress.ProgressLine.

    The ETA weighs each source by the megapixels it will decode (estimated from headers in
    the background, :func:`imagesr.sources.estimated_megapixels`; at most ``ESTIMATE_AT_MOST``
    sources, the rest take their kind's mean), so a long video is not counted like one image."""

    ESTIMATE_AT_MOST = 2000

    def __init__(self, folder: str, sources: List[Dict], frame_stride: int = 5, max_frames: Optional[int] = None):
        from imagesr.progress import ProgressLine

        self.folder = folder
        self.sources, self.frame_stride, self.max_frames = sources, frame_stride, max_frames
        self.weights: Optional[Dict[str, float]] = None  # source id -> estimated megapixels, once known
        self.line = ProgressLine("patches", len(sources), "sources", tty_interval=1.0, log_interval=10.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._estimator = threading.Thread(target=self._estimate, daemon=True)

    def __enter__(self):
        self._estimator.start()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._show(final=True)

    def _estimate(self):
        from imagesr.sources import Source, estimated_megapixels

        step = max(1, -(-len(self.sources) // self.ESTIMATE_AT_MOST))
        known: Dict[str, float] = {}
        by_kind: Dict[str, List[float]] = defaultdict(list)
        for d in self.sources[::step]:
            if self._stop.is_set():
                return
            mp = estimated_megapixels(Source.from_json(d), self.frame_stride, self.max_frames)
            if mp is not None:
                known[d["source_id"]] = mp
                by_kind[d["kind"]].append(mp)
        if not known:
            return  # nothing measurable: the ETA stays by sources
        overall = sum(known.values()) / len(known)
        kind_mean = {k: sum(v) / len(v) for k, v in by_kind.items()}
        self.weights = {d["source_id"]: known.get(d["source_id"], kind_mean.get(d["kind"], overall))
                        for d in self.sources}

    def _read(self):
        finished, pairs, failed = [], 0, 0
        for name in os.listdir(self.folder):
            if name.startswith("."):
                continue
            try:
                with open(os.path.join(self.folder, name)) as f:
                    d = json.load(f)
            except (OSError, ValueError):
                continue
            finished.append(d["source"])
            pairs += d["pairs"]
            failed += d["status"] != "ok"
        return finished, pairs, failed

    def _show(self, final=False):
        finished, pairs, failed = self._read()
        weights = self.weights
        fraction = None
        if weights:
            fraction = sum(weights.get(s, 0.0) for s in finished) / max(sum(weights.values()), 1e-9)
        rate = pairs / self.line.elapsed()
        self.line.update(len(finished), f"({failed} failed)  pairs {pairs:,}  {rate:,.0f} pairs/s", final=final,
                         force=True, fraction=fraction)

    def _loop(self):
        while not self._stop.wait(self.line.interval):
            self._show()


def read_statuses(staging: str) -> List[Dict]:
    statuses = []
    for m in FileSystems.match([join(staging, "status", "status*")])[0].metadata_list:
        with FileSystems.open(m.path) as f:
            for line in f.read().decode().splitlines():
                if line.strip():
                    statuses.append(json.loads(line))
    return sorted(statuses, key=lambda s: s["source"])


def dataset_counts(statuses: List[Dict]) -> Dict:
    by = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    by_split = defaultdict(int)
    for st in statuses:
        by_split[st["split"]] += st["pairs"]
        for scale, n in st["pairs_by_scale"].items():
            if n:
                by[st["dataset"]][st["split"]][scale] += n
    return {
        "pairs": sum(st["pairs"] for st in statuses),
        "pairs_by_split": {s: by_split.get(s, 0) for s in SPLITS},
        "pairs_by_dataset_split_scale": {d: {sp: dict(v) for sp, v in sv.items()} for d, sv in sorted(by.items())},
        "sources": {
            "total": len(statuses),
            "ok": sum(st["status"] == "ok" for st in statuses),
            "failed": sum(st["status"] != "ok" for st in statuses),
        },
        "frames": sum(st["frames"] for st in statuses),
        "megapixels": round(sum(st["megapixels"] for st in statuses), 3),
    }


def write_text(path: str, text: str) -> None:
    with FileSystems.create(path, mime_type="application/json", compression_type="uncompressed") as f:
        f.write(text.encode())


def delete_tree(path: str) -> None:
    """Remove a folder (local) or every object under a prefix (gs://...; '/*' would not recurse)."""
    try:
        if "://" in path:
            files = [m.path for m in FileSystems.match([path.rstrip("/") + "/**"])[0].metadata_list]
            if files:
                FileSystems.delete(files)
        elif os.path.isdir(path):
            shutil.rmtree(path)
    except Exception:  # noqa: BLE001 - best effort cleanup of the staging area
        log.warning("could not remove %s", path, exc_info=True)


def finalize(output: str, staging: str, statuses: List[Dict], manifest_base: Dict, overwrite: bool) -> Dict:
    counts = dataset_counts(statuses)
    files = {}
    for split in SPLITS:
        staged = sorted(m.path for m in FileSystems.match([join(staging, f"Split-{split}", "*")])[0].metadata_list)
        final_dir = join(output, f"Split-{split}")
        if overwrite:
            old = FileSystems.match([join(final_dir, "*")])[0].metadata_list
            if old:
                FileSystems.delete([m.path for m in old])
        if "://" not in final_dir:
            os.makedirs(final_dir, exist_ok=True)
        dest = [join(final_dir, p.rsplit("/", 1)[-1]) for p in staged]
        if staged:
            FileSystems.rename(staged, dest)
        files[split] = [d.rsplit("/", 1)[-1] for d in dest]
    dead = [st for st in statuses if st["status"] != "ok"]
    write_text(join(output, DEAD_LETTER), "".join(
        json.dumps({"source": d["source"], "path": d["path"], "kind": d["kind"], "reason": d["reason"]}) + "\n" for d in dead))
    manifest = dict(manifest_base)
    manifest.update(counts=counts, files=files, dead_letter=DEAD_LETTER, inputs=statuses,
                    finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    write_text(join(output, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True))
    delete_tree(staging)
    return manifest


def beam_counters(result) -> Optional[Dict[str, int]]:
    """The job's Beam counters (namespace imagesr) as {name: committed value}; None if the
    runner reports no metrics."""
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # noqa: BLE001 - some runners do not support metrics queries
        return None
    out: Dict[str, int] = {}
    for c in counters:
        if c.key.metric.namespace == "imagesr":
            value = c.committed if c.committed is not None else c.attempted
            out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return dict(sorted(out.items()))


def produce_dataset(
    pipeline: beam.Pipeline,
    sources: List[Dict],
    patch_options: PatchOptions,
    output: str,
    manifest_base: Dict,
    frame_stride: int = 5,
    max_frames: Optional[int] = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Dict:
    """Run the patch pipeline on ``pipeline`` (not yet run) into ``output``; return the manifest.

    ``progress`` prints a progress line from the workers' marker files (local runners only).
    """
    run_id = manifest_base.get("run_id") or datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%S")
    staging = join(output, f".staging-{run_id}")
    progress_dir = tempfile.mkdtemp(prefix="imagesr-progress-") if progress else None
    try:
        build_pipeline(pipeline, sources, patch_options, staging, frame_stride, max_frames, progress_dir)
        if progress_dir:
            with MarkerProgress(progress_dir, sources, frame_stride, max_frames):
                result = pipeline.run()
                result.wait_until_finish()
        else:
            result = pipeline.run()
            result.wait_until_finish()
        statuses = read_statuses(staging)
        if len(statuses) != len(sources):
            raise PatchDatasetError(f"internal: {len(sources)} sources but {len(statuses)} statuses")
        if sum(st["pairs"] for st in statuses) == 0:
            reasons = "; ".join(f"{st['source']}: {st['reason']}" for st in statuses[:10])
            more = f" (and {len(statuses) - 10} more)" if len(statuses) > 10 else ""
            raise PatchDatasetError(f"no valid input: all {len(statuses)} inputs failed: {reasons}{more}")
        manifest_base = dict(manifest_base, beam_counters=beam_counters(result))
        return finalize(output, staging, statuses, manifest_base, overwrite)
    except BaseException:
        delete_tree(staging)
        raise
    finally:
        if progress_dir:
            shutil.rmtree(progress_dir, ignore_errors=True)


def count_records(output: str) -> Dict:
    """Count the records in a dataset's TFRecords themselves (local or gs://), per split,
    next to what its manifest says."""
    from imagesr.records import iter_tfrecord

    counts = {}
    for split in SPLITS:
        n = 0
        for m in FileSystems.match([join(output, f"Split-{split}", "*")])[0].metadata_list:
            with FileSystems.open(m.path) as f:  # gzip detected from the name
                n += sum(1 for _ in iter_tfrecord(f))
        counts[split] = n
    manifest = None
    if FileSystems.exists(join(output, MANIFEST)):
        with FileSystems.open(join(output, MANIFEST), compression_type="uncompressed") as f:
            manifest = json.loads(f.read().decode())["counts"]["pairs_by_split"]
    return {"output": output, "records": counts, "total": sum(counts.values()), "manifest": manifest,
            "match": manifest == counts if manifest is not None else None}


