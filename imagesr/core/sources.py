"""Inputs of the patch job: finding sources in folders, and turning one source into records.

A *source* is the unit that is decoded, split (train/eval) and reported on: one image, one
video file, or one frame sequence (a DAVIS ``JPEGImages/<res>/<sequence>`` folder). Every
file found under an input becomes exactly one source, so that the manifest can account for
each input: files that are neither image nor video become sources of kind ``invalid`` and
end in the dead-letter list with their reason.

Recognised layouts under an input folder:

* DAVIS 2017: ``.../JPEGImages/<480p|Full-Resolution>/<sequence>/00000.jpg`` - one source per
  sequence and resolution; the split key is the sequence, so resolutions never straddle.
* DIV2K: ``DIV2K_*_HR/0001.png``; files under ``*_LR_bicubic/X{s}/0001x{s}.png`` are the
  official LR images, used instead of re-degrading when asked (``official_lr``) and never
  sources of their own.
* anything else: each image and each video file is a source; the dataset name is the first
  sub-folder under the input (``train/T91/x.bmp`` -> ``T91``) or the input folder's name.

File access goes through :class:`imagesr.core.fs.FileSystem`: local paths and ``gs://`` by
default, any scheme Beam has inside the Beam job (``imagesr.components.beam.patch_transform``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import time
from dataclasses import asdict, dataclass, replace
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from imagesr.core import degrade, media
from imagesr.core.errors import UserError
from imagesr.core.fs import LOCAL_OR_GCS, FileSystem
from imagesr.core.fs import is_remote as fs_is_remote
from imagesr.core.patches import FrameStats, PatchOptions, sample_frame
from imagesr.core.records import encode_pair
from imagesr.core.resize import crop_to_multiple
from imagesr.core.scale import Scale

log = logging.getLogger(__name__)

_DAVIS_RE = re.compile(r"(?:^|/)JPEGImages/([^/]+)/([^/]+)/[^/]+$")
_DIV2K_LR_DIR_RE = re.compile(r"(?:^|/)[^/]*_LR_[^/]*/")
_HR_DIR_RE = re.compile(r"(?:^|/)([^/]*_HR)/([^/]+)$")


def join(base: str, *parts: str) -> str:
    return posixpath.join(base, *parts) if fs_is_remote(base) else os.path.join(base, *parts)


def relpath(path: str, base: str) -> str:
    if fs_is_remote(path):
        return path[len(base.rstrip("/")) + 1 :]
    return os.path.relpath(path, base).replace(os.sep, "/")


@dataclass(frozen=True)
class Source:
    kind: str  # image | video | frames | invalid
    dataset: str
    source_id: str  # unique, stable: dataset/relative path
    split_key: str  # what decides train/eval (DAVIS: the sequence, whatever its resolution)
    paths: Tuple[str, ...]  # image/video: one path; frames: the sorted frame files
    lr_paths: Tuple[Tuple[float, str], ...] = ()  # official LR per scale (DIV2K)
    reason: str = ""  # why an invalid source is invalid
    split: str = "train"  # set by assign_splits

    def to_json(self) -> Dict:
        d = asdict(self)
        d["paths"] = list(self.paths)
        d["lr_paths"] = [list(x) for x in self.lr_paths]
        return d

    @classmethod
    def from_json(cls, d: Dict) -> "Source":
        return cls(
            kind=d["kind"], dataset=d["dataset"], source_id=d["source_id"], split_key=d["split_key"],
            paths=tuple(d["paths"]), lr_paths=tuple((float(s), p) for s, p in d.get("lr_paths", [])),
            reason=d.get("reason", ""), split=d.get("split", "train"),
        )


def _official_lr(hr_path: str, rel: str, scales: Sequence[float], fs) -> Tuple[Tuple[float, str], ...]:
    m = _HR_DIR_RE.search(rel)
    if not m:
        return ()
    hr_dir_name, fname = m.group(1), m.group(2)
    stem, ext = os.path.splitext(fname)
    hr_dir = hr_path[: -len(fname) - 1]
    parent = hr_dir[: -len(hr_dir_name) - 1]
    lr_dir = join(parent, hr_dir_name[: -len("_HR")] + "_LR_bicubic")
    found = []
    for s in scales:
        if not float(s).is_integer():
            continue
        cand = join(lr_dir, f"X{int(s)}", f"{stem}x{int(s)}{ext}")
        if fs.exists(cand):
            found.append((float(s), cand))
    return tuple(found)


def discover(
    inputs: Sequence[str],
    fs: Optional[FileSystem] = None,
    official_lr: bool = False,
    scales: Sequence[float] = (2, 3, 4),
    duplicates: Optional[List[str]] = None,
) -> List[Source]:
    """All sources under ``inputs`` (files, folders or globs; local or via ``fs``).

    A file reached twice (the same folder given twice, a folder and a glob inside it, a link)
    is one source: its copies would weigh it double and could land on both sides of the
    split. Their paths are appended to ``duplicates`` when given.

    Raises ValueError for an input that matches nothing (a typo must not pass silently).
    """
    fs = fs or LOCAL_OR_GCS
    sources: List[Source] = []
    seen_ids: Dict[str, int] = {}
    seen_files = set()

    def add(src: Source):
        identity = tuple(p if fs.is_remote(p) else os.path.realpath(p) for p in src.paths)
        if identity in seen_files:
            if duplicates is not None:
                duplicates.append(src.paths[0])
            return
        seen_files.add(identity)
        n = seen_ids.get(src.source_id, 0)
        seen_ids[src.source_id] = n + 1
        if n:  # same relative name under two inputs: keep both, distinctly
            src = Source(src.kind, src.dataset, f"{src.source_id}#{n}", f"{src.split_key}#{n}", src.paths, src.lr_paths, src.reason)
        sources.append(src)

    for spec in inputs:
        spec = spec.rstrip("/") if len(spec) > 1 else spec
        if any(c in spec for c in "*?["):
            matches = fs.match(spec)
            if not matches:
                raise UserError(f"input {spec!r} matches no files")
            for m in matches:
                if not fs.isdir(m):
                    add(_file_source(m, os.path.basename(os.path.dirname(m)) or "input", os.path.basename(m)))
            continue
        if fs.isdir(spec):
            files = fs.list_files(spec)
            if not files:
                raise UserError(f"input folder {spec!r} is empty")
            base_name = posixpath.basename(spec.rstrip("/")) or "input"
            davis: Dict[Tuple[str, str], List[str]] = {}
            for f in files:
                rel = relpath(f, spec)
                if not fs.is_remote(f) and media.not_regular(f):  # a FIFO, a device: its own dead letter
                    add(_file_source(f, rel.split("/")[0] if "/" in rel else base_name, rel))
                    continue
                m = _DAVIS_RE.search(rel)
                if m and media.is_image_path(f):
                    davis.setdefault((m.group(1), m.group(2)), []).append(f)
                    continue
                if _DIV2K_LR_DIR_RE.search(rel) and media.is_image_path(f):
                    continue  # official LR images: inputs of their HR sources, not sources
                parts = rel.split("/")
                dataset = parts[0] if len(parts) > 1 else base_name
                src = _file_source(f, dataset, rel)
                if official_lr and src.kind == "image":
                    src = Source(src.kind, src.dataset, src.source_id, src.split_key, src.paths, _official_lr(f, rel, scales, fs))
                add(src)
            for (res, seq), frames in sorted(davis.items()):
                add(Source("frames", "davis", f"davis/{res}/{seq}", f"davis/{seq}", tuple(sorted(frames))))
            continue
        if fs.exists(spec):
            add(_file_source(spec, os.path.basename(os.path.dirname(spec)) or "input", os.path.basename(spec)))
            continue
        raise UserError(f"input {spec!r} does not exist")
    return sources


def _file_source(path: str, dataset: str, rel: str) -> Source:
    sid = f"{dataset}/{rel.split('/', 1)[1] if rel.startswith(dataset + '/') else rel}"
    special = None if fs_is_remote(path) else media.not_regular(path)
    if special:  # never opened: a FIFO blocks, a device (a link to /dev/zero) never ends
        return Source("invalid", dataset, sid, sid, (path,), reason=special)
    if media.is_image_path(path):
        return Source("image", dataset, sid, sid, (path,))
    if media.is_video_path(path):
        return Source("video", dataset, sid, sid, (path,))
    return Source("invalid", dataset, sid, sid, (path,), reason="not an image or video file (unknown extension)")


def _key_hash(split_key: str) -> float:
    return int.from_bytes(hashlib.md5(split_key.encode()).digest()[:8], "little") / 2.0**64


def assign_splits(sources: Sequence[Source], eval_fraction: float) -> List[Source]:
    """Set each source's split by the hash of its split key (never by source, so a DAVIS
    sequence in two resolutions stays on one side). With a positive ``eval_fraction`` and at
    least two valid split keys, the eval split is never left empty: the key with the
    smallest hash goes to eval. Deterministic for a given set of inputs."""
    keys = sorted({s.split_key for s in sources if s.kind != "invalid"}, key=_key_hash)
    eval_keys = {k for k in keys if _key_hash(k) < eval_fraction}
    if eval_fraction > 0 and not eval_keys and len(keys) >= 2:
        eval_keys = {keys[0]}
    return [replace(s, split="eval" if s.split_key in eval_keys else "train") for s in sources]


@dataclass
class SourceOutcome:
    """What one source produced: its records (all in one split) and its manifest entry."""

    split: str
    records: List[bytes]
    status: Dict


def _read_image(fs, path: str, max_megapixels: float):
    """One image through ``fs`` (a regular file, read to its size), its header checked against
    the pixel budget before its pixels are decoded."""
    with fs.open(path) as f:
        data = f.read()
    return media.decode_image(data, name=path, max_megapixels=max_megapixels)


def _iter_source_frames(src: Source, fs, frame_stride: int, max_frames: Optional[int], max_megapixels: float):
    if src.kind == "image":
        yield 0, _read_image(fs, src.paths[0], max_megapixels)
    elif src.kind == "frames":
        chosen = list(enumerate(src.paths))[::frame_stride]
        if max_frames:
            chosen = chosen[:max_frames]
        for i, p in chosen:
            yield i, _read_image(fs, p, max_megapixels)
    elif src.kind == "video":
        with fs.local_copy(src.paths[0]) as local:
            frames = media.iter_video_frames(local, stride=frame_stride, limit=max_frames, max_megapixels=max_megapixels)
            for k, frame in enumerate(frames):
                yield k * frame_stride, frame
    else:
        raise media.MediaError(src.paths[0], src.reason or f"unknown source kind {src.kind}")


def estimated_megapixels(src: Source, frame_stride: int = 5, max_frames: Optional[int] = None) -> Optional[float]:
    """The megapixels ``process_source`` will decode from a local source, from headers only
    (image headers, the first frame of a sequence, a video's probe), so that a progress line
    can weigh a 2K image, a DAVIS sequence and a long video by their work rather than count
    them as one source each. None when it cannot tell cheaply (remote, invalid, unreadable)."""
    if src.kind == "invalid" or not src.paths or fs_is_remote(src.paths[0]):
        return None
    try:
        if src.kind == "image":
            w, h = media.image_size(src.paths[0])
            return w * h / 1e6
        if src.kind == "frames":
            w, h, count = *media.image_size(src.paths[0]), len(src.paths)
        elif src.kind == "video":
            info = media.probe_video(src.paths[0])
            if info.frame_count is None:
                return None
            w, h, count = info.width, info.height, info.frame_count
        else:
            return None
        taken = -(-count // frame_stride)  # frames 0, stride, 2 * stride, ...
        return min(taken, max_frames or taken) * w * h / 1e6
    except (media.MediaError, OSError):
        return None


class SourceRun:
    """One source's patch pairs, frame by frame, and its manifest entry once they are read.

    ``records()`` yields each decoded frame's records (all in ``src.split``) as soon as the
    frame is cut, so memory holds one frame's records, never a whole video's. It never raises
    for bad input (a :class:`~imagesr.core.errors.UserError` or an OS error reading the file):
    ``status`` then says ``failed`` (nothing was yielded) or ``partial`` (the frames decoded
    before the failure were yielded, and counted: a video cut short keeps its good frames),
    with the reason. Its counts are always those of the records yielded.
    """

    def __init__(self, src: Source, options: PatchOptions, frame_stride: int = 5, max_frames: Optional[int] = None,
                 fs: Optional[FileSystem] = None):
        self.src, self.options, self.frame_stride, self.max_frames = src, options, frame_stride, max_frames
        self.fs = fs or LOCAL_OR_GCS
        self.split = src.split
        self.degradation = degrade.draw(options.degradation, options.seed, src.source_id, src.kind) \
            if src.kind != "invalid" else degrade.CLEAN
        self.status = {
            "source": src.source_id, "dataset": src.dataset, "kind": src.kind,
            "path": src.paths[0] if src.paths else "", "split": src.split, "status": "ok", "reason": "", "frames": 0,
            "pairs": 0, "pairs_by_scale": {str(s): 0 for s in options.scales}, "flat_patches": 0,
            "frames_too_small": 0, "megapixels": 0.0,
            "degradation": self.degradation.name if not src.lr_paths else "clean",
        }

    def _frames_with_lr(self, lr_official):
        """(index, HR frame, {scale: LR frame} or None, degradation name): the clean path lets
        the patch sampler degrade with the MATLAB bicubic (or use the dataset's official LR);
        a realistic source is degraded here, :data:`DEGRADE_CHUNK` frames at a time, so that
        a video codec compresses its LR frames as a sequence."""
        frames = _iter_source_frames(self.src, self.fs, self.frame_stride, self.max_frames, self.options.max_megapixels)
        if self.degradation == degrade.CLEAN or lr_official:
            for idx, frame in frames:
                yield idx, frame, lr_official or None, "clean"
            return
        name = self.degradation.name
        for c, chunk in enumerate(_chunks(frames, DEGRADE_CHUNK)):
            lr = {}
            for s in self.options.scales:
                scale = Scale(s)
                hrs = [crop_to_multiple(f, scale) for _, f in chunk]
                h, w = hrs[0].shape[:2]
                if h < self.options.patch_size or w < self.options.patch_size:
                    continue  # the sampler counts the frame as too small
                seed = int.from_bytes(hashlib.sha256(f"{self.options.seed}/{self.src.source_id}/{c}/{s}".encode())
                                      .digest()[:8], "little")
                lr[s] = degrade.apply(hrs, (scale.lr_side(h), scale.lr_side(w)), self.degradation, seed)
            for k, (idx, frame) in enumerate(chunk):
                yield idx, frame, {s: frames_lr[k] for s, frames_lr in lr.items()} or None, name

    def records(self) -> Iterator[List[bytes]]:
        src, options, status = self.src, self.options, self.status
        t0 = time.perf_counter()
        by_scale = status["pairs_by_scale"]
        frame = None
        try:
            lr_frames = {}
            for s, p in src.lr_paths:
                lr_frames[s if not float(s).is_integer() else int(s)] = _read_image(self.fs, p, options.max_megapixels)
            for idx, frame, lr, degradation in self._frames_with_lr(lr_frames):
                status["frames"] += 1
                status["megapixels"] += frame.shape[0] * frame.shape[1] / 1e6
                stats: Dict[float, FrameStats] = {}
                records = [encode_pair(pair) for pair in
                           sample_frame(frame, options, src.dataset, src.source_id, idx, stats, lr, degradation)]
                for s, st in stats.items():
                    by_scale[str(s)] += st.kept
                    status["flat_patches"] += st.flat
                if all(st.candidates == 0 for st in stats.values()):
                    status["frames_too_small"] += 1
                if records:
                    status["pairs"] += len(records)
                    yield records
            if not status["pairs"]:
                if status["frames"] and status["frames_too_small"] == status["frames"]:
                    h, w = frame.shape[:2]
                    raise media.MediaError(src.paths[0], f"smaller than a patch ({w}x{h} < {options.patch_size} px "
                                                         "after cropping)")
                if status["frames"]:
                    raise media.MediaError(src.paths[0], f"no patch passed the flatness filter (min_std={options.min_std})")
                raise media.MediaError(src.paths[0], "no frames decoded")
        except (UserError, OSError) as e:  # bad input; a bug (any other exception) fails the job
            status.update(status="partial" if status["pairs"] else "failed", reason=str(e))
        finally:
            status["megapixels"] = round(status["megapixels"], 4)
            status["seconds"] = round(time.perf_counter() - t0, 3)


DEGRADE_CHUNK = 8  # frames of a sequence degraded (and compressed) together


def _chunks(items, n: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def process_source(
    src: Source,
    options: PatchOptions,
    frame_stride: int = 5,
    max_frames: Optional[int] = None,
    fs: Optional[FileSystem] = None,
) -> SourceOutcome:
    """All of one source's records at once (:class:`SourceRun` holds them frame by frame; this
    is for callers that want a list, such as small datasets and tests)."""
    run = SourceRun(src, options, frame_stride, max_frames, fs)
    records = [r for frame_records in run.records() for r in frame_records]
    return SourceOutcome(split=run.split, records=records, status=run.status)
