"""The arguments of an upscale, checked before anything loads: sizes, scales, frame rates,
presets, and what kind of output a path names."""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Optional, Tuple

from imagesr.core import shipped
from imagesr.core.errors import UserError
from imagesr.core.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from imagesr.core.media.files import url_scheme
from imagesr.core.resize import output_size

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


@dataclass(frozen=True)
class UpscaleOptions:
    """One upscale's settings, checked and with the codec's defaults filled in (``upscale``
    documents each): one bundle from the command line to the decoder, the sink and the encoder."""

    size: Optional[Size] = None
    scale: Optional[float] = None
    batch: int = 4
    tile: Optional[int] = None
    fps: Optional[float] = None
    planar: Optional[bool] = None
    codec: str = "libx264"
    crf: Optional[int] = None
    preset: Optional[str] = None
    pix_fmt: Optional[str] = None
    format: Optional[str] = None
    realtime: Optional[bool] = None
    resume: bool = False
    segment_seconds: float = 10.0
    quality: Optional[int] = None


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


def output_kind(path: str, codec: str = "libx264", fmt: Optional[str] = None) -> str:
    """"video", "stream" (``-`` or a URL), "image" or "folder", from OUTPUT's extension (or it
    being / ending like a folder)."""
    if str(path) == "-" or url_scheme(path) is not None:
        return "stream"
    low = str(path).lower()
    if fmt:
        return "video"
    if low.endswith(VIDEO_EXTENSIONS):
        if codec == "libx264" and not low.endswith(H264_CONTAINERS):
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


# --------------------------------------------------------------------------- encoder options

# Muxers for outputs without an extension: one that streams, by the URL's scheme.
STREAM_FORMATS = {"-": "mpegts", "udp": "mpegts", "srt": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts",
                  "rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp", "rtsps": "rtsp"}
CRF_RANGE = (0, 63)


def stream_format(path: str, fmt: Optional[str]) -> Optional[str]:
    """The muxer of a stream output: ``--format``, else what its scheme streams best."""
    if fmt:
        return fmt
    if str(path) == "-":
        return STREAM_FORMATS["-"]
    scheme = url_scheme(path)
    if scheme not in STREAM_FORMATS:
        raise UpscaleError(f"{path}: give --format for a {scheme}:// output (e.g. --format mpegts)")
    return STREAM_FORMATS[scheme]


@functools.lru_cache(maxsize=None)
def _ffmpeg_list(what: str) -> str:
    from imagesr.core.media import ffmpeg_binary

    return subprocess.run([ffmpeg_binary(), "-hide_banner", *what.split()], capture_output=True, text=True,
                          errors="replace").stdout


def available_encoders() -> Tuple[str, ...]:
    """Video encoders of the local ffmpeg (``ffmpeg -encoders``)."""
    return tuple(m.group(1) for m in re.finditer(r"^\s*V\S*\s+(\S+)", _ffmpeg_list("-encoders"), re.M))


def encoder_pixel_formats(codec: str) -> Tuple[str, ...]:
    m = re.search(r"Supported pixel formats: (.*)", _ffmpeg_list(f"-h encoder={codec}"))
    return tuple(m.group(1).split()) if m else ()


def check_encoder(codec: str, crf: Optional[int], preset: Optional[str], pix_fmt: Optional[str],
                  fmt: Optional[str]) -> None:
    """One line for an encoder option the local ffmpeg cannot honour (before anything loads)."""
    encoders = available_encoders()
    if codec not in encoders:
        like = [e for e in encoders if codec.split("_")[0] in e][:6] or ["libx264", "libx265", "libsvtav1"]
        raise UpscaleError(f"--codec {codec!r}: this ffmpeg has no such video encoder (e.g. {', '.join(like)}; "
                           "ffmpeg -encoders lists them)")
    if crf is not None and not (CRF_RANGE[0] <= crf <= CRF_RANGE[1]):
        raise UpscaleError(f"--crf must be between {CRF_RANGE[0]} and {CRF_RANGE[1]}, got {crf}")
    if preset is not None and codec in ("libx264", "libx265") and preset not in X264_PRESETS:
        raise UpscaleError(f"--preset {preset!r}: choose one of {', '.join(X264_PRESETS)}")
    formats = encoder_pixel_formats(codec)
    if pix_fmt is not None and formats and pix_fmt not in formats:
        raise UpscaleError(f"--pix-fmt {pix_fmt!r}: {codec} takes {' '.join(formats)}")
    if fmt is not None and not re.search(rf"^\s*E\S*\s+(\S+,)*{re.escape(fmt)}(,\S+)*\s", _ffmpeg_list("-muxers"), re.M):
        raise UpscaleError(f"--format {fmt!r}: this ffmpeg has no such muxer (ffmpeg -muxers lists them; e.g. mpegts, "
                           "nut, matroska, mp4, flv)")


def default_preset(codec: str) -> Optional[str]:
    return VIDEO_PRESET if codec in ("libx264", "libx265") else None


def default_crf(codec: str) -> Optional[int]:
    return VIDEO_CRF if codec in ("libx264", "libx265") else None
