"""Decoding frames: a video through an ffmpeg pipe one frame at a time (stride and limit
applied inside ffmpeg), a folder of frames (DAVIS ``JPEGImages/<res>/<sequence>/``) in name
order; memory holds one frame, never a whole video."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from fractions import Fraction
from typing import Iterator, List, Optional

import numpy as np

from imagesr.core.colour import SWS_MATRIX, PlanarFormat
from imagesr.core.media.files import (
    MAX_MEGAPIXELS,
    MediaError,
    _stderr_tail,
    check_pixels,
    ffmpeg_binary,
    ffmpeg_path,
    is_image_path,
    natural_key,
    passthrough_timing,
)
from imagesr.core.media.images import decode_image
from imagesr.core.media.probe import VideoInfo, probe_video


def iter_video_frames(
    path: str,
    stride: int = 1,
    limit: Optional[int] = None,
    info: Optional[VideoInfo] = None,
    strict: bool = True,
    planar: Optional[PlanarFormat] = None,
    constant_rate: Optional[Fraction] = None,
    max_megapixels: Optional[float] = MAX_MEGAPIXELS,
) -> Iterator[np.ndarray]:
    """Yield HxWx3 uint8 RGB frames 0, stride, 2*stride, ... (at most ``limit``) of a video.

    Frames stream through a pipe; memory holds one frame. RGB is converted with the stream's
    matrix (:mod:`imagesr.core.colour`: its tag, else BT.709 for HD and BT.601 below). With
    ``planar`` (usually ``info.planar_format()``), frames come as that format's flat uint8
    vectors instead, unconverted. ``constant_rate``: frames resampled in time to that rate
    (repeated or dropped as their timestamps say), for a variable-rate video written out at a
    constant one. A frame size over ``max_megapixels`` is refused before decoding (None: no
    budget). Only the probed stream is decoded (``info.stream_index``: the first video
    stream that is not cover art). Raises MediaError if ffmpeg fails or, with ``strict``, if
    fewer frames arrive than the container promised or ffmpeg reports a premature end or
    corrupt data (a truncated file), or the stream ends inside a frame.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    info = info or probe_video(path)
    check_pixels(path, info.width, info.height, max_megapixels)
    decoder = VideoDecoder(path, info, stride=stride, limit=limit, strict=strict, planar=planar,
                           constant_rate=constant_rate)
    return iter(decoder)


class VideoDecoder:
    """One ffmpeg process decoding a video's probed stream into frames, one at a time.

    ``source``: a file, or (with ``stdin``, a pipe to read it from) ``pipe:0``; ``input_args``
    go before it (``-f nut``). Frames: RGB uint8, 16-bit RGB with ``deep`` (uint16, for
    10-bit and deeper video), or ``planar``'s flat Y'CbCr vectors. Filters, in order:
    ``deinterlace`` (yadif, frames flagged interlaced only), ``constant_rate`` (resampled in
    time), the colour conversion. ``realtime``: read a file at its own pace (``-re``).
    ``seek``: start at that time (s; accurate: frames before it are decoded and dropped).
    ``side_fd``: also write the input's audio and subtitles, copied, as NUT into that pipe (a
    live source's passthrough). ``timestamps``: record the first frame's time on the input's
    clock (:attr:`first_pts`), which places the output video against its audio.
    """

    def __init__(self, source: str, info: VideoInfo, stride: int = 1, limit: Optional[int] = None,
                 strict: bool = True, planar: Optional[PlanarFormat] = None, constant_rate: Optional[Fraction] = None,
                 deep: bool = False, deinterlace: bool = False, realtime: bool = False, seek: Optional[float] = None,
                 side_fd: Optional[int] = None, timestamps: bool = False, stdin=None, input_args=()):
        self.source, self.info, self.limit, self.strict, self.planar = str(source), info, limit, strict, planar
        self.stride = stride
        w, h = info.width, info.height
        if planar is not None and planar.size != (h, w):
            raise ValueError(f"planar format {planar.width}x{planar.height} differs from the video's {w}x{h}")
        self.shape = None if planar is not None else (h, w, 3)
        self.dtype = np.dtype("<u2" if deep and planar is None else np.uint8)
        self.frame_bytes = planar.frame_bytes if planar is not None else w * h * 3 * self.dtype.itemsize
        filters = []
        if stride > 1:
            filters.append(f"select=not(mod(n\\,{stride}))")
        if deinterlace:
            filters.append("yadif=mode=send_frame:deint=interlaced")
        if constant_rate is not None:
            filters.append(f"fps={constant_rate}")
        if planar is None:
            filters.append(f"scale=in_color_matrix={SWS_MATRIX[info.matrix]}:in_range={'full' if info.full_range else 'limited'},"
                           f"format={'rgb48le' if deep else 'rgb24'}")
        self._ts_read = None
        pass_fds = []
        if timestamps:
            self._ts_read, ts_write = os.pipe()
            pass_fds.append(ts_write)
            filters.append(f"metadata=mode=add:key=imagesr:value=1,"
                           f"metadata=mode=print:key=imagesr:file=pipe\\\\:{ts_write}:direct=1")
        stream = f"0:{info.stream_index}" if info.stream_index is not None and stdin is None else "0:v:0"
        cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", *(["-re"] if realtime else [])]
        if seek:
            cmd += ["-ss", f"{seek:.6f}"]
        cmd += [*input_args, "-i", self.source if stdin is not None else ffmpeg_path(self.source), "-map", stream]
        if filters:
            cmd += ["-vf", ",".join(filters)]
        cmd += ["-f", "rawvideo", "-pix_fmt", planar.pix_fmt if planar is not None else ("rgb48le" if deep else "rgb24"),
                *passthrough_timing()]
        if limit is not None:
            cmd += ["-frames:v", str(limit)]
        cmd += ["pipe:1"]
        if side_fd is not None:
            pass_fds.append(side_fd)
            cmd += ["-map", "0:a?", "-map", "0:s?", "-c", "copy", "-f", "nut", "-flush_packets", "1", f"pipe:{side_fd}"]
        self.first_pts: Optional[float] = None
        self._first = threading.Event()
        self.proc = subprocess.Popen(cmd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds)
        for fd in pass_fds:
            os.close(fd)  # the child holds them now
        from imagesr.core.media.encode import widen_pipe

        widen_pipe(self.proc.stdout)
        self._stderr = bytearray()
        self._drain = threading.Thread(target=self._read_stderr, daemon=True, name="imagesr-decoder-log")
        self._drain.start()
        if self._ts_read is not None:
            threading.Thread(target=self._read_timestamps, daemon=True, name="imagesr-decoder-ts").start()
        self.produced = 0

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            if len(self._stderr) < 1 << 20:
                self._stderr += line

    def _read_timestamps(self) -> None:
        with os.fdopen(self._ts_read, "r", errors="replace") as f:
            for line in f:
                m = re.search(r"pts_time:(-?[\d.e+-]+)", line)
                if m and self.first_pts is None:
                    self.first_pts = float(m.group(1))
                    self._first.set()
        self._first.set()

    def first_timestamp(self, timeout: float = 60.0) -> Optional[float]:
        """The first frame's time (s) on the input's clock (after at least one frame was read)."""
        self._first.wait(timeout)
        return self.first_pts

    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def close(self) -> None:
        """Stop ffmpeg (when the run stops early) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self._drain.join(timeout=5)

    def __iter__(self) -> Iterator[np.ndarray]:
        path, limit, info = self.source, self.limit, self.info
        try:
            while limit is None or self.produced < limit:
                buf = self.proc.stdout.read(self.frame_bytes)
                if not buf:
                    break
                if len(buf) < self.frame_bytes:
                    raise MediaError(path, f"stream ended inside frame {self.produced} (truncated file)")
                self.produced += 1
                frame = np.frombuffer(buf, self.dtype)
                yield frame if self.shape is None else frame.reshape(self.shape)
        finally:
            if self.proc.poll() is None:
                self.proc.stdout.close()
            rc = self.proc.wait()
            self._drain.join(timeout=30)
        stderr = bytes(self._stderr)
        produced, stride = self.produced, self.stride
        if rc != 0 and (limit is None or produced < limit):
            raise MediaError(path, f"ffmpeg failed after {produced} frames: {_stderr_tail(stderr)}")
        if produced == 0:
            raise MediaError(path, f"no frames decoded ({_stderr_tail(stderr)})")
        if self.strict and info.frame_count and (limit is None or produced < limit):
            expected = -(-info.frame_count // stride)
            if produced < expected:
                raise MediaError(path, f"truncated: decoded {produced} of {expected} frames ({_stderr_tail(stderr)})")
        if self.strict and stderr.strip() and (limit is None or produced < limit):
            # ffmpeg said it hit corrupt data or the end of a cut file but exited 0 (a Matroska
            # file states no frame count): do not pass damaged or missing frames silently.
            text = stderr.decode("utf-8", "replace")
            if re.search(r"(?i)(ended prematurely|truncat|partial file)", text):
                expected = info.expected_frames
                of = f" of about {-(-expected // stride)}" if expected else ""
                raise MediaError(path, f"truncated: decoded {produced}{of} frames ({_stderr_tail(text, 1)})")
            if re.search(r"(?i)(invalid data|corrupt|error while decoding)", text):
                raise MediaError(path, f"decode errors: {_stderr_tail(text)}")


def list_frames(folder: str) -> List[str]:
    """Image files of a frame folder (DAVIS sequence, exported frames) in natural order:
    ``2.png`` before ``10.png``, as numbered frames mean (zero-padded names sort the same)."""
    if not os.path.isdir(folder):
        raise MediaError(folder, "no such folder")
    names = sorted((n for n in os.listdir(folder) if is_image_path(n)), key=natural_key)
    return [os.path.join(folder, n) for n in names]


def frame_number_gaps(names: List[str]) -> Optional[str]:
    """A note when numbered frames skip numbers (``1, 2, 4``): the video shows them as
    consecutive, so the numbering gap is said, not hidden. None when there is no gap (or
    the names carry no frame numbers)."""
    numbers = []
    for n in names:
        m = re.search(r"(\d+)\D*$", os.path.splitext(os.path.basename(n))[0])
        if m is None:
            return None
        numbers.append(int(m.group(1)))
    missing = sorted(set(range(min(numbers), max(numbers) + 1)) - set(numbers)) if numbers else []
    if not missing:
        return None
    shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
    return (f"the frame numbers have gaps: {len(missing)} missing ({shown}); the frames are written one after "
            "another, without gaps")


def iter_folder_frames(folder: str, stride: int = 1, limit: Optional[int] = None,
                       max_megapixels: Optional[float] = MAX_MEGAPIXELS) -> Iterator[np.ndarray]:
    """Frames of an image-sequence folder, sorted by name, with the same stride/limit as video."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    files = list_frames(folder)[::stride]
    if limit is not None:
        files = files[:limit]
    if not files:
        raise MediaError(folder, "folder holds no image frames")
    for f in files:
        yield decode_image(f, max_megapixels=max_megapixels)


def iter_frames(source: str, stride: int = 1, limit: Optional[int] = None,
                max_megapixels: Optional[float] = MAX_MEGAPIXELS) -> Iterator[np.ndarray]:
    """Frames of a video file, a frame folder or a single image, by what ``source`` is."""
    if os.path.isdir(source):
        return iter_folder_frames(source, stride, limit, max_megapixels)
    if is_image_path(source):
        return iter([decode_image(source, max_megapixels=max_megapixels)])
    return iter_video_frames(source, stride, limit, max_megapixels=max_megapixels)
