"""What a video says about itself (:class:`VideoInfo`): through ffprobe when it is there,
else from ``ffmpeg -i``'s banner (imageio-ffmpeg's single static binary has no ffprobe)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Tuple

from imagesr.colour import PLANAR_FORMATS, PlanarFormat, is_full_range, stream_matrix
from imagesr.media.files import MediaError, _ffprobe_binary, _stderr_tail, ffmpeg_binary, ffmpeg_path, not_regular


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
    special = not_regular(path)
    if special:
        raise MediaError(path, special)
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file (0 bytes)")
    ffmpeg = ffmpeg_binary()
    ffprobe = _ffprobe_binary(ffmpeg)
    if ffprobe:
        import ffmpeg as ffmpeg_python

        try:
            meta = ffmpeg_python.probe(ffmpeg_path(path), cmd=ffprobe, v="error")
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
    proc = subprocess.run([ffmpeg, "-hide_banner", "-i", ffmpeg_path(path)], capture_output=True, text=True,
                          errors="replace")
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


