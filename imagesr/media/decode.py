"""Decoding frames: a video through an ffmpeg pipe one frame at a time (stride and limit
applied inside ffmpeg), a folder of frames (DAVIS ``JPEGImages/<res>/<sequence>/``) in name
order; memory holds one frame, never a whole video."""

from __future__ import annotations

import os
import re
import subprocess
from fractions import Fraction
from typing import Iterator, List, Optional

import numpy as np

from imagesr.colour import SWS_MATRIX, PlanarFormat
from imagesr.media.files import (
    MAX_MEGAPIXELS,
    MediaError,
    _stderr_tail,
    check_pixels,
    ffmpeg_binary,
    ffmpeg_path,
    is_image_path,
)
from imagesr.media.images import decode_image
from imagesr.media.probe import VideoInfo, probe_video


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
    matrix (:mod:`imagesr.colour`: its tag, else BT.709 for HD and BT.601 below). With
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
    import ffmpeg as ffmpeg_python

    info = info or probe_video(path)
    w, h = info.width, info.height
    check_pixels(path, w, h, max_megapixels)
    if planar is not None and planar.size != (h, w):
        raise ValueError(f"planar format {planar.width}x{planar.height} differs from the video's {w}x{h}")
    frame_bytes = planar.frame_bytes if planar is not None else w * h * 3
    stream = ffmpeg_python.input(ffmpeg_path(path))
    stream = stream[str(info.stream_index)] if info.stream_index is not None else stream["v:0"]
    if stride > 1:
        stream = stream.filter("select", f"not(mod(n,{stride}))")
    if planar is None:
        stream = stream.filter("scale", in_color_matrix=SWS_MATRIX[info.matrix],
                               in_range="full" if info.full_range else "limited").filter("format", "rgb24")
    out_kwargs = {"format": "rawvideo", "pix_fmt": planar.pix_fmt if planar is not None else "rgb24",
                  "vsync": "passthrough" if constant_rate is None else "cfr"}
    if constant_rate is not None:
        out_kwargs["r"] = str(constant_rate)
    if limit is not None:
        out_kwargs["vframes"] = limit
    args = stream.output("pipe:", **out_kwargs).global_args("-nostdin", "-loglevel", "error").compile(cmd=ffmpeg_binary())
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=frame_bytes)
    produced = 0
    try:
        while limit is None or produced < limit:
            buf = proc.stdout.read(frame_bytes)
            if not buf:
                break
            if len(buf) < frame_bytes:
                raise MediaError(path, f"stream ended inside frame {produced} (truncated file)")
            produced += 1
            frame = np.frombuffer(buf, np.uint8)
            yield frame if planar is not None else frame.reshape(h, w, 3)
    finally:
        if proc.poll() is None:
            proc.stdout.close()
        stderr = proc.stderr.read()
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0 and (limit is None or produced < limit):
        raise MediaError(path, f"ffmpeg failed after {produced} frames: {_stderr_tail(stderr)}")
    if produced == 0:
        raise MediaError(path, f"no frames decoded ({_stderr_tail(stderr)})")
    if strict and info.frame_count and (limit is None or produced < limit):
        expected = -(-info.frame_count // stride)
        if produced < expected:
            raise MediaError(path, f"truncated: decoded {produced} of {expected} frames ({_stderr_tail(stderr)})")
    if strict and stderr.strip() and (limit is None or produced < limit):
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
    """Sorted image files of a frame folder (DAVIS sequence, exported frames)."""
    if not os.path.isdir(folder):
        raise MediaError(folder, "no such folder")
    names = sorted(n for n in os.listdir(folder) if is_image_path(n))
    return [os.path.join(folder, n) for n in names]


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
