"""The upscale itself: decode, infer and encode overlapped.

    reader thread     frames from the decoder (ffmpeg pipe / Pillow) into a bounded queue,
                      each stamped with its arrival time
    main thread       batches from the queue through the model (or bicubic), optionally in tiles
    encode executor   finished batches into the sink (ffmpeg pipe / PNGs / one image), in order

File mode never drops a frame: a full queue makes the reader wait (the decoder with it). In
real-time mode (``realtime=True``, the default for live sources) the reader never waits: when
the model falls behind, the oldest frame still waiting is dropped (counted), and its slot in
the output shows the previous upscaled frame again, so the output keeps the input's timing
and its sync with the audio. Latency is measured per frame from its arrival at the reader to
its hand-over to the encoder. On any failure or interruption the sink is aborted first (which
ends its ffmpeg and so any write in flight) and the decoder is stopped; a live source stopped
with Ctrl-C or SIGTERM ends like a stream that ended: what was upscaled is kept.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import List, Optional, Tuple, Union

import numpy as np

from imagesr.core.media import (
    MAX_MEGAPIXELS,
    MediaError,
    frame_number_gaps,
    has_alpha,
    hdr_metadata,
    is_stream,
    list_frames,
)
from imagesr.core.media.encode import ColourSpec, encoder_args, widen_pipe
from imagesr.core.media.streams import StreamPlan, file_plan, muxer_for, rule_plan
from imagesr.core.outputs import OutputLock
from imagesr.core.progress import ProgressLine
from imagesr.upscale.frames import FrameProcessor, load_model
from imagesr.upscale.inputs import REPEAT, Source, open_source
from imagesr.upscale.options import (
    DEFAULT_FPS,
    FPS_RANGE,
    MIN_TILE,
    Size,
    UpscaleError,
    UpscaleOptions,
    _fmt_size,
    check_encoder,
    default_crf,
    default_preset,
    image_quality,
    parse_size,
    stream_format,
    target_size,
)
from imagesr.upscale.sinks import FolderSink, ImageSink, VideoSink, _check_output

ENCODES_IN_FLIGHT = 2  # batches queued for the encoder before the main thread waits
MAX_WAIT_S = 1.0  # real time: a frame older than this when the model could take it is dropped


@dataclass
class UpscaleResult:
    output: str
    frames: int  # frame slots written (a real-time run's dropped frames included, shown as the previous one)
    seconds: float  # decode + inference + encode, without loading the model
    model: str
    kind: str
    parameters: int
    input_size: Size
    output_size: Size
    audio: Optional[str] = None  # what passthrough carried: "audio copied, subtitles copied, chapters copied"
    planar: bool = False  # frames stayed Y'CbCr from decoder to encoder (FrameProcessor.use_planar)
    dropped: int = 0  # real time: frames not upscaled because the model fell behind
    latency: Optional[Tuple[float, float, float]] = None  # p50, p95, max seconds, arrival -> encoder
    realtime: bool = False
    stopped: bool = False  # a live source ended by Ctrl-C / SIGTERM
    resumed_segments: int = 0  # --resume: segments found complete and not redone

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def latency_text(self) -> str:
        if self.latency is None:
            return ""
        p50, p95, top = (round(v * 1000) for v in self.latency)
        return f"latency p50 {p50} ms, p95 {p95} ms, max {top} ms"

    def summary(self) -> str:
        model = "bicubic" if self.kind == "bicubic" else f"{self.model} ({self.kind}, {self.parameters:,} parameters)"
        audio = f", {self.audio}" if self.audio else ""
        line = (f"upscaled {self.frames} frames in {self.seconds:.2f} s ({self.fps:.2f} fps) with {model}: "
                f"{_fmt_size(self.input_size)} -> {_fmt_size(self.output_size)}{audio} -> {self.output}")
        if self.realtime:
            line += f"; real time: {self.dropped} dropped (shown as the previous frame), {self.latency_text()}"
        if self.resumed_segments:
            line += f"; resumed after {self.resumed_segments} complete segments"
        if self.stopped:
            line += "; stopped by a signal, the stream so far kept"
        return line


def _check_arguments(size, scale, batch, tile, fps):
    if size is not None and scale is not None:
        raise UpscaleError("give --size or --scale, not both")
    if int(batch) < 1:
        raise UpscaleError(f"--batch must be >= 1, got {batch}")
    if tile is not None and int(tile) < MIN_TILE:
        raise UpscaleError(f"--tile must be at least {MIN_TILE} pixels, got {tile}")
    if fps is not None and not (math.isfinite(fps) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise UpscaleError(f"--fps must be between {FPS_RANGE[0]:g} and {FPS_RANGE[1]:g}, got {fps}")


def _depth(pix_fmt: str) -> int:
    import re

    m = re.search(r"(9|10|12|14|16)(le|be)$", pix_fmt or "")
    return int(m.group(1)) if m else 8


def upscale(
    input: str,
    output: str,
    model=None,
    size: Union[str, Size, None] = None,
    scale: Optional[float] = None,
    batch: int = 4,
    tile: Optional[int] = None,
    fps: Optional[float] = None,
    progress=True,
    preset: Optional[str] = None,
    planar: Optional[bool] = None,
    codec: str = "libx264",
    crf: Optional[int] = None,
    pix_fmt: Optional[str] = None,
    format: Optional[str] = None,
    realtime: Optional[bool] = None,
    resume: bool = False,
    segment_seconds: float = 10.0,
    max_megapixels: float = MAX_MEGAPIXELS,
    quality: Optional[int] = None,
) -> UpscaleResult:
    """Upscale ``input`` (video file, stream, frame folder, animation, image) into ``output``
    (video file, stream, folder, image).

    ``model``: None (the shipped model for ``scale``, else the default), a shipped model's
    name, ``"bicubic"``, a model folder or ``.keras`` file, or a ready FrameUpscaler.
    ``size``: ``"WxH"`` or (height, width); ``scale``: instead of size (default x1.5).
    ``batch`` frames per model call; ``tile``: network tiles of that many pixels. ``fps``:
    frame rate for a video made from a folder, an image or an animation (default 25; an
    animation's own timing when not given). Encoding: ``codec`` (any ffmpeg video encoder),
    ``crf``, ``preset``, ``pix_fmt`` (default: 4:2:0, 10-bit for deeper input), ``format``
    (the muxer; default by the output's extension, mpegts for ``-`` and network URLs).
    ``realtime``: pace to the input's clock and drop frames rather than fall behind (default:
    for live sources). ``resume``: a file-to-file job written in keyframe-aligned segments of
    about ``segment_seconds`` that a rerun continues after the last complete one.
    ``progress``: True (stderr), a stream, or None/False for no progress line and notes.
    ``planar``: video to video, frames stay Y'CbCr from decoder to encoder and the colour
    conversions run on the device, when the upscale is one device call (JAX, see
    :meth:`FrameProcessor.use_planar`); None: whenever possible on an accelerator, False:
    never (RGB pipes), True: required (UpscaleError otherwise). ``max_megapixels``: an input frame larger than this is refused
    before it is decoded. ``quality``: of a .jpg or .webp image output (1-100, default 95).
    """
    progress = sys.stderr if progress is True else (progress or None)
    if isinstance(size, str):
        size = parse_size(size)
    _check_arguments(size, scale, batch, tile, fps)
    preset = preset if preset is not None else default_preset(codec)
    crf = crf if crf is not None else default_crf(codec)
    check_encoder(codec, crf, preset, pix_fmt, format)
    if is_stream(input) and not (hasattr(model, "kind") and callable(model)):
        # a live source flows from the moment it is opened: load the model first, so that its
        # start is not queued (and, in real time, dropped) while the model loads
        model = load_model(model, scale)
        model.backend  # noqa: B018 - the Keras backend loads now too
    o = UpscaleOptions(size=size, scale=scale, batch=int(batch), tile=tile, fps=fps, planar=planar, codec=codec, crf=crf,
                       preset=preset, pix_fmt=pix_fmt, format=format, realtime=realtime, resume=resume,
                       segment_seconds=segment_seconds, quality=image_quality(output, quality))
    source = open_source(input, fps, max_megapixels)
    try:
        return _upscale(source, input, output, model, o, progress)
    finally:
        source.close()


def _upscale(source: Source, input, output, model, o: UpscaleOptions, progress) -> UpscaleResult:
    size, scale, batch, tile, fps, planar = o.size, o.scale, o.batch, o.tile, o.fps, o.planar
    pix_fmt, fmt, realtime, resume = o.pix_fmt, o.format, o.realtime, o.resume
    if fps is not None and source.kind in ("video", "stream"):
        raise UpscaleError("--fps applies to frame folders, images and animations; a video keeps its own frame rate")
    out_path, out_kind = _check_output(output, source, o.codec, fmt)
    if out_kind == "stream":
        fmt = stream_format(output, fmt)
    if realtime is None:
        realtime = source.kind == "stream" and source.info is not None and _is_live(input)
    if realtime and out_kind not in ("video", "stream"):
        raise UpscaleError("--realtime writes a video or a stream, not frames")
    if resume and not (source.kind == "video" and out_kind == "video"):
        raise UpscaleError("--resume continues a video file written from a video file; "
                           f"{input} -> {output} is not one")
    in_size = source.frame_size()
    out_size = target_size(in_size, size, scale)  # every argument checked before the model loads
    deep = source.deep and (pix_fmt is None or _depth(pix_fmt) > 8)
    lock = OutputLock(out_path) if out_kind != "stream" else None
    try:
        if lock is not None:
            lock.acquire()
    except OSError as e:
        raise UpscaleError(f"cannot write {output}: {e.strerror or e}") from None
    try:
        video = None
        if out_kind in ("video", "stream"):
            video = _video_settings(source, out_path, out_size, o, fmt, deep)
        upscaler = model if hasattr(model, "kind") and callable(model) else load_model(model, scale)
        processor = FrameProcessor(upscaler, in_size, out_size, tile=tile, batch=batch)
        upscaler.backend  # noqa: B018 - the Keras backend loads now, not on the clock
        planar_in = None
        if source.kind in ("video", "stream") and not deep:  # the route is chosen before decoding
            wanted = planar if planar is not None else upscaler.backend.accelerator
            if (out_kind in ("video", "stream") and wanted and video["pix_fmt"] in (None, "yuv420p")
                    and video["colour"].matrix in ("bt709", "bt601")
                    and processor.use_planar(source.info.planar_format())):
                planar_in = processor.planar[0]
        if planar and planar_in is None:
            raise UpscaleError("the planar route needs a video (8-bit 4:2:0 or 4:4:4) to video, the JAX backend, "
                               "no --tile, and the model's own output size with even sides")
        notes = _notes(source, processor, deep, pix_fmt) + (video["notes"] if video else [])
        if resume:
            from imagesr.upscale.resume import run_resumable

            if progress:
                for note in notes:
                    progress.write(f"[upscale] note: {note}\n")
            return run_resumable(source, out_path, processor, upscaler, video, batch, o.segment_seconds, progress,
                                 in_size, out_size, planar_in)
        side_r = None
        decoder = None
        if source.kind == "stream" and video is not None and any(c.carried for c in video["streams"].choices):
            side_r, side_w = os.pipe()
            widen_pipe(side_w)
            video["streams"].source, video["streams"].pass_fds = f"pipe:{side_r}", (side_r,)
        if source.kind in ("video", "stream"):
            decoder = source.decoder(planar_in, realtime=realtime and source.kind == "video",
                                     side_fd=side_w if side_r is not None else None)
            frames = iter(decoder)
        else:
            frames = source.frames()
        try:
            sink = _open_sink(out_path, out_kind, source, out_size, fps, processor, video, decoder, o.quality)
        except BaseException:
            if decoder is not None:
                decoder.close()
            raise
        if progress:
            for note in notes + getattr(sink, "notes", []):
                progress.write(f"[upscale] note: {note}\n")
            if source.kind == "stream":
                progress.write(f"[upscale] reading {input} ({'real time' if realtime else 'every frame'}); "
                               "Ctrl-C ends the stream and keeps what was upscaled\n")
        try:
            t0 = time.perf_counter()
            meter = ProgressLine("upscale", source.total, "frames", progress)
            # real time: a frame may wait up to MAX_WAIT_S (a stream's start arrives in a burst while
            # ffmpeg identifies it) and two seconds of frames may be held; beyond either the oldest
            # waiting frame is dropped
            limit = max(4 * batch, math.ceil(2 * float(source.fps or DEFAULT_FPS))) if realtime else 2 * batch
            stats = _run(frames, processor, sink, batch, meter, input, in_size, planar_in, realtime,
                         live=source.kind == "stream", decoder=decoder, queue_limit=limit)
            sink.commit()
            seconds = time.perf_counter() - t0
        except BaseException:
            sink.abort()
            raise
        finally:
            if side_r is not None:
                try:
                    os.close(side_r)
                except OSError:
                    pass
    finally:
        if lock is not None:
            lock.release()
    return UpscaleResult(
        output=out_path, frames=stats["slots"], seconds=seconds, model=upscaler.name, kind=upscaler.kind,
        parameters=upscaler.parameters, input_size=tuple(in_size), output_size=tuple(out_size),
        audio=getattr(sink, "audio", None), planar=processor.planar is not None, dropped=stats["dropped"],
        latency=stats["latency"], realtime=bool(realtime), stopped=stats["stopped"],
    )


def _is_live(path: str) -> bool:
    from imagesr.core.media import is_live

    return is_live(path)


def _video_settings(source: Source, out_path: str, out_size: Size, o: UpscaleOptions, fmt, deep) -> dict:
    """The encoder's settings and the passthrough plan for a video or stream output (checked by
    a trial mux for a file input); ``fmt``: the muxer asked for or chosen for a stream."""
    codec, crf, preset, pix_fmt = o.codec, o.crf, o.preset, o.pix_fmt
    info = source.info
    hdr = None
    notes = []
    if info is not None and (info.hdr_transfer or info.bit_depth > 8):
        if source.kind == "video":
            hdr = hdr_metadata(source.path, info.stream_index)
        elif info.hdr_transfer:
            notes.append("HDR mastering metadata of a live source is not read (only its colour tags are carried)")
    colour = ColourSpec.for_output(out_size[1], out_size[0], info, hdr)
    muxer = muxer_for(out_path, fmt)
    settings = dict(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, fmt=fmt, colour=colour, deep=deep)
    probe, _, _ = encoder_args(out_size, codec, crf, preset, pix_fmt, colour, deep)
    if source.kind == "video":
        plan, problem = (file_plan(source.path, info.others, info.chapters, out_path, muxer, probe)
                         if info.others or info.chapters or codec != "libx264" or fmt else (StreamPlan(source.path), None))
        if problem:
            raise UpscaleError(f"{out_path}: cannot write {codec} video here: {problem}")
    elif source.kind == "stream":
        plan = _live_plan(info, muxer)
    else:
        plan = None
    notes += plan.notes if plan is not None else []
    return dict(settings, streams=plan, notes=notes, muxer=muxer)


def _live_plan(info, muxer) -> StreamPlan:
    """A live source's passthrough by the rules (it cannot be tried): its audio and subtitles
    arrive as the decoder's NUT side output, numbered audio first, then subtitles."""
    from dataclasses import replace

    others = [s for s in info.others]
    carried = [s for s in others if s.kind == "audio"] + [s for s in others if s.kind == "subtitle"]
    renumbered = [replace(s, index=i) for i, s in enumerate(carried)]
    plan = rule_plan("pipe:0", renumbered, 0, muxer)
    rest = rule_plan("", [s for s in others if s not in carried], 0, muxer)
    for c in rest.choices:
        c.codec = None
        c.reason = c.reason or "not read from a live source"
    plan.choices += rest.choices
    plan.input_args = ("-thread_queue_size", "4096", "-f", "nut")
    return plan


def _open_sink(out_path, out_kind, source, out_size, fps, processor, video, decoder, quality=None):
    if out_kind in ("video", "stream"):
        rate = source.fps or Fraction(fps or DEFAULT_FPS).limit_denominator(1001)
        if source.kind == "stream":
            offset = decoder.first_timestamp  # the first frame's time on the source's (and side streams') clock
        else:
            offset = _align(source.info, video["streams"])
        return VideoSink(out_path, out_size, rate, streams=video["streams"], offset=offset,
                         planar=processor.planar and processor.planar[1], copyts=video["streams"] is not None,
                         **{k: video[k] for k in ("codec", "crf", "preset", "pix_fmt", "fmt", "colour", "deep")})
    if out_kind == "folder":
        return FolderSink(out_path, source.names)
    return ImageSink(out_path, source.path, quality)


def _align(info, plan: Optional[StreamPlan]) -> float:
    """Place a file's video and its carried streams on one clock that starts at the earliest
    of them: sets the streams' shift (their timestamps are read as they are) and returns how
    long after that start the video begins. The input's audio/video offset is kept, whichever
    stream starts first and whatever the container does with the streams it is not asked for."""
    if plan is None or info is None or info.start_time is None:
        return 0.0
    t0 = min([info.start_time] + plan.starts())
    plan.shift = -t0
    if any(c.carried for c in plan.choices):
        plan.clock_stream = info.stream_index
    return info.start_time - t0


def _notes(source: Source, processor, deep: bool, pix_fmt) -> List[str]:
    notes = [n for n in [processor.model_scale_note] if n] + list(source.notes)
    info = source.info
    if info is not None and info.variable_rate and source.fps and source.kind == "video":
        notes.append(f"variable frame rate: resampled to a constant {float(source.fps):.3g} fps as the timestamps "
                     "say (frames repeated or dropped), in sync with the audio")
    if info is not None and info.interlaced:
        notes.append(f"interlaced input ({info.field_order}): deinterlaced (yadif, one frame per frame) before "
                     "upscaling; the output is progressive")
    if source.deep and not deep:
        notes.append(f"{info.bit_depth}-bit input written as 8-bit (--pix-fmt {pix_fmt})")
    if source.kind == "folder":
        gaps = frame_number_gaps(source.names or [])
        if gaps:
            notes.append(f"{source.path}: {gaps}")
    first = source.path if source.kind == "image" else (list_frames(source.path)[0] if source.kind == "folder" else None)
    if first and has_alpha(first):
        notes.append(f"{first}: its transparency is composited on white (the output has no alpha channel)")
    return notes


class _Item:
    __slots__ = ("frame", "t", "dropped")

    def __init__(self, frame, t, dropped=False):
        self.frame, self.t, self.dropped = frame, t, dropped


class FrameQueue:
    """Frames from the reader thread to the model, in order. ``limit`` frames may wait; then a
    file-mode ``put`` waits for room, and a real-time one drops the oldest waiting frame
    instead (its slot stays, marked dropped); real time also drops, when the model takes a
    batch, every frame but the newest that has waited longer than ``max_wait`` seconds.
    Slots that repeat the previous frame (an animation's held frames) pass without counting."""

    def __init__(self, limit: int, drop: bool, max_wait: float = MAX_WAIT_S):
        self.limit, self.drop, self.max_wait = limit, drop, max_wait
        self.items = deque()
        self.waiting = 0  # real frames in the queue
        self.dropped = 0
        self.cond = threading.Condition()
        self.closed = False
        self.error: Optional[BaseException] = None
        self.cancelled = False

    def put(self, frame) -> None:
        t = time.perf_counter()
        with self.cond:
            if frame is REPEAT:
                self.items.append(_Item(REPEAT, t))
                self.cond.notify_all()
                return
            if self.drop and self.waiting >= self.limit:
                self._drop(next(it for it in self.items if it.frame is not REPEAT))
            while not self.drop and self.waiting >= self.limit and not self.cancelled:
                self.cond.wait()
            if self.cancelled:
                raise _Cancelled()
            self.items.append(_Item(frame, t))
            self.waiting += 1
            self.cond.notify_all()

    def _drop(self, item: _Item) -> None:
        item.frame, item.dropped = REPEAT, True
        self.waiting -= 1
        self.dropped += 1

    def finish(self, error: Optional[BaseException] = None) -> None:
        with self.cond:
            self.closed, self.error = True, error
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()

    def take(self, batch: int, realtime: bool) -> List[_Item]:
        """The next items holding up to ``batch`` frames (file mode waits for a whole batch, real
        time takes what is there); [] at the end."""
        with self.cond:
            need = 1 if realtime else batch
            while self.waiting < need and not self.closed:
                self.cond.wait()
            if self.error is not None and self.waiting == 0:
                raise self.error
            if self.drop and self.waiting > 1:
                now = time.perf_counter()
                stale = [it for it in self.items if it.frame is not REPEAT and now - it.t > self.max_wait]
                for it in stale[: self.waiting - 1]:  # the newest frame is always kept
                    self._drop(it)
            out, real = [], 0
            while self.items and (real < batch or self.items[0].frame is REPEAT):
                it = self.items.popleft()
                real += it.frame is not REPEAT
                out.append(it)
            self.waiting -= real
            self.cond.notify_all()
            if not out and self.error is not None:
                raise self.error
            return out


class _Cancelled(Exception):
    pass


def _run(frames, processor, sink, batch: int, meter: ProgressLine, input: str, in_size, planar_in,
         realtime: bool = False, live: bool = False, decoder=None, queue_limit: Optional[int] = None,
         offset: int = 0) -> dict:
    """The overlapped read -> infer -> encode loop; returns the counts and latencies (``offset``:
    frames already written by an earlier run, for the progress line)."""
    shape = None if planar_in is None else (planar_in.frame_bytes,)
    queue = FrameQueue(queue_limit or 2 * batch, drop=realtime)
    latencies: List[float] = []
    state = {"slots": 0, "last": None, "stopped": False}

    def read():
        n = 0
        try:
            for f in frames:
                if f is not REPEAT and shape is None and f.shape[:2] != tuple(in_size):
                    raise MediaError(input, f"frame {n} is {_fmt_size(f.shape[:2])}, the first was {_fmt_size(in_size)}")
                queue.put(f)
                n += 1
            queue.finish()
        except _Cancelled:
            queue.finish()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
            queue.finish(e)

    def encode(items: List[_Item], outs):
        outs = None if outs is None else np.asarray(outs)  # waits for a device array here
        j = 0
        for it in items:
            if it.frame is REPEAT:
                held = state["last"] if state["last"] is not None else (outs[0] if outs is not None and len(outs) else None)
                if held is not None and sink.timed:
                    sink.write(held[None])
                    state["slots"] += 1
                continue
            out = outs[j]
            j += 1
            sink.write(out[None])
            latencies.append(time.perf_counter() - it.t)
            state["last"] = out
            state["slots"] += 1

    reader = threading.Thread(target=read, daemon=True, name="imagesr-read")
    reader.start()
    restore = _stop_on_signals(queue, state) if live else None
    encodes = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="imagesr-encode") as encoder:
        try:
            while True:
                try:
                    items = queue.take(batch, realtime)
                    if not items:
                        break
                    real = [it.frame for it in items if it.frame is not REPEAT]
                    outs = processor(np.stack(real)) if real else None
                except KeyboardInterrupt:
                    if not live:
                        raise
                    state["stopped"] = True
                    break
                encodes.append(encoder.submit(encode, items, outs))
                while len(encodes) > ENCODES_IN_FLIGHT:
                    encodes.popleft().result()  # back-pressure; an encoder error surfaces here
                meter.update(offset + state["slots"], extra=_live_extra(latencies, queue.dropped) if realtime or live else "")
            while encodes:
                encodes.popleft().result()
        except BaseException:
            sink.abort()  # ends the encoder's ffmpeg: a write in flight fails instead of blocking
            for f in encodes:
                f.cancel()
            raise
        finally:
            queue.cancel()
            if decoder is not None:
                decoder.close()  # ends the decoding ffmpeg when the run stops early
            else:
                close = getattr(frames, "close", None)
                if close:
                    close()
            reader.join(timeout=60)
            if restore:
                restore()
    meter.update(offset + state["slots"], final=True, extra=_live_extra(latencies, queue.dropped) if realtime or live else "")
    if state["slots"] == 0:
        raise MediaError(input, "no frames")
    latency = None
    if latencies:
        a = np.asarray(latencies)
        latency = (float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.max()))
    return {"slots": state["slots"], "dropped": queue.dropped, "latency": latency, "stopped": state["stopped"]}


def _stop_on_signals(queue: FrameQueue, state: dict):
    """A live source ends when its user says so (Ctrl-C, SIGTERM): the frames already read are
    upscaled and written, the output is completed and kept. Returns what restores the handlers."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        state["stopped"] = True
        queue.cancel()  # the reader stops taking frames
        queue.finish()  # the model takes what is queued, then the run ends

    saved = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(s, h) for s, h in saved.items()]


def _live_extra(latencies: List[float], dropped: int) -> str:
    if not latencies:
        return f"dropped {dropped}"
    recent = np.asarray(latencies[-200:]) * 1000
    return f"latency p50 {np.percentile(recent, 50):.0f} ms, p95 {np.percentile(recent, 95):.0f} ms  dropped {dropped}"
