"""``--resume``: a file-to-file upscale written in segments that a rerun continues.

Segments start on the input's keyframes (at least ``segment_seconds`` apart), so a rerun seeks
straight to the first missing one and decodes from there frame-exact. Each segment is encoded
on its own into ``.NAME.imagesr-resume/`` beside the output (an MP4 whose clock is a multiple
of the frame rate, so frame times stay exact) and renamed into place only when complete; the
folder's ``job.json`` says which input, model and settings the segments belong to, and a
rerun with anything different is refused rather than mixed. When the last segment is done the
segments are joined without re-encoding (concat), the input's other streams are carried as in
a plain run, the output is renamed into place and the folder removed. The result has the same
frames, frame times and duration as a run that was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import time
from fractions import Fraction
from typing import List, Optional

import numpy as np

from imagesr.core.media import MediaError, VideoWriter, ffmpeg_binary, keyframe_times
from imagesr.core.media.files import _stderr_tail
from imagesr.core.outputs import claim_partial, remove_quietly
from imagesr.core.progress import ProgressLine
from imagesr.upscale.options import UpscaleError

STATE_VERSION = 1


def state_dir(out_path: str) -> str:
    return os.path.join(os.path.dirname(out_path), f".{os.path.basename(out_path)}.imagesr-resume")


def segment_starts(keyframes: List[float], start: float, fps: Fraction, segment_seconds: float) -> List[int]:
    """First frame of every segment: frame 0, then the first keyframe at least
    ``segment_seconds`` after the previous start."""
    frames = sorted({int(round((t - start) * fps)) for t in keyframes} - {0})
    minimum = max(1, math.ceil(segment_seconds * fps))
    starts = [0]
    for k in frames:
        if k > 0 and k - starts[-1] >= minimum:
            starts.append(k)
    return starts


def _model_id(upscaler) -> str:
    model = getattr(upscaler, "model", None)
    if model is None:
        return upscaler.kind
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return f"{upscaler.kind}:{digest.hexdigest()[:16]}"


def _timescale(fps: Fraction) -> int:
    """An MP4 clock on which every frame time of ``fps`` is a whole tick, at least 90 kHz."""
    return fps.numerator * max(1, math.ceil(90000 / fps.numerator))


class SegmentSink:
    """Frames -> the segment files of one job, from segment ``first`` on; a finished segment
    is renamed into place at once, an aborted one removed (the finished ones stay)."""

    timed = True

    def __init__(self, folder: str, starts: List[int], first: int, size, fps: Fraction, video: dict, planar):
        self.folder, self.starts, self.k, self.size, self.fps = folder, starts, first, size, fps
        self.frame = starts[first]
        self.writer_args = dict(codec=video["codec"], crf=video["crf"], preset=video["preset"],
                                pix_fmt=video["pix_fmt"], colour=video["colour"], deep=video["deep"], planar=planar,
                                codec_args=("-video_track_timescale", str(_timescale(fps))))
        self.writer: Optional[VideoWriter] = None
        self.notes: List[str] = []

    def path(self, k: int) -> str:
        return os.path.join(self.folder, f"seg-{k:05d}.mp4")

    def write(self, frames) -> None:
        for f in frames:
            if self.k + 1 < len(self.starts) and self.frame == self.starts[self.k + 1]:
                self.writer.close()
                self.k += 1
                self.writer = None
            if self.writer is None:
                self.writer = VideoWriter(self.path(self.k), self.size, self.fps, **self.writer_args)
            self.writer.write(f)
            self.frame += 1

    def commit(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def run_resumable(source, out_path: str, processor, upscaler, video: dict, batch: int, segment_seconds: float,
                  progress, in_size, out_size, planar_in):
    from imagesr.upscale.pipeline import UpscaleResult, _align, _run

    info = source.info
    if info.variable_rate:
        raise UpscaleError(f"--resume needs a constant frame rate; {source.path} has a variable one "
                           "(run without --resume)")
    fps = source.fps
    start = info.start_time or 0.0
    st = os.stat(source.path)
    job = {"version": STATE_VERSION, "input": os.path.abspath(source.path), "input_bytes": st.st_size,
           "input_mtime_ns": st.st_mtime_ns, "model": _model_id(upscaler), "size": list(out_size),
           "codec": video["codec"], "crf": video["crf"], "preset": video["preset"], "pix_fmt": video["pix_fmt"],
           "deep": video["deep"], "fps": str(fps), "segment_seconds": segment_seconds}
    folder = state_dir(out_path)
    job_file = os.path.join(folder, "job.json")
    if os.path.isfile(job_file):
        with open(job_file) as f:
            saved = json.load(f)
        starts = saved.pop("starts", None)
        if saved != job or not starts:
            raise UpscaleError(f"{folder} holds the segments of another job (other input, model or settings); "
                               "remove it, or rerun the command that made it")
    else:
        starts = segment_starts(list(keyframe_times(source.path, info.stream_index)), start, fps, segment_seconds)
        os.makedirs(folder, exist_ok=True)
        tmp = claim_partial(job_file)
        with open(tmp, "w") as f:
            json.dump(dict(job, starts=starts), f)
        os.replace(tmp, job_file)
    for name in os.listdir(folder):
        if ".partial-" in name:
            remove_quietly(os.path.join(folder, name))  # a segment a killed run left unfinished
    done = [k for k in range(len(starts)) if os.path.isfile(os.path.join(folder, f"seg-{k:05d}.mp4"))]
    first = next((k for k in range(len(starts)) if k not in done), None)
    t0 = time.perf_counter()
    stats = {"slots": 0, "dropped": 0, "latency": None, "stopped": False}
    if first is not None:
        sink = SegmentSink(folder, starts, first, out_size, fps, video, processor.planar and processor.planar[1])
        seek = None
        if starts[first]:
            seek = start - (info.container_start or 0.0) + (starts[first] - 0.5) / float(fps)
        decoder = source.decoder(planar_in, seek=seek)
        meter = ProgressLine("upscale", source.total, "frames", progress)
        try:
            stats = _run(iter(decoder), processor, sink, batch, meter, source.path, in_size, planar_in,
                         decoder=decoder, offset=starts[first])
            sink.commit()
        except BaseException:
            sink.abort()
            raise
    offset = _align(info, video["streams"])
    _join(folder, len(starts), out_path, video, offset)
    remove_quietly(folder)
    total = (starts[first] if first is not None else 0) + stats["slots"]
    return UpscaleResult(
        output=out_path, frames=total, seconds=time.perf_counter() - t0, model=upscaler.name, kind=upscaler.kind,
        parameters=upscaler.parameters, input_size=tuple(in_size), output_size=tuple(out_size),
        audio=video["streams"].summary() if video["streams"] is not None else None,
        planar=processor.planar is not None, resumed_segments=len(done))


def _join(folder: str, count: int, out_path: str, video: dict, offset: float) -> None:
    """The segments, one after the other without re-encoding, with the input's other streams."""
    listing = os.path.join(folder, "segments.txt")
    with open(listing, "w") as f:
        for k in range(count):
            f.write(f"file 'seg-{k:05d}.mp4'\n")
    plan = video["streams"]
    cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", "-copyts"]
    cmd += ["-f", "concat", "-safe", "0", "-i", listing]
    cmd += plan.input_args_full(-offset) + ["-map", "0:v:0"] + plan.output_args() + ["-c:0", "copy"]
    cmd += ["-output_ts_offset", f"{offset:.6f}"] if offset else []  # as VideoWriter places the video
    cmd += ["-f", video["fmt"]] if video["fmt"] else []
    tmp = claim_partial(out_path)
    try:
        proc = subprocess.run(cmd + [tmp] + plan.clock_args(), capture_output=True, text=True, errors="replace")
        if proc.returncode != 0:
            raise MediaError(out_path, f"could not join the segments: {_stderr_tail(proc.stderr)}")
        os.replace(tmp, out_path)
    except BaseException:
        remove_quietly(tmp)
        raise
