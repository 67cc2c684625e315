"""Decoding of images, videos and frame folders into uint8 RGB arrays (the one decoder).

* Images: anything Pillow reads. Palette, grayscale, CMYK, 16-bit and alpha images become
  8-bit RGB (alpha composited on white), EXIF orientation is applied. A corrupt, truncated
  or empty file raises :class:`MediaError` naming the file.
* Videos: ffmpeg (through ffmpeg-python) decodes to raw RGB through a pipe, one frame at a
  time, so a long video is never held in memory; frame stride and limit are applied inside
  ffmpeg (``select`` filter), not by decoding and discarding in Python.
* Frame folders (DAVIS ``JPEGImages/<res>/<sequence>/00000.jpg``) iterate the same way.

The ffmpeg binary is, in order: ``$IMAGESR_FFMPEG``, ``ffmpeg`` on PATH, the static binary
of the ``imageio-ffmpeg`` package if installed. ``ffprobe`` is used when present next to it;
otherwise the stream is probed from ``ffmpeg -i``'s banner.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imagesr.colour import PLANAR_FORMATS, TAGS, PlanarFormat, is_full_range, output_matrix, stream_matrix
from imagesr.outputs import claim_partial, remove_quietly

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".y4m", ".wmv")

PathOrBytes = Union[str, os.PathLike, bytes]


class MediaError(Exception):
    """A file that cannot be decoded; the message names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FFmpegNotFound(MediaError):
    """No ffmpeg binary could be found."""


def is_image_path(path: str) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def is_video_path(path: str) -> bool:
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


# --------------------------------------------------------------------------- images


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> HxWx3 uint8 RGB (16-bit scaled, alpha composited on white)."""
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(np.floor(a * (255.0 / peak) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        peak = 1.0 if a.max() <= 1.0 else 255.0
        a = np.clip(np.floor(a * (255.0 / peak) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.asarray(img, dtype=np.uint8).copy()


def decode_image(source: PathOrBytes, name: Optional[str] = None) -> np.ndarray:
    """Decode an image file (path or encoded bytes) to HxWx3 uint8 RGB.

    Raises:
      MediaError: missing, empty, corrupt or truncated file (the message names it).
    """
    label = name or (source if not isinstance(source, bytes) else "<bytes>")
    if isinstance(source, bytes):
        data = source
    else:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise MediaError(label, "no such file") from None
        except IsADirectoryError:
            raise MediaError(label, "is a directory, not an image") from None
        except OSError as e:
            raise MediaError(label, f"cannot read: {e.strerror or e}") from None
    if not data:
        raise MediaError(label, "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # forces full decode: truncated data fails here, not later
            return to_rgb8(img)
    except UnidentifiedImageError:
        raise MediaError(label, "not an image Pillow can identify (corrupt or unsupported format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError(label, f"corrupt or truncated image ({e})") from None


def has_alpha(path: str) -> bool:
    """Whether an image file has transparency (which decoding composites on white)."""
    try:
        with Image.open(path) as img:
            return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    except (OSError, UnidentifiedImageError):
        return False


def image_size(path: str) -> tuple:
    """(width, height) from the header only, without decoding pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError) as e:
        raise MediaError(path, f"cannot read image header ({e})") from None


# --------------------------------------------------------------------------- ffmpeg


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


def _ffprobe_binary(ffmpeg: str) -> Optional[str]:
    candidate = os.path.join(os.path.dirname(ffmpeg), "ffprobe")
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return None


@dataclass(frozen=True)
class VideoInfo:
    """What a video's first video stream says about itself.

    ``width`` x ``height`` is the size of the frames the decoder yields: the display size,
    after the rotation a phone records in the stream's display matrix (ffmpeg applies it
    when decoding). ``rotation`` is that rotation in degrees counterclockwise, as the display
    matrix states it (0, 90, 180 or 270).
    """

    path: str
    width: int
    height: int
    fps: float
    frame_count: Optional[int]  # None when the container does not say and no count was made
    pix_fmt: str
    codec: str
    duration: Optional[float]
    has_audio: bool
    rotation: int = 0
    color_space: Optional[str] = None  # the stream's matrix tag (bt709, smpte170m, ...), None when untagged
    color_range: Optional[str] = None  # tv | pc, None when untagged
    stream_index: Optional[int] = None  # the stream's index in the file: the one that is decoded
    variable_rate: bool = False  # frame durations vary (the nominal and the average rate differ)

    @property
    def expected_frames(self) -> Optional[int]:
        """Frames the file should hold: the container's count, else duration x average rate."""
        if self.frame_count:
            return self.frame_count
        if self.duration and self.fps:
            return int(round(self.duration * self.fps))
        return None

    @property
    def matrix(self) -> str:
        """The Y'CbCr matrix its frames are decoded with (:mod:`imagesr.colour`'s policy)."""
        return stream_matrix(self.color_space, self.width, self.height)

    @property
    def full_range(self) -> bool:
        return is_full_range(self.color_range, self.pix_fmt)

    def planar_format(self) -> Optional[PlanarFormat]:
        """The stream's own 8-bit planar layout when it has one the planar route reads as it is
        (yuv420p with even sides, yuv444p), else None."""
        if self.pix_fmt not in PLANAR_FORMATS or ("420" in self.pix_fmt and (self.width % 2 or self.height % 2)):
            return None
        return PlanarFormat(self.pix_fmt, self.height, self.width, self.matrix, self.full_range)


def _rotation_degrees(value) -> int:
    """0/90/180/270 from a display-matrix rotation or a ``rotate`` tag (sign conventions
    differ between ffmpeg versions; only the quarter turn matters for the frame size)."""
    try:
        degrees = float(value)
    except (TypeError, ValueError):
        return 0
    return int(round(degrees / 90.0)) % 4 * 90


def _stream_rotation(matrix, rotate_tag) -> int:
    """The counterclockwise rotation of a stream: its display matrix's, else that of the
    older clockwise ``rotate`` tag (either may be None)."""
    if matrix is not None:
        return _rotation_degrees(matrix)
    return (-_rotation_degrees(rotate_tag)) % 360


def _display_size(width: int, height: int, rotation: int) -> Tuple[int, int]:
    return (height, width) if rotation in (90, 270) else (width, height)


def _parse_rate(rate: str) -> float:
    try:
        return float(Fraction(rate))
    except (ValueError, ZeroDivisionError):
        return 0.0


def probe_video(path: str) -> VideoInfo:
    """Size, frame rate, frame count, pixel format of ``path``'s first video stream."""
    path = str(path)
    if not os.path.exists(path):
        raise MediaError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file (0 bytes)")
    ffmpeg = ffmpeg_binary()
    ffprobe = _ffprobe_binary(ffmpeg)
    if ffprobe:
        import ffmpeg as ffmpeg_python

        try:
            meta = ffmpeg_python.probe(path, cmd=ffprobe, v="error")
        except ffmpeg_python.Error as e:
            tail = _stderr_tail(e.stderr)
            raise MediaError(path, f"not a readable video ({tail})") from None
        streams = meta.get("streams", [])
        video = next((s for s in streams if s.get("codec_type") == "video"
                      and not s.get("disposition", {}).get("attached_pic")), None)  # not cover art
        if video is None:
            raise MediaError(path, "contains no video stream")
        count = video.get("nb_frames")
        duration = video.get("duration") or meta.get("format", {}).get("duration")
        nominal, average = _parse_rate(video.get("r_frame_rate", "0/0")), _parse_rate(video.get("avg_frame_rate", "0/0"))
        fps = average or nominal
        frame_count = int(count) if count and str(count).isdigit() and int(count) > 0 else None
        matrix = next((d["rotation"] for d in video.get("side_data_list", []) if "rotation" in d), None)
        rotation = _stream_rotation(matrix, video.get("tags", {}).get("rotate"))
        width, height = _display_size(int(video["width"]), int(video["height"]), rotation)
        return VideoInfo(
            path=path,
            width=width,
            height=height,
            fps=fps,
            frame_count=frame_count,
            pix_fmt=video.get("pix_fmt", "unknown"),
            codec=video.get("codec_name", "unknown"),
            duration=float(duration) if duration else None,
            has_audio=any(s.get("codec_type") == "audio" for s in streams),
            rotation=rotation,
            color_space=_known(video.get("color_space")),
            color_range=_known(video.get("color_range")),
            stream_index=int(video["index"]),
            variable_rate=_rates_differ(nominal, average),
        )
    return _probe_from_banner(path, ffmpeg)


def _rates_differ(nominal: float, average: float) -> bool:
    return nominal > 0 and average > 0 and abs(nominal - average) > 0.01 * nominal


_STREAM_RE = re.compile(r"Stream #\d+:(\d+)\S*.*?: Video: (\w+)[^,]*, (\w+)[^,(]*?(?:\(([^)]*)\))?, (\d+)x(\d+)(.*)")
_FPS_RE = re.compile(r"([\d.]+) fps")
_TBR_RE = re.compile(r"([\d.]+)k? tbr")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_MATRIX_RE = re.compile(r"displaymatrix: rotation of (-?[\d.]+) degrees")
_ROTATE_TAG_RE = re.compile(r"^\s*rotate\s*:\s*(-?\d+)", re.M)


def _probe_from_banner(path: str, ffmpeg: str) -> VideoInfo:
    """Probe via ``ffmpeg -i`` when no ffprobe exists (e.g. imageio-ffmpeg's single binary)."""
    proc = subprocess.run([ffmpeg, "-hide_banner", "-i", path], capture_output=True, text=True, errors="replace")
    text = proc.stderr
    m = next((m for m in _STREAM_RE.finditer(text) if "(attached pic)" not in m.group(7)), None)  # not cover art
    if not m:
        if " Video: " in text or " Audio: " in text:
            raise MediaError(path, "contains no video stream")
        raise MediaError(path, f"not a readable video ({_stderr_tail(text)})")
    fps_m, tbr_m = _FPS_RE.search(m.group(7)), _TBR_RE.search(m.group(7))
    dur_m = _DURATION_RE.search(text)
    duration = None
    if dur_m:
        duration = int(dur_m.group(1)) * 3600 + int(dur_m.group(2)) * 60 + float(dur_m.group(3))
    # The first video stream's own block: from its Stream line to the next stream.
    block = text[m.start():]
    next_stream = re.search(r"\n\s*Stream #", block[1:])
    block = block[: next_stream.start() + 1] if next_stream else block
    matrix_m, tag_m = _MATRIX_RE.search(block), _ROTATE_TAG_RE.search(block)
    rotation = _stream_rotation(matrix_m and matrix_m.group(1), tag_m and tag_m.group(1))
    width, height = _display_size(int(m.group(5)), int(m.group(6)), rotation)
    space, color_range = _banner_colour(m.group(4))
    fps = float(fps_m.group(1)) if fps_m else 0.0
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=fps,
        frame_count=None,
        pix_fmt=m.group(3),
        codec=m.group(2),
        duration=duration,
        has_audio=" Audio: " in text,
        rotation=rotation,
        color_space=space,
        color_range=color_range,
        stream_index=int(m.group(1)),
        variable_rate=bool(tbr_m and "k tbr" not in tbr_m.group(0)) and _rates_differ(float(tbr_m.group(1)), fps),
    )


def _known(value: Optional[str]) -> Optional[str]:
    return None if not value or value in ("unknown", "unspecified", "reserved") else value


def _banner_colour(details: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(colour space, range) from the banner's ``yuv420p(tv, bt709/bt709/bt709, progressive)``."""
    space = color_range = None
    for token in (t.strip() for t in (details or "").split(",")):
        if token in ("tv", "pc"):
            color_range = token
        elif token and token not in ("progressive", "top first", "bottom first") and space is None:
            first = token.split("/")[0]
            if first and first[0].isalpha() and " " not in first:
                space = _known(first)
    return space, color_range


_SWS_MATRIX = {"bt709": "bt709", "bt601": "smpte170m"}  # ffmpeg's scale filter's names


def _stderr_tail(stderr, lines: int = 3) -> str:
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    kept = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    return " | ".join(kept[-lines:]) or "no message from ffmpeg"


def iter_video_frames(
    path: str,
    stride: int = 1,
    limit: Optional[int] = None,
    info: Optional[VideoInfo] = None,
    strict: bool = True,
    planar: Optional[PlanarFormat] = None,
    constant_rate: Optional[Fraction] = None,
) -> Iterator[np.ndarray]:
    """Yield HxWx3 uint8 RGB frames 0, stride, 2*stride, ... (at most ``limit``) of a video.

    Frames stream through a pipe; memory holds one frame. RGB is converted with the stream's
    matrix (:mod:`imagesr.colour`: its tag, else BT.709 for HD and BT.601 below). With
    ``planar`` (usually ``info.planar_format()``), frames come as that format's flat uint8
    vectors instead, unconverted. ``constant_rate``: frames resampled in time to that rate
    (repeated or dropped as their timestamps say), for a variable-rate video written out at a
    constant one. Only the probed stream is decoded (``info.stream_index``: the first video
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
    if planar is not None and planar.size != (h, w):
        raise ValueError(f"planar format {planar.width}x{planar.height} differs from the video's {w}x{h}")
    frame_bytes = planar.frame_bytes if planar is not None else w * h * 3
    stream = ffmpeg_python.input(str(path))
    stream = stream[str(info.stream_index)] if info.stream_index is not None else stream["v:0"]
    if stride > 1:
        stream = stream.filter("select", f"not(mod(n,{stride}))")
    if planar is None:
        stream = stream.filter("scale", in_color_matrix=_SWS_MATRIX[info.matrix],
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


# --------------------------------------------------------------------------- frame folders


def list_frames(folder: str) -> List[str]:
    """Sorted image files of a frame folder (DAVIS sequence, exported frames)."""
    if not os.path.isdir(folder):
        raise MediaError(folder, "no such folder")
    names = sorted(n for n in os.listdir(folder) if is_image_path(n))
    return [os.path.join(folder, n) for n in names]


def iter_folder_frames(folder: str, stride: int = 1, limit: Optional[int] = None) -> Iterator[np.ndarray]:
    """Frames of an image-sequence folder, sorted by name, with the same stride/limit as video."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    files = list_frames(folder)[::stride]
    if limit is not None:
        files = files[:limit]
    if not files:
        raise MediaError(folder, "folder holds no image frames")
    for f in files:
        yield decode_image(f)


def iter_frames(source: str, stride: int = 1, limit: Optional[int] = None) -> Iterator[np.ndarray]:
    """Frames of a video file, a frame folder or a single image, by what ``source`` is."""
    if os.path.isdir(source):
        return iter_folder_frames(source, stride, limit)
    if is_image_path(source):
        return iter([decode_image(source)])
    return iter_video_frames(source, stride, limit)


# --------------------------------------------------------------------------- encoding


def write_image(path: str, image: np.ndarray) -> None:
    """Write an RGB uint8 image atomically: under a temporary name of this call's own
    (:func:`imagesr.outputs.claim_partial`), renamed when complete, removed on failure."""
    tmp = claim_partial(path)
    try:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp)
    except BaseException:
        remove_quietly(tmp)
        raise
    os.replace(tmp, path)


def _audio_copy_works(src: str, ext: str) -> bool:
    """Whether ffmpeg can copy ``src``'s audio streams into a ``ext`` container as they are."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="imagesr-audio-") as d:
        cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", "-i", src, "-map", "0:a", "-c:a", "copy",
               "-t", "0.5", os.path.join(d, "probe" + ext)]
        return subprocess.run(cmd, capture_output=True).returncode == 0


class VideoWriter:
    """Stream uint8 frames into a video through an ffmpeg pipe (H.264 by default).

    Frames are RGB (HxWx3), converted by ffmpeg with the matrix :func:`imagesr.colour.
    output_matrix` picks (BT.709 for HD, BT.601 below), or, with ``planar``, that planar
    format's flat vectors, already converted (the live route converts on the accelerator) and
    passed to the encoder as they are. Either way the file is tagged with its matrix, range,
    primaries and transfer, so players do not guess.

    Written under a temporary name of its own (:func:`imagesr.outputs.claim_partial`) and
    renamed by :meth:`close` only when ffmpeg succeeded;
    :meth:`abort` (or leaving the ``with`` block by an exception) removes it, so a failed or
    interrupted run never leaves a file that looks finished. ``audio_from`` maps that file's
    audio into the output: copied when the container takes it as it is, else AAC. Odd frame
    sides are encoded 4:4:4 (4:2:0 needs even sides), keeping the exact size.
    """

    def __init__(self, path: str, size: Tuple[int, int], fps, audio_from: Optional[str] = None,
                 codec: str = "libx264", crf: int = 18, preset: str = "veryfast", pix_fmt: Optional[str] = None,
                 planar: Optional[PlanarFormat] = None):
        import tempfile

        self.path = path
        self.size = (int(size[0]), int(size[1]))
        h, w = self.size
        self.planar = planar
        if planar is not None:
            if planar.size != self.size:
                raise ValueError(f"planar format {planar.width}x{planar.height} differs from the video's {w}x{h}")
            pix_fmt, self.matrix = planar.pix_fmt, planar.matrix
        else:
            self.matrix = output_matrix(w, h)
        self.pix_fmt = pix_fmt or ("yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p")
        self.notes = [] if self.pix_fmt == "yuv420p" or pix_fmt else [f"odd size {w}x{h}: encoded as 4:4:4"]
        full = planar is not None and planar.full_range
        space, primaries, transfer = TAGS[self.matrix]
        cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", planar.pix_fmt if planar is not None else "rgb24",
               "-s", f"{w}x{h}", "-framerate", str(fps), "-i", "pipe:0"]
        colour = ["-colorspace", space, "-color_primaries", primaries, "-color_trc", transfer,
                  "-color_range", "pc" if full else "tv"]
        if planar is None:  # ffmpeg converts, with the matrix the file is tagged with
            colour = ["-vf", f"scale=out_color_matrix={_SWS_MATRIX[self.matrix]}:out_range=limited,"
                             f"format={self.pix_fmt}"] + colour
        self.audio = None
        if audio_from:
            copy = _audio_copy_works(audio_from, os.path.splitext(path)[1])
            self.audio = "copied" if copy else "re-encoded as AAC"
            cmd += ["-i", audio_from, "-map", "0:v:0", "-map", "1:a"]
            cmd += ["-c:a", "copy"] if copy else ["-c:a", "aac", "-b:a", "192k"]
        cmd += colour + ["-c:v", codec]
        if codec in ("libx264", "libx265"):
            cmd += ["-preset", preset, "-crf", str(crf)]
        cmd += ["-pix_fmt", self.pix_fmt, path]  # replaced by the temporary name below
        self._log = tempfile.TemporaryFile()
        try:
            self.tmp = claim_partial(path)
        except OSError as e:
            raise MediaError(path, f"cannot write here: {e.strerror or e}") from None
        cmd[-1] = self.tmp
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._log)
        except OSError as e:
            remove_quietly(self.tmp)
            raise MediaError(path, f"cannot start ffmpeg: {e}") from None
        self.frames = 0

    def _failure(self) -> MediaError:
        self.proc.wait()
        self._log.seek(0)
        return MediaError(self.path, f"ffmpeg could not encode: {_stderr_tail(self._log.read())}")

    def write(self, frames) -> None:
        """Append frames (an HxWx3 frame, an NxHxWx3 batch or any iterable of frames)."""
        if self.planar is not None:  # [N, frame_bytes] or one [frame_bytes] vector (a device array too)
            frames = np.asarray(frames, dtype=np.uint8)
            frames = frames[None] if frames.ndim == 1 else frames
            if frames.ndim != 2 or frames.shape[1] != self.planar.frame_bytes:
                raise ValueError(f"planar frames of {frames.shape[1:]} bytes, expected {self.planar.frame_bytes}")
        else:
            frames = [frames] if isinstance(frames, np.ndarray) and frames.ndim == 3 else frames
        for f in frames:
            if self.planar is None and f.shape[:2] != self.size:
                raise ValueError(f"frame size {f.shape[:2]} differs from the video's {self.size}")
            try:
                self.proc.stdin.write(np.ascontiguousarray(f, dtype=np.uint8).data)
            except (BrokenPipeError, ValueError, OSError):
                raise self._failure() from None
            self.frames += 1

    def close(self) -> None:
        """Finish the file and rename it into place (raises MediaError if ffmpeg failed)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0:
            err = self._failure()
            self.abort()
            raise err
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        remove_quietly(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def encode_video(path: str, frames: Sequence[np.ndarray], fps: float = 25.0, codec: str = "libx264",
                 pix_fmt: str = "yuv420p", crf: int = 18) -> None:
    """Encode RGB uint8 frames to a video file (atomic: see :class:`VideoWriter`)."""
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to encode")
    with VideoWriter(path, frames[0].shape[:2], fps, codec=codec, crf=crf, pix_fmt=pix_fmt) as w:
        w.write(frames)
