"""What is being upscaled (:class:`Source`): a video file, a live stream (standard input, a URL,
a capture device), a frame folder, an animated GIF/WebP or one image."""

from __future__ import annotations

import collections
import math
import os
import subprocess
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from functools import reduce
from typing import Iterator, List, Optional

import numpy as np

from imagesr.core.colour import PlanarFormat
from imagesr.core.media import (
    MAX_MEGAPIXELS,
    MediaError,
    VideoDecoder,
    VideoInfo,
    animation_frames,
    check_pixels,
    decode_image,
    ffmpeg_binary,
    is_capture_device,
    is_image_path,
    is_stream,
    iter_folder_frames,
    list_frames,
    parse_banner,
    probe_video,
)
from imagesr.core.media.files import _stderr_tail
from imagesr.upscale.options import Size

REPEAT = None  # a frame slot showing the previous output frame again (an animation frame held, a dropped frame)
MAX_ANIMATION_FPS = 100


@dataclass
class Source:
    """What is being upscaled: a video file, a live stream, a frame folder, an animation or one image."""

    kind: str  # "video" | "stream" | "folder" | "image" | "animation"
    path: str
    total: Optional[int]  # frame slots, when known
    fps: Optional[Fraction]  # videos, streams and animations
    has_audio: bool = False
    names: Optional[List[str]] = None  # frame folders: the frames' file names
    info: Optional[VideoInfo] = field(default=None, repr=False)  # videos and streams: the probe
    reader: Optional["LiveReader"] = field(default=None, repr=False)  # streams: the process reading it
    animation: Optional[tuple] = field(default=None, repr=False)  # (frames, durations in ms)
    notes: List[str] = field(default_factory=list)
    max_megapixels: float = MAX_MEGAPIXELS  # frames larger than this are refused before they are decoded

    def frame_size(self) -> Size:
        """(height, width) of the frames, before any is upscaled (a video's from its probe; an
        image's or a folder's first frame decoded: EXIF orientation can swap the sides)."""
        if self.info is not None:
            return self.info.height, self.info.width
        if self.animation is not None:
            return self.animation[0][0].shape[:2]
        first = self.path if self.kind == "image" else list_frames(self.path)[0]
        return decode_image(first, max_megapixels=self.max_megapixels).shape[:2]

    @property
    def deep(self) -> bool:
        """More than 8 bits per sample: decoded as 16-bit RGB so 10-bit video stays 10-bit."""
        return self.info is not None and self.info.bit_depth > 8

    def decoder(self, planar: Optional[PlanarFormat] = None, realtime: bool = False, seek: Optional[float] = None,
                side_fd: Optional[int] = None) -> VideoDecoder:
        """A video's or a stream's decoder (frames lazily, in whichever thread iterates)."""
        info = self.info
        deinterlace = info.interlaced
        if self.kind == "stream":
            return VideoDecoder("pipe:0", info, strict=False, planar=planar, deep=self.deep, deinterlace=deinterlace,
                                side_fd=side_fd, timestamps=True, stdin=self.reader.proc.stdout,
                                input_args=("-f", "nut"))
        # A variable-rate video is written at a constant rate: resample it to that rate as its
        # timestamps say, or its frames would drift from its (copied) audio.
        rate = self.fps if info.variable_rate else None
        return VideoDecoder(self.path, info, planar=planar, constant_rate=rate, deep=self.deep,
                            deinterlace=deinterlace, realtime=realtime, seek=seek, strict=seek is None)

    def frames(self) -> Iterator:
        """A folder's, an image's or an animation's frames (``REPEAT`` for a slot that holds the
        previous one)."""
        if self.kind == "folder":
            return iter_folder_frames(self.path, max_megapixels=self.max_megapixels)
        if self.kind == "image":
            return (decode_image(p, max_megapixels=self.max_megapixels) for p in [self.path])
        if self.kind == "animation":
            return _animation_slots(*self.animation, self.fps)
        raise ValueError(f"{self.kind}: use decoder()")

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _animation_slots(frames, durations, fps: Fraction) -> Iterator:
    """Each frame once, then ``REPEAT`` for every further slot of ``1/fps`` it stays on screen
    (slot i shows what is on screen at i / fps)."""
    starts = np.cumsum([0] + list(durations)) / 1000.0
    slots = max(1, math.ceil(starts[-1] * fps - 1e-9))
    current = -1
    for i in range(slots):
        k = int(np.searchsorted(starts, float(i / fps) + 1e-9, side="right") - 1)
        k = min(k, len(frames) - 1)
        if k == current:
            yield REPEAT
            continue
        current = k
        yield frames[k]


def _animation_rate(durations: List[int], fps: Optional[float]) -> tuple:
    """(rate, note): ``fps`` when given, else the rate whose slots every duration fills exactly
    (their greatest common divisor), up to 100 fps."""
    if fps:
        rate = Fraction(fps).limit_denominator(1001)
    else:
        rate = Fraction(1000, reduce(math.gcd, durations))
        if rate > MAX_ANIMATION_FPS:
            rate = Fraction(MAX_ANIMATION_FPS)
    shortest = min(durations)
    note = None
    if shortest / 1000.0 < 1 / rate - 1e-9:
        note = (f"frames shorter than one frame at {float(rate):g} fps ({shortest} ms) may not be shown; "
                "a higher --fps shows every one")
    return rate, note


def open_source(path: str, fps: Optional[float] = None, max_megapixels: float = MAX_MEGAPIXELS) -> Source:
    """Classify and probe the input (raises MediaError with the reason for a bad one, a video
    whose frames are over ``max_megapixels`` included)."""
    path = str(path)
    if is_stream(path):
        reader = LiveReader(path)
        try:
            info = reader.wait_for_banner()
        except BaseException:
            reader.close()
            raise
        rate = Fraction(info.fps).limit_denominator(1001) if info.fps and info.fps > 0 else Fraction(25)
        return Source("stream", path, None, rate, has_audio=info.has_audio, info=info, reader=reader)
    if os.path.isdir(path):
        files = list_frames(path)
        if not files:
            raise MediaError(path, "folder holds no image frames")
        return Source("folder", path, len(files), None, names=[os.path.basename(f) for f in files],
                      max_megapixels=max_megapixels)
    if os.path.isfile(path) and is_image_path(path):
        anim = animation_frames(path) if path.lower().endswith((".gif", ".webp", ".png")) else None
        if anim is not None:
            rate, note = _animation_rate(anim[1], fps)
            source = Source("animation", path, None, rate, animation=anim, notes=[note] if note else [])
            source.total = sum(1 for _ in _animation_slots(anim[0], anim[1], rate))
            return source
        return Source("image", path, 1, None, max_megapixels=max_megapixels)
    info = probe_video(path)
    check_pixels(path, info.width, info.height, max_megapixels)
    rate = Fraction(info.fps).limit_denominator(1001) if info.fps and info.fps > 0 else None
    total = info.frame_count
    if total is None and info.duration and info.fps:
        total = int(round(info.duration * info.fps))  # an estimate, for the ETA only
    return Source("video", path, total, rate, has_audio=info.has_audio, info=info, max_megapixels=max_megapixels)


class LiveReader:
    """The one process that reads a live source (``-``, a URL, a capture device): it remuxes the
    video, audio and subtitles as they come into NUT on a pipe, which the decoder reads. What
    ffmpeg says about the source when it opens it (:meth:`wait_for_banner`) is the probe: the
    source cannot be opened a second time."""

    def __init__(self, source: str):
        self.source = source
        dev = ["-f", "v4l2"] if is_capture_device(source) else []
        src = "pipe:0" if source == "-" else source
        # at most a second of the stream goes to identifying it: that much arrives in a burst at the start
        cmd = [ffmpeg_binary(), "-hide_banner", "-nostats", "-loglevel", "info", "-analyzeduration", "1000000",
               *dev, "-i", src,
               "-map", "0:V:0", "-map", "0:a?", "-map", "0:s?", "-c", "copy", "-f", "nut", "-flush_packets", "1",
               "pipe:1"]
        self.proc = subprocess.Popen(cmd, stdin=None if source == "-" else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        from imagesr.core.media.encode import widen_pipe

        widen_pipe(self.proc.stdout)
        self.banner: List[str] = []
        self.tail = collections.deque(maxlen=20)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True, name="imagesr-live-log")
        self._thread.start()

    def _read(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if not self._ready.is_set():
                self.banner.append(line)
                if line.startswith(("Output #0", "Stream mapping")):
                    self._ready.set()
            else:
                self.tail.append(line)
        self._ready.set()

    def wait_for_banner(self) -> VideoInfo:
        """Wait until ffmpeg has opened the source (a live source may take its time) and return
        what it said about it."""
        self._ready.wait()
        text = "\n".join(self.banner)
        if not any(ln.startswith(("Output #0", "Stream mapping")) for ln in self.banner):
            self.proc.wait()
            raise MediaError(self.source, f"cannot read this stream ({_stderr_tail(text)})")
        head = text.split("Stream mapping")[0].split("Output #0")[0]
        return parse_banner(head, self.source)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
