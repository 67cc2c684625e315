"""What every media module shares: the error type, the extensions, and finding ffmpeg.

The ffmpeg binary is, in order: ``$IMAGESR_FFMPEG``, ``ffmpeg`` on PATH, the static binary
of the ``imageio-ffmpeg`` package if installed. ``ffprobe`` is used when present next to it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
from typing import BinaryIO, List, Optional, Tuple, Union

from imagesr.core.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".y4m", ".wmv")

PathOrBytes = Union[str, os.PathLike, bytes]


class MediaError(UserError):
    """A file that cannot be decoded; the message names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FFmpegNotFound(MediaError):
    """No ffmpeg binary could be found."""


# The pixel budget of one frame (an image, a video's frame) by default: decoding, degrading and
# cutting one frame takes memory in proportion (BENCHMARKS.md); 8K UHD (33 megapixels) fits.
MAX_MEGAPIXELS = 40.0


def check_pixels(path, width: int, height: int, max_megapixels: Optional[float] = MAX_MEGAPIXELS) -> None:
    """Refuse a frame of ``width`` x ``height`` over the pixel budget, before it is decoded (a
    140 KB PNG can promise 12000x12000 pixels: 432 MB as RGB, gigabytes once resized)."""
    if max_megapixels is not None and width * height > max_megapixels * 1e6:
        raise MediaError(path, f"{width}x{height} is {width * height / 1e6:.1f} megapixels a frame, over the budget of "
                               f"{max_megapixels:g} (--max-megapixels)")


def special_kind(mode: int) -> Optional[str]:
    """What a file that is not a regular file is (None for a regular file)."""
    for test, kind in ((stat.S_ISREG, None), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def not_regular(path) -> Optional[str]:
    """Why a local path is not a regular file one can read to its end (a link is followed:
    a link to /dev/zero is a device), or None when it is one. A missing path is not judged."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else None
    kind = special_kind(mode)
    return f"{kind}, not a regular file; only regular files are read" if kind else None


def open_regular(path) -> BinaryIO:
    """Open a local file for reading if it is a regular file, else raise MediaError with its
    type: opening a FIFO blocks until someone writes to it, and a device such as /dev/zero
    never ends. Opened without blocking, checked, then read as usual (bounded by its size)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise MediaError(path, "no such file") from None
    except OSError as e:
        raise MediaError(path, f"cannot read: {e.strerror or e}") from None
    kind = special_kind(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise MediaError(path, f"{kind}, not a regular file; only regular files are read")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path) -> bytes:
    """The bytes of a regular local file (:func:`open_regular`), no more than its size."""
    with open_regular(path) as f:
        return f.read(os.fstat(f.fileno()).st_size)


def ffmpeg_path(path) -> str:
    """``path`` as an ffmpeg argument: a relative name is given as ``./name``, so that one that
    starts with ``-`` is not taken for an option, nor ``name:x.mp4`` for a protocol; URLs,
    ``-`` (a pipe) and absolute paths are given as they are."""
    path = str(path)
    if path == "-" or url_scheme(path) is not None or os.path.isabs(path):
        return path
    return os.path.join(".", path)


def is_image_path(path: str) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def is_video_path(path: str) -> bool:
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


# Inputs that ffmpeg opens and that are read once, as they come: standard input, network URLs,
# capture devices. LIVE ones (no end of their own, a clock of their own) default to real time.
LIVE_SCHEMES = ("udp", "rtp", "srt", "rtmp", "rtmps", "rtsp", "rtsps", "tcp")
STREAM_SCHEMES = LIVE_SCHEMES + ("http", "https", "hls", "pipe")
_URL_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def url_scheme(path: str) -> Optional[str]:
    """The scheme of ``udp://...`` (lower case), None for a plain path."""
    m = _URL_RE.match(str(path))
    return m.group(1).lower() if m else None


def is_capture_device(path: str) -> bool:
    return re.fullmatch(r"/dev/video\d+", str(path)) is not None


def is_stream(path: str) -> bool:
    """Standard input (``-``), a URL ffmpeg opens, or a capture device: read once, as it comes."""
    return str(path) == "-" or url_scheme(path) in STREAM_SCHEMES or is_capture_device(path)


def is_live(path: str) -> bool:
    """A source with a clock of its own (network streams, cameras): real-time mode by default."""
    return url_scheme(path) in LIVE_SCHEMES or is_capture_device(path)


def natural_key(name: str) -> List:
    """Sort key comparing digit runs as numbers: ``2.png`` before ``10.png``."""
    return [(0, int(t), t) if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", str(name)) if t]


def ffmpeg_binary() -> str:
    """Path of the ffmpeg executable, or FFmpegNotFound with how to get one."""
    override = os.environ.get("IMAGESR_FFMPEG")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise FFmpegNotFound(override, "IMAGESR_FFMPEG points to no executable ffmpeg")
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # optional fallback carrying a static binary

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        pass
    raise FFmpegNotFound(
        "ffmpeg", "no ffmpeg binary found: install it (apt-get install ffmpeg) or pip install imageio-ffmpeg"
    )


@functools.lru_cache(maxsize=None)
def ffmpeg_version(ffmpeg: str) -> Tuple[int, int]:
    """(major, minor) of an ffmpeg binary; (99, 0) for a build that names no release (a git
    snapshot, ``N-112233-g...``), taken as new."""
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return (99, 0)
    m = re.search(r"ffmpeg version n?(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


def passthrough_timing(stream: Optional[str] = None) -> List[str]:
    """ffmpeg options that keep every frame with its own timestamp (none dropped or repeated to
    fit a frame rate): ``-fps_mode`` from ffmpeg 5.1, else ``-vsync``, its older name (ffmpeg
    4.x, e.g. Ubuntu 22.04's, and the static build of older imageio-ffmpeg wheels)."""
    if ffmpeg_version(ffmpeg_binary()) >= (5, 1):
        return [f"-fps_mode:{stream}" if stream else "-fps_mode", "passthrough"]
    return ["-vsync", "passthrough"]


def _ffprobe_binary(ffmpeg: str) -> Optional[str]:
    candidate = os.path.join(os.path.dirname(ffmpeg), "ffprobe")
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return None


def _stderr_tail(stderr, lines: int = 3) -> str:
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    kept = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    return " | ".join(kept[-lines:]) or "no message from ffmpeg"
