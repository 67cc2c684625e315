"""The Beam transform from media sources to patch-pair records, shared by the Beam job
(``imagesr.pipelines.patch_job``) and the TFX patch ExampleGen.

One element per *source* flows through the expensive step (decode, degrade, cut, encode),
never one per patch: per-element overhead in Beam is tens of microseconds, so the per-patch
work stays in the vectorised core (``imagesr.core.sources.process_source``). The outputs are the
serialized records tagged by split, and one status dict per source for the manifest and the
dead-letter list. Files are read through Beam's FileSystems, so local paths and ``gs://``
work alike.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from typing import Dict, Iterator, List, Optional

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from imagesr.components.beam.beam_internals import use_fast_crc32c, use_gzip_level
from imagesr.core import fs
from imagesr.core.dataset import SPLITS
from imagesr.core.errors import UserError
from imagesr.core.patches import PatchOptions
from imagesr.core.sources import Source, SourceRun

log = logging.getLogger(__name__)

STATUS_TAG = "status"


class BeamFS:
    """:class:`imagesr.core.fs.FileSystem` over Beam's FileSystems (local, gs:// and any scheme
    the Beam installation has)."""

    is_remote = staticmethod(fs.is_remote)

    def isdir(self, path: str) -> bool:
        if not fs.is_remote(path):
            return os.path.isdir(path)
        # Object stores have no folders: a prefix with objects under it is one.
        return bool(self._match(path.rstrip("/") + "/**", limit=1))

    def exists(self, path: str) -> bool:
        try:
            return FileSystems.exists(path)
        except BeamIOError as e:  # a scheme this Beam installation cannot serve (s3:// without boto3, ...)
            causes = list((e.exception_details or {}).values())
            raise UserError(f"{path}: Beam cannot read it ({causes[0] if causes else e})") from None

    def _match(self, pattern: str, limit: Optional[int] = None) -> List[str]:
        try:
            result = FileSystems.match([pattern], limits=[limit] if limit else None)[0]
        except Exception:  # noqa: BLE001 - Beam raises BeamIOError for "no match" on some filesystems
            return []
        return sorted(m.path for m in result.metadata_list)

    def list_files(self, folder: str) -> List[str]:
        if not fs.is_remote(folder):
            return fs.list_files(folder)
        return self._match(folder.rstrip("/") + "/**")

    def match(self, pattern: str) -> List[str]:
        return self._match(pattern)

    def open(self, path: str):
        if not fs.is_remote(path):
            return fs.open_binary(path)  # a regular file only: a FIFO or a device would block or never end
        return FileSystems.open(path, compression_type="uncompressed")

    @contextlib.contextmanager
    def local_copy(self, path: str) -> Iterator[str]:
        """ffmpeg needs a seekable local file (mp4 indexes are often at the end)."""
        if not fs.is_remote(path):
            yield path
            return
        tmpdir = tempfile.mkdtemp(prefix="imagesr-")
        local = os.path.join(tmpdir, os.path.basename(path))
        try:
            with FileSystems.open(path, compression_type="uncompressed") as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, 8 << 20)
            yield local
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def configure_gcs_emulator() -> None:
    """With STORAGE_EMULATOR_HOST set (a local GCS-protocol server such as
    gcp-storage-emulator), connect to it anonymously: Beam would otherwise look for Google
    credentials with retries and back-off (about 30 s) before falling back to anonymous."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from apache_beam.internal.gcp import auth

        with auth._Credentials._credentials_lock:
            auth._Credentials._credentials_init = True
            auth._Credentials._credentials = None


configure_gcs_emulator()  # at import: covers the driver and every worker process unpickling this module


def quiet_worker_stderr() -> None:
    """In a local worker process started by a command run without -v (``IMAGESR_QUIET_WORKERS``,
    set by :func:`imagesr.core.logs.configure_logging`): its stderr goes to /dev/null. Beam's worker
    prints a failed bundle's traceback there, and the driver receives the same error: it says
    one line for a full disk and shows the whole traceback for a bug."""
    from imagesr.core.logs import QUIET_WORKERS

    if os.environ.get(QUIET_WORKERS) and not getattr(quiet_worker_stderr, "done", False):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        quiet_worker_stderr.done = True


class ProcessSourceFn(beam.DoFn):
    """Source (JSON dict) -> ('train'|'eval', [one frame's record bytes]) per frame, then its
    status on STATUS_TAG."""

    def __init__(self, options: Dict, frame_stride: int, max_frames: Optional[int], progress_dir: Optional[str] = None):
        self._options = options
        self._frame_stride = frame_stride
        self._max_frames = max_frames
        self._progress_dir = progress_dir
        self.sources = {s: Metrics.counter("imagesr", f"sources_{s}") for s in ("ok", "partial", "failed")}
        self.frames = Metrics.counter("imagesr", "frames")

    def setup(self):
        quiet_worker_stderr()
        self._patch_options = PatchOptions(**self._options)
        self._fs = BeamFS()
        use_fast_crc32c()
        use_gzip_level()

    def process(self, source_json: Dict):
        run = SourceRun(Source.from_json(source_json), self._patch_options, self._frame_stride, self._max_frames,
                        self._fs)
        # Frame by frame: a long video's records leave the worker as they are cut (the writes
        # are fused with this step), so memory holds one frame's records.
        for records in run.records():
            yield run.split, records
        st = run.status
        self.sources[st["status"]].inc()
        self.frames.inc(st["frames"])
        Metrics.counter("imagesr", f"pairs_{run.split}").inc(st["pairs"])
        for scale, n in st["pairs_by_scale"].items():
            if n:
                Metrics.counter("imagesr", f"pairs_{st['dataset']}_{run.split}_x{scale}").inc(n)
        if self._progress_dir:
            _write_progress(self._progress_dir, st)
        yield beam.pvalue.TaggedOutput(STATUS_TAG, st)


def _write_progress(folder: str, status: Dict) -> None:
    """One tiny file per finished source: the local driver counts them for its progress bar."""
    import hashlib

    name = hashlib.md5(status["source"].encode()).hexdigest() + ".json"
    tmp = os.path.join(folder, "." + name)
    with open(tmp, "w") as f:
        json.dump({"source": status["source"], "pairs": status["pairs"], "megapixels": status["megapixels"],
                   "status": status["status"]}, f)
    os.replace(tmp, os.path.join(folder, name))


class MediaToPatchPairs(beam.PTransform):
    """PCollection[source JSON, split assigned] -> {'train': records, 'eval': records, 'status': dicts}."""

    def __init__(self, options: PatchOptions, frame_stride: int = 5, max_frames: Optional[int] = None,
                 progress_dir: Optional[str] = None):
        super().__init__()
        self._fn = ProcessSourceFn(options.to_json(), frame_stride, max_frames, progress_dir)

    def expand(self, sources):
        results = (
            sources
            | "SpreadSources" >> beam.Reshuffle()
            | "DegradeAndCut" >> beam.ParDo(self._fn).with_outputs(STATUS_TAG, main="records")
        )
        out = {STATUS_TAG: results[STATUS_TAG]}
        for split in SPLITS:
            out[split] = (
                results.records
                | f"Select{split.title()}" >> beam.Filter(lambda kv, s=split: kv[0] == s)
                | f"Flatten{split.title()}" >> beam.FlatMap(lambda kv: kv[1])
            )
        return out


def write_split(records, prefix: str, label: str):
    """Sharded, gzip TFRecords named as TFX ExampleGen names them (data_tfrecord-*.gz)."""
    return records | f"Write{label}" >> beam.io.WriteToTFRecord(
        prefix, file_name_suffix=".gz", compression_type=beam.io.filesystem.CompressionTypes.GZIP
    )
