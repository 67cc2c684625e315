"""The upscale itself: decode, infer and encode overlapped, on two single-thread executors.

    decode executor   the next batch of frames (ffmpeg pipe / Pillow) while this one computes
    main thread       the batch through the model (or bicubic), optionally in tiles
    encode executor   finished batches into the sink (ffmpeg pipe / PNGs / one image)

Waiting is on futures only (no polling): the main thread waits for the batch the decoder
prepared, and for the oldest encode when two are already queued (so memory holds a few
batches and an encoder error surfaces at once). On any failure or interruption the sink is
aborted first (which ends its ffmpeg and so any write in flight), the decoder finishes the
one batch it holds and its frame source is closed (ending the decoding ffmpeg).
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Union

import numpy as np

from imagesr.media import MAX_MEGAPIXELS, MediaError, has_alpha, list_frames
from imagesr.outputs import OutputLock
from imagesr.progress import ProgressLine
from imagesr.upscale.frames import FrameProcessor, load_model
from imagesr.upscale.inputs import open_source
from imagesr.upscale.options import (
    DEFAULT_FPS,
    FPS_RANGE,
    MIN_TILE,
    VIDEO_PRESET,
    X264_PRESETS,
    Size,
    UpscaleError,
    _fmt_size,
    image_quality,
    parse_size,
    target_size,
)
from imagesr.upscale.sinks import FolderSink, ImageSink, VideoSink, _check_output

ENCODES_IN_FLIGHT = 2  # batches queued for the encoder before the main thread waits


@dataclass
class UpscaleResult:
    output: str
    frames: int
    seconds: float  # decode + inference + encode, without loading the model
    model: str
    kind: str
    parameters: int
    input_size: Size
    output_size: Size
    audio: Optional[str] = None
    planar: bool = False  # frames stayed Y'CbCr from decoder to encoder (FrameProcessor.use_planar)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        model = "bicubic" if self.kind == "bicubic" else f"{self.model} ({self.kind}, {self.parameters:,} parameters)"
        audio = f", audio {self.audio}" if self.audio else ""
        return (f"upscaled {self.frames} frames in {self.seconds:.2f} s ({self.fps:.2f} fps) with {model}: "
                f"{_fmt_size(self.input_size)} -> {_fmt_size(self.output_size)}{audio} -> {self.output}")


def _check_arguments(size, scale, batch, tile, fps, preset):
    if size is not None and scale is not None:
        raise UpscaleError("give --size or --scale, not both")
    if int(batch) < 1:
        raise UpscaleError(f"--batch must be >= 1, got {batch}")
    if tile is not None and int(tile) < MIN_TILE:
        raise UpscaleError(f"--tile must be at least {MIN_TILE} pixels, got {tile}")
    if fps is not None and not (math.isfinite(fps) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise UpscaleError(f"--fps must be between {FPS_RANGE[0]:g} and {FPS_RANGE[1]:g}, got {fps}")
    if preset not in X264_PRESETS:
        raise UpscaleError(f"--preset {preset!r}: choose one of {', '.join(X264_PRESETS)}")


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
    preset: str = VIDEO_PRESET,
    planar: Optional[bool] = None,
    max_megapixels: float = MAX_MEGAPIXELS,
    quality: Optional[int] = None,
) -> UpscaleResult:
    """Upscale ``input`` (video, frame folder, image) into ``output`` (video, folder, image).

    ``model``: None (the shipped model for ``scale``, else the default), a shipped model's
    name, ``"bicubic"``, a model folder or ``.keras`` file, or a ready FrameUpscaler.
    ``size``: ``"WxH"`` or (height, width); ``scale``: instead of size (default x1.5).
    ``batch`` frames per model call; ``tile``: network tiles of that many pixels. ``fps``:
    frame rate for a video made from a folder or an image (default 25). ``preset``: the H.264
    encoder's speed/size trade-off (x264 preset) for a video output. ``progress``: True
    (stderr), a stream, or None/False for no progress line and notes. ``planar``: video to
    video, frames stay Y'CbCr from decoder to encoder and the colour conversions run on the
    device, when the upscale is one device call (JAX, see :meth:`FrameProcessor.use_planar`);
    None: whenever possible on an accelerator, False: never (RGB pipes), True: required
    (UpscaleError otherwise). ``max_megapixels``: an input frame larger than this is refused
    before it is decoded. ``quality``: of a .jpg or .webp image output (1-100, default 95).
    """
    progress = sys.stderr if progress is True else (progress or None)
    if isinstance(size, str):
        size = parse_size(size)
    _check_arguments(size, scale, batch, tile, fps, preset)
    quality = image_quality(output, quality)
    source = open_source(input, max_megapixels)
    if fps is not None and source.kind == "video":
        raise UpscaleError("--fps applies to frame folders and images; a video keeps its own frame rate")
    out_path, out_kind = _check_output(output, source)
    in_size = source.frame_size()
    out_size = target_size(in_size, size, scale)  # every argument checked before the model loads
    lock = OutputLock(out_path)
    try:
        lock.acquire()
    except OSError as e:
        raise UpscaleError(f"cannot write {output}: {e.strerror or e}") from None
    try:
        upscaler = model if hasattr(model, "kind") and callable(model) else load_model(model, scale)
        processor = FrameProcessor(upscaler, in_size, out_size, tile=tile, batch=batch)
        getattr(upscaler, "compiles_per_shape", None)  # the Keras backend loads now, not on the clock
        planar_in = None
        if source.kind == "video":  # the route is chosen before decoding
            wanted = planar if planar is not None else getattr(upscaler, "on_accelerator", False)
            if out_kind == "video" and wanted and processor.use_planar(source.info.planar_format()):
                planar_in = processor.planar[0]
        if planar and planar_in is None:
            raise UpscaleError("the planar route needs a video (8-bit 4:2:0 or 4:4:4) to video, the JAX backend, "
                               "no --tile, and the model's own output size with even sides")
        sink = _open_sink(out_path, out_kind, source, out_size, fps, preset, processor, quality)
        if progress:
            for note in _notes(source, processor) + getattr(sink, "notes", []):
                progress.write(f"[upscale] note: {note}\n")
        try:
            t0 = time.perf_counter()
            done = _run(source.frames(planar_in), processor, sink, batch,
                        ProgressLine("upscale", source.total, "frames", progress), input, in_size, planar_in)
            sink.commit()
            seconds = time.perf_counter() - t0
        except BaseException:
            sink.abort()
            raise
    finally:
        lock.release()
    return UpscaleResult(
        output=out_path, frames=done, seconds=seconds, model=upscaler.name, kind=upscaler.kind,
        parameters=upscaler.parameters, input_size=tuple(in_size), output_size=tuple(out_size),
        audio=getattr(sink, "audio", None), planar=processor.planar is not None,
    )


def _open_sink(out_path, out_kind, source, out_size, fps, preset, processor, quality=None):
    if out_kind == "video":
        rate = source.fps or Fraction(fps or DEFAULT_FPS).limit_denominator(1001)
        return VideoSink(out_path, out_size, rate, audio_from=source.path if source.has_audio else None,
                         preset=preset, planar=processor.planar and processor.planar[1])
    if out_kind == "folder":
        return FolderSink(out_path, source.names)
    return ImageSink(out_path, source.path, quality)


def _notes(source, processor) -> list:
    notes = [n for n in [processor.model_scale_note] if n]
    if source.info is not None and source.info.variable_rate and source.fps:
        notes.append(f"variable frame rate: resampled to a constant {float(source.fps):.3g} fps as the timestamps "
                     "say (frames repeated or dropped), in sync with the audio")
    first = source.path if source.kind == "image" else (list_frames(source.path)[0] if source.kind == "folder" else None)
    if first and has_alpha(first):
        notes.append(f"{first}: its transparency is composited on white (the output has no alpha channel)")
    return notes


def _run(frames, processor, sink, batch: int, meter: ProgressLine, input: str, in_size, planar_in) -> int:
    """The overlapped decode -> infer -> encode loop; returns the number of frames written."""
    shape = None if planar_in is None else (planar_in.frame_bytes,)
    done = 0

    def take():  # on the decode executor: the next batch, checked
        got = list(itertools.islice(frames, batch))
        for i, f in enumerate(got):
            if shape is None and f.shape[:2] != tuple(in_size):
                raise MediaError(input, f"frame {done + i} is {_fmt_size(f.shape[:2])}, the first was "
                                        f"{_fmt_size(in_size)}")
        return got

    encodes = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="imagesr-decode") as decoder, \
            ThreadPoolExecutor(1, thread_name_prefix="imagesr-encode") as encoder:
        ahead = decoder.submit(take)
        try:
            while True:
                got = ahead.result()
                if not got:
                    break
                ahead = decoder.submit(take)  # the next batch decodes while this one computes
                encodes.append(encoder.submit(sink.write, processor(np.stack(got))))
                while len(encodes) > ENCODES_IN_FLIGHT:
                    encodes.popleft().result()  # back-pressure; an encoder error surfaces here
                done += len(got)
                meter.update(done)
            while encodes:
                encodes.popleft().result()
        except BaseException:
            sink.abort()  # ends the encoder's ffmpeg: a write in flight fails instead of blocking
            for f in encodes:
                f.cancel()
            raise
        finally:
            ahead.cancel()
            try:
                ahead.exception()  # the decoder finishes the batch it holds
            except BaseException:  # noqa: BLE001 - cancelled, or the decode error already raised
                pass
            close = getattr(frames, "close", None)
            if close:
                close()  # ends the decoding ffmpeg when the run stops early
    meter.update(done, final=True)
    if done == 0:
        raise MediaError(input, "no frames")
    return done
