"""The arguments of an upscale, checked before anything loads: sizes, scales, frame rates,
presets, and what kind of output a path names."""

from __future__ import annotations

import math
import os
import re
from typing import Optional, Tuple

from imagesr import shipped
from imagesr.errors import UserError
from imagesr.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from imagesr.resize import output_size

DEFAULT_MODEL = os.path.join(shipped.ASSETS, shipped.DEFAULT)
DEFAULT_SCALE = 1.5
DEFAULT_FPS = 25.0  # frame folders and images have no frame rate of their own
VIDEO_CRF = 18
VIDEO_PRESET = "veryfast"  # live: the encoder must keep up with the model on few cores
MAX_SIDE = 16384  # H.264's largest frame side; far beyond it a frame no longer fits in memory
MIN_TILE = 64  # smaller tiles are mostly overlap: hours per frame for nothing
FPS_RANGE = (0.1, 1000.0)
IMAGE_QUALITY = 95  # JPEG and WebP image outputs, unless --quality says otherwise
LOSSY_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".webp")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

Size = Tuple[int, int]  # (height, width)


class UpscaleError(UserError):
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


# --------------------------------------------------------------------------- outputs


# Containers that hold the H.264 we write, and AAC when the input's audio must be re-encoded;
# the others ffmpeg reads but would refuse (.webm: VP8/VP9/AV1 only) or mangle, late.
H264_CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv", ".ts", ".flv", ".avi")


def image_quality(path: str, quality: Optional[int]) -> Optional[int]:
    """The encoder quality of an image output: ``quality`` (1-100) or :data:`IMAGE_QUALITY` for a
    .jpg or .webp image, None for any other output (refused when a quality was asked for)."""
    lossy = str(path).lower().endswith(LOSSY_IMAGE_EXTENSIONS)
    if quality is None:
        return IMAGE_QUALITY if lossy else None
    if not lossy:
        raise UpscaleError(f"--quality applies to .jpg and .webp image outputs, not {path}")
    if not 1 <= int(quality) <= 100:
        raise UpscaleError(f"--quality must be between 1 and 100, got {quality}")
    return int(quality)


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
