"""Live upscaling of a video, a frame folder or an image (``imagesr upscale``).

Three stages overlap so that compute never waits on I/O::

    decode thread   ffmpeg pipe / Pillow  -> bounded queue of frames
    main thread     batches of --batch frames -> model (or bicubic), optionally in tiles
    encode thread   bounded queue of batches -> ffmpeg pipe (H.264) / PNG files / one image

The model is loaded lazily through :func:`training.serving.load_upscaler` (this module
imports neither TensorFlow nor Keras at import time) and may be a model directory, a
``.keras`` file, ``"bicubic"`` or, by default, the shipped ``imagesr/assets/subpixel_x1.5``.

Frames the model cannot take as they are (a x1.5 sub-pixel model pixel-unshuffles by 2, so
it needs even sides) are padded symmetrically (MATLAB's border rule) to the next multiple,
upscaled and cropped; any output size is honoured exactly (the model's natural output is
resized with the MATLAB bicubic when the sizes differ). ``tile`` runs the network on
overlapping tiles whose overlap covers its receptive field, so the stitched frame equals
the untiled one up to float rounding.

Output goes to a temporary name of the run's own beside the target
(``NAME.partial-<pid>-<random>.EXT``, or such a folder) and is renamed only once complete: a
failed or interrupted run leaves nothing that looks finished and removes nothing it did not
create. A run holds the output's lock (:class:`imagesr.outputs.OutputLock`) throughout, so a
second run to the same output is refused.
"""

from __future__ import annotations

import math
import os
import queue
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np

from imagesr.media import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    MediaError,
    VideoInfo,
    VideoWriter,
    decode_image,
    has_alpha,
    is_image_path,
    iter_folder_frames,
    iter_video_frames,
    list_frames,
    probe_video,
    write_image,
)
from imagesr import shipped
from imagesr.outputs import OutputLock, claim_partial, remove_quietly
from imagesr.colour import PlanarFormat, output_matrix
from imagesr.progress import ProgressLine
from imagesr.resize import imresize, output_size

DEFAULT_MODEL = os.path.join(shipped.ASSETS, shipped.DEFAULT)
DEFAULT_SCALE = 1.5
DEFAULT_FPS = 25.0  # frame folders and images have no frame rate of their own
VIDEO_CRF = 18
VIDEO_PRESET = "veryfast"  # live: the encoder must keep up with the model on few cores
MAX_SIDE = 16384  # H.264's largest frame side; far beyond it a frame no longer fits in memory
MIN_TILE = 64  # smaller tiles are mostly overlap: hours per frame for nothing
FPS_RANGE = (0.1, 1000.0)
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

Size = Tuple[int, int]  # (height, width)


class UpscaleError(ValueError):
    """Bad arguments or an output that cannot be written: one line, exit status 2 from the CLI."""


# --------------------------------------------------------------------------- arguments


def parse_size(text: str) -> Size:
    """``"1920x1080"`` (WIDTHxHEIGHT) -> (1080, 1920)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m:
        raise UpscaleError(f"bad --size {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080")
    w, h = int(m.group(1)), int(m.group(2))
    if w <= 0 or h <= 0:
        raise UpscaleError(f"bad --size {text!r}: width and height must be positive")
    if max(w, h) > MAX_SIDE:
        raise UpscaleError(f"bad --size {text!r}: at most {MAX_SIDE} pixels a side")
    return h, w


def target_size(frame_size: Size, size: Optional[Size] = None, scale: Optional[float] = None) -> Size:
    """The output (height, width): ``size``, or ``ceil(scale * side)`` (default x1.5), never smaller."""
    if size is not None and scale is not None:
        raise UpscaleError("give --size or --scale, not both")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UpscaleError(f"--scale must be a positive number, got {scale}")
    if scale is not None and max(frame_size) * scale > MAX_SIDE:
        raise UpscaleError(f"--scale {scale:g} makes {frame_size[1]}x{frame_size[0]} larger than {MAX_SIDE} pixels a side")
    out = tuple(size) if size is not None else output_size(frame_size, scale or DEFAULT_SCALE)
    if out[0] < frame_size[0] or out[1] < frame_size[1]:
        raise UpscaleError(f"output {out[1]}x{out[0]} is smaller than the input {frame_size[1]}x{frame_size[0]}: "
                           "imagesr upscale only enlarges")
    if max(out) > MAX_SIDE:
        raise UpscaleError(f"output {out[1]}x{out[0]} is larger than {MAX_SIDE} pixels a side")
    return out


def _fmt_size(size: Size) -> str:
    return f"{size[1]}x{size[0]}"


# --------------------------------------------------------------------------- inputs


@dataclass
class Source:
    """What is being upscaled: a video, a frame folder or one image."""

    kind: str  # "video" | "folder" | "image"
    path: str
    total: Optional[int]  # frames, when known
    fps: Optional[Fraction]  # videos only
    has_audio: bool = False
    names: Optional[List[str]] = None  # frame folders: the frames' file names
    info: Optional[VideoInfo] = field(default=None, repr=False)  # videos: the probe

    def frame_size(self) -> Size:
        """(height, width) of the frames, before any is upscaled (a video's from its probe; an
        image's or a folder's first frame decoded: EXIF orientation can swap the sides)."""
        if self.kind == "video":
            return self.info.height, self.info.width
        first = self.path if self.kind == "image" else list_frames(self.path)[0]
        return decode_image(first).shape[:2]

    def frames(self, planar: Optional[PlanarFormat] = None) -> Iterator[np.ndarray]:
        """The frames, lazily (decoding happens in whichever thread iterates); a video's as flat
        Y'CbCr vectors of ``planar`` when given."""
        if self.kind == "folder":
            return iter_folder_frames(self.path)
        if self.kind == "image":
            return (decode_image(p) for p in [self.path])
        # A variable-rate video is written at a constant rate: resample it to that rate as its
        # timestamps say, or its frames would drift from its (copied) audio.
        rate = self.fps if self.info is not None and self.info.variable_rate else None
        return iter_video_frames(self.path, info=self.info, planar=planar, constant_rate=rate)


def open_source(path: str) -> Source:
    """Classify and probe the input (raises MediaError with the reason for a bad one)."""
    path = str(path)
    if os.path.isdir(path):
        files = list_frames(path)
        if not files:
            raise MediaError(path, "folder holds no image frames")
        return Source("folder", path, len(files), None, names=[os.path.basename(f) for f in files])
    if os.path.isfile(path) and is_image_path(path):
        return Source("image", path, 1, None)
    info = probe_video(path)
    fps = Fraction(info.fps).limit_denominator(1001) if info.fps and info.fps > 0 else None
    total = info.frame_count
    if total is None and info.duration and info.fps:
        total = int(round(info.duration * info.fps))  # an estimate, for the ETA only
    return Source("video", path, total, fps, has_audio=info.has_audio, info=info)


# --------------------------------------------------------------------------- outputs


# Containers that hold the H.264 we write, and AAC when the input's audio must be re-encoded;
# the others ffmpeg reads but would refuse (.webm: VP8/VP9/AV1 only) or mangle, late.
H264_CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv", ".ts", ".flv", ".avi")


def output_kind(path: str) -> str:
    """"video", "image" or "folder", from OUTPUT's extension (or it being / ending like a folder)."""
    low = str(path).lower()
    if low.endswith(VIDEO_EXTENSIONS):
        if not low.endswith(H264_CONTAINERS):
            raise UpscaleError(f"{path}: imagesr writes H.264 video, which a {os.path.splitext(low)[1]} file cannot "
                               f"hold; use one of {' '.join(H264_CONTAINERS)}")
        return "video"
    if low.endswith(IMAGE_EXTENSIONS):
        return "image"
    if os.path.isdir(path) or str(path).endswith(("/", os.sep)) or not os.path.splitext(path)[1]:
        return "folder"
    raise UpscaleError(f"{path}: cannot tell the output kind from the extension {os.path.splitext(path)[1]!r} "
                       f"(a video {'/'.join(VIDEO_EXTENSIONS[:4])}..., an image {'/'.join(IMAGE_EXTENSIONS[:3])}..., "
                       "or a folder)")


def _check_output(output: str, source: Source) -> Tuple[str, str]:
    """(absolute output path, kind) after checking it can be written and is not the input."""
    kind = output_kind(output)
    out = os.path.abspath(output.rstrip("/" + os.sep) or output)
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        what = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise UpscaleError(f"cannot write {output}: its folder {parent} {what}")
    if os.path.exists(out) and os.path.realpath(out) == os.path.realpath(source.path):
        raise UpscaleError(f"{output}: the output would overwrite the input")
    if os.path.exists(out) and not (os.path.isfile(out) or os.path.isdir(out)):
        raise UpscaleError(f"{output}: is not a regular file or folder (a device or pipe); give a file or folder name")
    if kind == "folder" and os.path.isdir(out) and os.listdir(out):
        raise UpscaleError(f"{output}: the output folder exists and is not empty (remove it or choose another)")
    if kind == "folder" and os.path.isfile(out):
        raise UpscaleError(f"{output}: is a file; a folder output needs a folder name")
    if kind != "folder" and os.path.isdir(out):
        raise UpscaleError(f"{output}: is a folder; give a file name for a {kind} output")
    if kind == "image" and source.total is not None and source.total > 1:
        raise UpscaleError(f"{output}: an image holds one frame but {source.path} has {source.total}; "
                           "write a video or a folder")
    return out, kind


class _Sink:
    """Where upscaled frames go, under a temporary name of this run's own
    (:func:`imagesr.outputs.claim_partial`); ``commit`` renames it into place, ``abort``
    removes it (and nothing else)."""

    def __init__(self, path: str):
        self.path = path
        self.tmp: Optional[str] = None

    def write(self, frames: np.ndarray) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        remove_quietly(self.tmp)

    def _check_writable(self) -> None:
        try:
            remove_quietly(claim_partial(self.path))
        except OSError as e:
            raise UpscaleError(f"cannot write {self.path}: {e.strerror or e}") from None


class VideoSink(_Sink):
    """H.264 at the input's frame rate through :class:`imagesr.media.VideoWriter` (audio mapped
    from ``audio_from``; atomic)."""

    def __init__(self, path: str, size: Size, fps: Fraction, audio_from: Optional[str] = None,
                 preset: str = VIDEO_PRESET, planar: Optional[PlanarFormat] = None):
        super().__init__(path)
        self._check_writable()
        self.writer = VideoWriter(path, size, fps, audio_from=audio_from, crf=VIDEO_CRF, preset=preset, planar=planar)
        self.notes, self.audio = self.writer.notes, self.writer.audio

    def write(self, frames: np.ndarray) -> None:
        self.writer.write(frames)

    def commit(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


class FolderSink(_Sink):
    """One PNG per frame in a temporary folder beside ``NAME``, renamed to ``NAME/`` at the end."""

    def __init__(self, path: str, names: Optional[List[str]] = None):
        super().__init__(path)
        stems = [os.path.splitext(n)[0] for n in names or []]
        self.names = stems if len(set(stems)) == len(stems) else None  # else 000000.png, 000001.png, ...
        self.count = 0
        try:
            self.tmp = claim_partial(path, folder=True)
        except OSError as e:
            raise UpscaleError(f"cannot write {path}: {e.strerror or e}") from None

    def write(self, frames: np.ndarray) -> None:
        for f in frames:
            name = self.names[self.count] if self.names and self.count < len(self.names) else f"{self.count:06d}"
            write_image(os.path.join(self.tmp, name + ".png"), f)
            self.count += 1

    def commit(self) -> None:
        if os.path.isdir(self.path):
            os.rmdir(self.path)  # checked empty before the run (and the run holds the output's lock)
        os.replace(self.tmp, self.path)


class ImageSink(_Sink):
    """One image, written with :func:`imagesr.media.write_image` (itself atomic) at the end."""

    def __init__(self, path: str, source: str):
        super().__init__(path)
        self._check_writable()
        self.source = source
        self.frame = None

    def write(self, frames: np.ndarray) -> None:
        for f in frames:
            if self.frame is not None:
                raise UpscaleError(f"{self.path}: an image holds one frame but {self.source} has more; "
                                   "write a video or a folder")
            self.frame = f

    def commit(self) -> None:
        try:
            write_image(self.path, self.frame)
        except (OSError, ValueError) as e:
            raise UpscaleError(f"cannot write {self.path}: {e}") from None


# --------------------------------------------------------------------------- inference


def _conv_radius(model) -> int:
    """Receptive-field radius of a chain of convolutions, in the model's own input pixels."""
    radius = 0
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []))
        ks, dil = getattr(layer, "kernel_size", None), getattr(layer, "dilation_rate", (1, 1))
        if ks is not None:
            radius += (max(ks) - 1) // 2 * max(dil)
    return radius


def tiled(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, tile: int, overlap: int,
          factor: Fraction = Fraction(1)) -> np.ndarray:
    """Apply ``run`` (upscaling by ``factor``) to overlapping tiles of NHWC ``x`` and stitch
    the tiles' cores. ``tile``, ``overlap`` and the sides of ``x`` must be multiples of
    ``factor``'s denominator, so that every tile's output lies on the whole frame's grid."""
    n, h, w, c = x.shape
    out = np.empty((n, int(h * factor), int(w * factor), c), np.uint8)
    # Every window has the same size (tile + 2 overlap, or the frame): windows at the borders
    # slide inwards instead of shrinking, so the model sees one input shape (one trace).
    win_h, win_w = min(tile + 2 * overlap, h), min(tile + 2 * overlap, w)
    for y0 in range(0, h, tile):
        y1, a0 = min(y0 + tile, h), min(max(0, y0 - overlap), h - win_h)
        for x0 in range(0, w, tile):
            x1, b0 = min(x0 + tile, w), min(max(0, x0 - overlap), w - win_w)
            piece = run(x[:, a0:a0 + win_h, b0:b0 + win_w])
            Y0, Y1, X0, X1, A0, B0 = (int(v * factor) for v in (y0, y1, x0, x1, a0, b0))
            out[:, Y0:Y1, X0:X1] = piece[:, Y0 - A0:Y1 - A0, X0 - B0:X1 - B0]
    return out


class FrameProcessor:
    """Batches of same-sized uint8 frames -> uint8 frames of exactly ``out_size``.

    Wraps a :class:`training.serving.FrameUpscaler`: pads frames to the model's size multiple
    (symmetric borders), optionally runs the network on overlapping tiles, crops and resizes
    to the requested size. ``batch``: where each batch shape costs a compilation (JAX), a
    short batch (the last one) is padded to the shape already compiled.
    """

    def __init__(self, upscaler, in_size: Size, out_size: Size, tile: Optional[int] = None, batch: int = 1):
        self.up, self.in_size, self.out_size, self.batch = upscaler, tuple(in_size), tuple(out_size), batch
        self.planar: Optional[Tuple[PlanarFormat, PlanarFormat]] = None  # see use_planar
        self.kind = upscaler.kind
        h, w = self.in_size
        if self.kind == "subpixel":
            self.factor = Fraction(upscaler.scale).limit_denominator(16)
            self.grid = self.factor.denominator  # pixel-unshuffle factor
            self.natural = output_size(self.in_size, upscaler.scale)
        else:
            self.factor, self.grid, self.natural = Fraction(1), 1, self.out_size
        self.pad = (-h % self.grid, -w % self.grid) if self.kind == "subpixel" else (0, 0)
        self.tile = self.overlap = None
        if tile and self.kind in ("subpixel", "vdsr"):
            # convolutions run at 1/grid of the input resolution; + 3 px for the bicubic skip
            context = _conv_radius(upscaler.model) * self.grid + 3
            self.tile = max(self.grid, -(-int(tile) // self.grid) * self.grid)
            self.overlap = -(-context // self.grid) * self.grid
        self._traced = False

    def use_planar(self, source: Optional[PlanarFormat]) -> bool:
        """Take and return flat Y'CbCr frames (``source``'s layout in, 4:2:0 out, tagged BT.709
        for HD) when the whole upscale is one device call: the JAX backend, no tiles, no padding,
        the model's own output size, even output sides. Returns whether it does."""
        out_h, out_w = self.out_size
        if (source is None or source.size != self.in_size or not getattr(self.up, "compiles_per_shape", False)
                or self.tile is not None or any(self.pad) or self.natural != self.out_size or out_h % 2 or out_w % 2):
            return False
        self.planar = (source, PlanarFormat("yuv420p", out_h, out_w, output_matrix(out_w, out_h)))
        return True

    @property
    def model_scale_note(self) -> Optional[str]:
        """A note when the output size is not the model's own scale (bicubic makes up the rest)."""
        if self.kind != "subpixel" or max(abs(a - b) for a, b in zip(self.natural, self.out_size)) <= 1:
            return None
        return (f"x{self.up.scale:g} model asked for x{self.out_size[1] / self.in_size[1]:.3g}: its "
                f"{_fmt_size(self.natural)} output is resized to {_fmt_size(self.out_size)} with bicubic")

    def _run_natural(self, x: np.ndarray) -> np.ndarray:
        return self.up(x, (int(x.shape[1] * self.factor), int(x.shape[2] * self.factor)))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.uint8)
        n = len(frames)
        if n < self.batch and self._traced and getattr(self.up, "compiles_per_shape", False):
            frames = np.concatenate([frames, np.repeat(frames[-1:], self.batch - n, axis=0)])  # no recompile
        self._traced = self._traced or n == self.batch
        if self.planar is not None:  # a device array, not waited for
            out = self.up.planar(frames, self.planar)
            return out if len(frames) == n else out[:n]
        if self.kind not in ("subpixel", "vdsr"):
            return self.up(frames, self.out_size)[:n]
        if self.kind == "vdsr":
            if self.tile is None:
                return self.up(frames, self.out_size)[:n]
            hr = np.stack([imresize(f, size=self.out_size) for f in frames])
            return tiled(lambda t: self.up(t, t.shape[1:3]), hr, self.tile, self.overlap)[:n]
        x = frames
        if any(self.pad):
            x = np.pad(frames, ((0, 0), (0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="symmetric")
        y = self._run_natural(x) if self.tile is None else tiled(self._run_natural, x, self.tile, self.overlap, self.factor)
        y = y[:n, : self.natural[0], : self.natural[1]]
        if self.natural != self.out_size:
            y = np.stack([imresize(f, size=self.out_size) for f in y])
        return y


def load_model(model: Optional[str], scale: Optional[float] = None):
    """A FrameUpscaler for ``model``: a path, a shipped model's name or ``"bicubic"``; None: the
    shipped model trained for ``scale`` when there is one, else the default (x1.5) model."""
    from training.serving import load_upscaler

    if model is None:
        chosen = shipped.for_scale(scale) if scale is not None else None
        model = chosen.name if chosen is not None else shipped.DEFAULT
        if shipped.get(model) is None:
            raise UpscaleError(f"the shipped model is not installed ({DEFAULT_MODEL} is missing): "
                               "pass --model bicubic or --model PATH (a model folder or a .keras file)")
    try:
        return load_upscaler(shipped.resolve(model))
    except ValueError as e:
        if isinstance(e, UpscaleError):
            raise
        raise UpscaleError(str(e)) from None


# --------------------------------------------------------------------------- the pipeline


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


_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while True:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if stop.is_set():
                return False


def _decode_worker(frames: Iterator[np.ndarray], q: queue.Queue, stop: threading.Event) -> None:
    try:
        for f in frames:
            if not _put(q, f, stop):
                return
    except BaseException as e:  # noqa: BLE001 - handed to the main thread
        _put(q, _Failed(e), stop)
        return
    finally:
        close = getattr(frames, "close", None)
        if close:
            close()  # stops the ffmpeg decoder when the run ends early
    _put(q, _END, stop)


class _Encoder(threading.Thread):
    def __init__(self, sink: _Sink, stop: threading.Event, depth: int = 2):
        super().__init__(name="imagesr-encode", daemon=True)
        self.sink, self.stop, self.q = sink, stop, queue.Queue(maxsize=depth)
        self.error: Optional[BaseException] = None
        self.written = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    item = self.q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _END:
                    return
                self.sink.write(item)
                self.written += len(item)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e

    def put(self, item) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def _next_frame(q: queue.Queue, encoder: Optional[_Encoder] = None):
    while True:
        if encoder is not None and encoder.error is not None:
            raise encoder.error
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(item, _Failed):
            raise item.exc
        return item


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
) -> UpscaleResult:
    """Upscale ``input`` (video, frame folder, image) into ``output`` (video, folder, image).

    ``model``: None (the shipped model), ``"bicubic"``, a model folder or ``.keras`` file, or a
    ready FrameUpscaler. ``size``: ``"WxH"`` or (height, width); ``scale``: instead of size
    (default x1.5). ``batch`` frames per model call; ``tile``: network tiles of that many
    pixels. ``fps``: frame rate for a video made from a folder or an image (default 25).
    ``preset``: the H.264 encoder's speed/size trade-off (x264 preset) for a video output.
    ``progress``: True (stderr), a stream, or None/False for no progress line and notes.
    ``planar``: video to video, frames stay Y'CbCr from decoder to encoder and the colour
    conversions run on the device, when the upscale is one device call (JAX, see
    :meth:`FrameProcessor.use_planar`); None: whenever possible on an accelerator, False:
    never (RGB pipes), True: required (UpscaleError otherwise).
    """
    progress = sys.stderr if progress is True else (progress or None)
    if isinstance(size, str):
        size = parse_size(size)
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
    source = open_source(input)
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

    stop = threading.Event()
    frames_q: queue.Queue = queue.Queue(maxsize=2 * batch)
    decoder = sink = encoder = processor = None
    try:
        upscaler = model if hasattr(model, "kind") and callable(model) else load_model(model, scale)
        planar_in = None
        processor = FrameProcessor(upscaler, in_size, out_size, tile=tile, batch=batch)
        getattr(upscaler, "compiles_per_shape", None)  # the Keras backend loads now, not on the clock
        if source.kind == "video":  # the route is chosen before decoding
            wanted = planar if planar is not None else getattr(upscaler, "on_accelerator", False)
            if out_kind == "video" and wanted and processor.use_planar(source.info.planar_format()):
                planar_in = processor.planar[0]
        if planar and planar_in is None:
            raise UpscaleError("the planar route needs a video (8-bit 4:2:0 or 4:4:4) to video, the JAX backend, "
                               "no --tile, and the model's own output size with even sides")
        decoder = threading.Thread(target=_decode_worker, args=(source.frames(planar_in), frames_q, stop),
                                   name="imagesr-decode", daemon=True)
        decoder.start()
        first = _next_frame(frames_q)
        if first is _END:
            raise MediaError(input, "no frames")
        if planar_in is None and first.shape[:2] != tuple(in_size):
            raise MediaError(input, f"frame 0 is {_fmt_size(first.shape[:2])}, not {_fmt_size(in_size)} as probed")
        notes = [n for n in [processor.model_scale_note] if n]
        alpha = source.path if source.kind == "image" else (list_frames(source.path)[0] if source.kind == "folder" else None)
        if alpha and has_alpha(alpha):
            notes.append(f"{alpha}: its transparency is composited on white (the output has no alpha channel)")
        if source.info is not None and source.info.variable_rate and source.fps:
            notes.append(f"variable frame rate: resampled to a constant {float(source.fps):.3g} fps as the timestamps "
                         "say (frames repeated or dropped), in sync with the audio")

        if out_kind == "video":
            rate = source.fps or Fraction(fps or DEFAULT_FPS).limit_denominator(1001)
            sink = VideoSink(out_path, out_size, rate, audio_from=source.path if source.has_audio else None,
                             preset=preset, planar=processor.planar and processor.planar[1])
            notes += sink.notes
        elif out_kind == "folder":
            sink = FolderSink(out_path, source.names)
        else:
            sink = ImageSink(out_path, source.path)
        if progress:
            for n in notes:
                progress.write(f"[upscale] note: {n}\n")
        encoder = _Encoder(sink, stop)
        encoder.start()
        meter = ProgressLine("upscale", source.total, "frames", progress)
        t0 = time.perf_counter()
        done, pending, item = 0, [first], None
        while item is not _END:
            item = _next_frame(frames_q, encoder)
            if item is not _END:
                if item.shape != first.shape:
                    raise MediaError(input, f"frame {done + len(pending)} is {_fmt_size(item.shape[:2])}, "
                                            f"the first frame was {_fmt_size(in_size)}")
                pending.append(item)
            if pending and (len(pending) == batch or item is _END):
                encoder.put(processor(np.stack(pending)))
                done += len(pending)
                pending = []
                meter.update(done)
        encoder.put(_END)
        encoder.join()
        if encoder.error is not None:
            raise encoder.error
        sink.commit()
        seconds = time.perf_counter() - t0
        meter.update(done, final=True)
    except BaseException:
        stop.set()
        if sink is not None:
            if encoder is not None:
                encoder.join(timeout=5)
            sink.abort()
        raise
    finally:
        stop.set()
        if decoder is not None:
            decoder.join(timeout=5)
        lock.release()
    return UpscaleResult(
        output=out_path, frames=done, seconds=seconds, model=upscaler.name, kind=upscaler.kind,
        parameters=upscaler.parameters, input_size=tuple(in_size), output_size=tuple(out_size),
        audio=getattr(sink, "audio", None), planar=processor.planar is not None,
    )


__all__ = ["DEFAULT_MODEL", "FrameProcessor", "UpscaleError", "UpscaleResult", "VideoSink", "FolderSink",
           "ImageSink", "open_source", "output_kind", "parse_size", "target_size", "tiled", "upscale"]
