"""Writing a patch-pair dataset (local or gs://): the Beam pipeline, staging, the manifest and
dead-letter list (the layout itself: :mod:`imagesr.core.dataset`). Shared by the Beam job
(``imagesr.pipelines.patch_job``) and the TFX patch ExampleGen (``imagesr.components.tfx.patch_example_gen``).

Everything is first written under ``OUTPUT/.staging-<run>/`` and moved into place only when
the run succeeded and produced records; ``manifest.json`` is written last, so a folder
without it is not a finished dataset. A run in which no input is valid fails with the
reasons and leaves nothing behind. A local run holds the output's lock
(:class:`imagesr.core.outputs.OutputLock`) and refuses a folder that holds anything but an
imagesr dataset; an unfinished one (records without a manifest) is replaced only with
``--overwrite``, never merged into. Local runs keep their temporary files (Beam's, the
progress markers) inside the staging folder, so a killed run's leftovers are all in one
place, removed by the next run into that output.
"""

from __future__ import annotations

import contextlib
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

from imagesr.components.beam.patch_transform import (
    STATUS_TAG,
    MediaToPatchPairs,
    write_split,
)
from imagesr.core import fs, strict_json
from imagesr.core.dataset import DEAD_LETTER, ENTRIES, MANIFEST, RECORD_PREFIX, SPLITS, split_dir
from imagesr.core.errors import UserError, disk_full
from imagesr.core.outputs import OutputBusy, OutputLock, temporary_files_in
from imagesr.core.patches import PatchOptions
from imagesr.core.sources import join

log = logging.getLogger(__name__)

class PatchDatasetError(UserError):
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
        write_split(out[split], join(split_dir(staging, split), RECORD_PREFIX), split.title())
    (
        out[STATUS_TAG]
        | "StatusToJson" >> beam.Map(lambda st: json.dumps(st, sort_keys=True))
        | "WriteStatuses" >> beam.io.WriteToText(join(staging, "status", "status"), file_name_suffix=".jsonl")
    )
    return out


class MarkerProgress:
    """Local runs: sources done, pairs written and their rate, read from the workers' marker
    files by a background thread, shown with imagesr.core.progress.ProgressLine.

    The ETA weighs each source by the megapixels it will decode (estimated from headers in
    the background, :func:`imagesr.core.sources.estimated_megapixels`; at most ``ESTIMATE_AT_MOST``
    sources, the rest take their kind's mean), so a long video is not counted like one image."""

    ESTIMATE_AT_MOST = 2000

    def __init__(self, folder: str, sources: List[Dict], frame_stride: int = 5, max_frames: Optional[int] = None):
        from imagesr.core.progress import ProgressLine

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
        from imagesr.core.sources import Source, estimated_megapixels

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


def _sum_by(statuses: List[Dict], key: str) -> Dict[str, int]:
    out: Dict[str, int] = defaultdict(int)
    for st in statuses:
        if st["pairs"]:
            out[st.get(key, "clean")] += st["pairs"]
    return out


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
            "partial": sum(st["status"] == "partial" for st in statuses),  # records up to a failure: kept, counted
            "failed": sum(st["status"] == "failed" for st in statuses),
        },
        # the mix of degradations (imagesr.core.degrade): pairs per degradation name
        "pairs_by_degradation": dict(sorted(_sum_by(statuses, "degradation").items())),
        "pairs_by_degradation_family": _by_family(_sum_by(statuses, "degradation")),
        "frames": sum(st["frames"] for st in statuses),
        "megapixels": round(sum(st["megapixels"] for st in statuses), 3),
    }


def _by_family(by_name: Dict[str, int]) -> Dict[str, int]:
    """Pairs per degradation family (``Degradation.family``: ``h264-crf27+lanczos`` -> ``h264``)."""
    from imagesr.core.degrade import parse

    out: Dict[str, int] = {}
    for name, n in by_name.items():
        family = parse(name).family
        out[family] = out.get(family, 0) + n
    return dict(sorted(out.items()))


def write_text(path: str, text: str) -> None:
    with FileSystems.create(path, mime_type="application/json", compression_type="uncompressed") as f:
        f.write(text.encode())


def delete_tree(path: str) -> None:
    """Remove a folder (local) or every object under a prefix (gs://...; '/*' would not recurse)."""
    try:
        if fs.is_remote(path):
            files = [m.path for m in FileSystems.match([path.rstrip("/") + "/**"])[0].metadata_list]
            if files:
                FileSystems.delete(files)
        elif os.path.isdir(path):
            shutil.rmtree(path)
    except Exception:  # noqa: BLE001 - best effort cleanup of the staging area
        log.warning("could not remove %s", path, exc_info=True)


STAGING_PREFIX = ".staging-"


def _entries(output: str) -> List[str]:
    """The top-level names in ``output`` (a local folder or a gs:// prefix)."""
    if not fs.is_remote(output):
        return sorted(os.listdir(output)) if os.path.isdir(output) else []
    base = output.rstrip("/")
    paths = [m.path for m in FileSystems.match([base + "/**"])[0].metadata_list]
    return sorted({p[len(base) + 1:].split("/")[0] for p in paths if p.startswith(base + "/")})


def check_output(output: str, overwrite: bool) -> None:
    """Refuse an output that is not new, empty or an imagesr dataset; a finished or an
    unfinished dataset only with ``overwrite``. Locally (where the caller holds the lock)
    staging folders of killed runs are removed first."""
    entries = _entries(output)
    for name in [e for e in entries if e.startswith(STAGING_PREFIX)]:
        if not fs.is_remote(output):
            log.warning("removing %s, left by an interrupted run", join(output, name))
            delete_tree(join(output, name))
    rest = [e for e in entries if not e.startswith(STAGING_PREFIX)]
    foreign = [e for e in rest if e not in ENTRIES]
    if foreign:
        raise PatchDatasetError(f"--output {output} holds files that are not part of an imagesr dataset "
                                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}): choose a new or "
                                "empty folder")
    if MANIFEST in rest and not overwrite:
        raise PatchDatasetError(f"{output} already holds a finished dataset ({MANIFEST}); use another --output or "
                                "--overwrite")
    if rest and MANIFEST not in rest and not overwrite:
        raise PatchDatasetError(f"{output} holds an unfinished dataset (record files but no {MANIFEST}, e.g. from an "
                                "interrupted run); remove it, or pass --overwrite to replace it")


@contextlib.contextmanager
def claim_output(output: str, overwrite: bool):
    """Hold ``output`` for one run: a local folder is created if needed and locked (a second
    run into it is refused), its contents checked (:func:`check_output`); a folder this run
    created is removed again if the run fails and leaves it empty."""
    lock, created = None, False
    if not fs.is_remote(output):
        if os.path.exists(output) and not os.path.isdir(output):
            raise PatchDatasetError(f"--output {output}: exists and is not a folder")
        parent = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(parent):
            raise PatchDatasetError(f"--output {output}: its folder {parent} does not exist")
        created = not os.path.exists(output)
        try:
            os.makedirs(output, exist_ok=True)
            lock = OutputLock(output).acquire()
        except OutputBusy as e:
            raise PatchDatasetError(str(e)) from None
        except OSError as e:
            raise PatchDatasetError(f"cannot write {output}: {e.strerror or e}") from None
    try:
        check_output(output, overwrite)
        yield
    except BaseException:
        if created and os.path.isdir(output) and not os.listdir(output):
            os.rmdir(output)
        raise
    finally:
        if lock is not None:
            lock.release()


def finalize(output: str, staging: str, statuses: List[Dict], manifest_base: Dict, overwrite: bool) -> Dict:
    counts = dataset_counts(statuses)
    files = {}
    if overwrite and FileSystems.exists(join(output, MANIFEST)):
        FileSystems.delete([join(output, MANIFEST)])  # unfinished (so never read) while it is replaced
    for split in SPLITS:
        staged = sorted(m.path for m in FileSystems.match([join(split_dir(staging, split), "*")])[0].metadata_list)
        final_dir = split_dir(output, split)
        if overwrite:
            old = FileSystems.match([join(final_dir, "*")])[0].metadata_list
            if old:
                FileSystems.delete([m.path for m in old])
        if not fs.is_remote(final_dir):
            os.makedirs(final_dir, exist_ok=True)
        dest = [join(final_dir, p.rsplit("/", 1)[-1]) for p in staged]
        if staged:
            FileSystems.rename(staged, dest)
        files[split] = [d.rsplit("/", 1)[-1] for d in dest]
    dead = [st for st in statuses if st["status"] != "ok"]
    write_text(join(output, DEAD_LETTER), "".join(
        json.dumps({"source": d["source"], "path": d["path"], "kind": d["kind"], "status": d["status"],
                    "pairs_kept": d["pairs"], "reason": d["reason"]}) + "\n" for d in dead))
    manifest = dict(manifest_base)
    manifest.update(counts=counts, files=files, dead_letter=DEAD_LETTER, inputs=statuses,
                    finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    write_text(join(output, MANIFEST), strict_json.dumps(manifest, indent=1, sort_keys=True))
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
    pipeline,
    sources: List[Dict],
    patch_options: PatchOptions,
    output: str,
    manifest_base: Dict,
    frame_stride: int = 5,
    max_frames: Optional[int] = None,
    overwrite: bool = False,
    progress: bool = False,
    require_eval: bool = False,
) -> Dict:
    """Run the patch pipeline on ``pipeline`` (not yet run; or a function that makes it, so that
    even its construction's temporary folder lands in the staging area) into ``output``;
    return the manifest.

    ``progress`` prints a progress line from the workers' marker files (local runners only).
    A run whose train split got no pairs fails (writing nothing): such a dataset trains
    nothing. ``require_eval``: so does one whose eval split got none.
    """
    run_id = manifest_base.get("run_id") or datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%S")
    staging = join(output, f"{STAGING_PREFIX}{run_id}")
    local = not fs.is_remote(output)
    progress_dir = None
    if progress:
        progress_dir = join(staging, "progress") if local else tempfile.mkdtemp(prefix="imagesr-progress-")
        os.makedirs(progress_dir, exist_ok=True)
    # Local runs keep Beam's and the workers' temporary files inside the staging folder.
    tmp_context = temporary_files_in(join(staging, "tmp")) if local else contextlib.nullcontext()
    try:
        with tmp_context:
            return _run_and_finalize(pipeline, sources, patch_options, output, staging, manifest_base, frame_stride,
                                     max_frames, overwrite, progress_dir, require_eval)
    except BaseException as e:
        delete_tree(staging)
        if isinstance(e, Exception) and not isinstance(e, UserError) and disk_full(e):  # a worker's, or ours
            raise PatchDatasetError(f"cannot write {output}: {disk_full(e)} (the staged records were removed)") from None
        raise
    finally:
        if progress_dir and not local:
            shutil.rmtree(progress_dir, ignore_errors=True)


def _run_and_finalize(pipeline, sources, patch_options, output, staging, manifest_base, frame_stride, max_frames,
                      overwrite, progress_dir, require_eval) -> Dict:
    if callable(pipeline) and not isinstance(pipeline, beam.Pipeline):
        pipeline = pipeline()
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
    for split, needed, remedy in (("train", True, "add inputs, or lower --eval-fraction"),
                                  ("eval", require_eval, "add inputs, or pass --eval-fraction 0 for a dataset without one")):
        if needed and not any(st["pairs"] for st in statuses if st["split"] == split):
            failed = [f"{st['source']}: {st['reason']}" for st in statuses if st["split"] == split and st["reason"]]
            why = f" (its sources failed: {'; '.join(failed[:3])})" if failed else ""
            raise PatchDatasetError(f"the {split} split got no pairs{why}; {remedy}")
    manifest_base = dict(manifest_base, beam_counters=beam_counters(result))
    return finalize(output, staging, statuses, manifest_base, overwrite)
