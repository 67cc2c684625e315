"""What a video says about itself (:class:`VideoInfo`): through ffprobe when it is there,
else from ``ffmpeg -i``'s banner (imageio-ffmpeg's single static binary has no ffprobe)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, Optional, Tuple

from imagesr.core.colour import PLANAR_FORMATS, PlanarFormat, is_full_range, stream_matrix
from imagesr.core.media.files import MediaError, _ffprobe_binary, _stderr_tail, ffmpeg_binary, ffmpeg_path, not_regular


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a file besides the one upscaled: what passthrough must carry (or say it
    did not)."""

    index: int
    kind: str  # video | audio | subtitle | data | attachment
    codec: str
    start_time: Optional[float] = None
    duration: Optional[float] = None
    attached_pic: bool = False  # cover art

    def describe(self) -> str:
        return f"{self.kind} stream {self.index} ({self.codec})"


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
    start_time: Optional[float] = None  # the stream's first timestamp (s), as the container says
    container_start: Optional[float] = None  # the earliest start of any stream: where the others' clocks begin
    streams: Tuple[StreamInfo, ...] = ()  # every stream of the file, this one included
    chapters: int = 0
    color_primaries: Optional[str] = None
    color_transfer: Optional[str] = None
    field_order: Optional[str] = None  # tt | bb | tb | bt (interlaced), progressive, None when unknown

    @property
    def others(self) -> Tuple[StreamInfo, ...]:
        """The streams besides the decoded one."""
        return tuple(s for s in self.streams if s.index != self.stream_index)

    @property
    def video_offset(self) -> float:
        """How long after the file's earliest stream this video starts (s): kept on output."""
        if self.start_time is None or self.container_start is None:
            return 0.0
        return max(0.0, self.start_time - self.container_start)

    @property
    def bit_depth(self) -> int:
        m = re.search(r"p(9|10|12|14|16)(le|be)?$", self.pix_fmt) or re.search(r"(10|12|16)(le|be)$", self.pix_fmt)
        return int(m.group(1)) if m else 8

    @property
    def interlaced(self) -> bool:
        return self.field_order in ("tt", "bb", "tb", "bt")

    @property
    def hdr_transfer(self) -> bool:
        return self.color_transfer in ("smpte2084", "arib-std-b67")

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
        """The Y'CbCr matrix its frames are decoded with (:mod:`imagesr.core.colour`'s policy)."""
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
            meta = ffmpeg_python.probe(ffmpeg_path(path), cmd=ffprobe, v="error", show_chapters=None)
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
            start_time=_float(video.get("start_time")),
            container_start=_float(meta.get("format", {}).get("start_time")),
            streams=tuple(_stream_info(s) for s in streams),
            chapters=len(meta.get("chapters", [])),
            color_primaries=_known(video.get("color_primaries")),
            color_transfer=_known(video.get("color_transfer")),
            field_order=video.get("field_order"),
        )
    return _probe_from_banner(path, ffmpeg)


def _float(value) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v else None


def _stream_info(s: dict) -> StreamInfo:
    return StreamInfo(index=int(s["index"]), kind=s.get("codec_type", "data"), codec=s.get("codec_name", "unknown"),
                      start_time=_float(s.get("start_time")), duration=_float(s.get("duration")),
                      attached_pic=bool(s.get("disposition", {}).get("attached_pic")))


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
    return parse_banner(proc.stderr, path)


_ANY_STREAM_RE = re.compile(r"Stream #\d+:(\d+)\S*: (Video|Audio|Subtitle|Data|Attachment): (\w+)(.*)")
_START_RE = re.compile(r"Duration: [^,]*, start: (-?[\d.]+)")


def parse_banner(text: str, path: str) -> VideoInfo:
    """A :class:`VideoInfo` from ffmpeg's description of its first input (what ``ffmpeg -i``
    prints; a live source's is all there is to read, as it cannot be opened twice)."""
    text = "\n".join(ln.split("] ", 1)[1] if ln.startswith("[") and "] " in ln[:12] else ln for ln in text.splitlines())
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
    primaries, transfer, order = _banner_tags(m.group(4))
    fps = float(fps_m.group(1)) if fps_m else 0.0
    start_m = _START_RE.search(text)
    streams = tuple(StreamInfo(int(s.group(1)), s.group(2).lower(), s.group(3),
                               attached_pic="(attached pic)" in s.group(4)) for s in _ANY_STREAM_RE.finditer(text))
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
        container_start=float(start_m.group(1)) if start_m else None,
        streams=streams,
        color_primaries=primaries,
        color_transfer=transfer,
        field_order=order,
    )


def _banner_tags(details: Optional[str]) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(primaries, transfer, field order) from ``yuv420p10le(tv, bt2020nc/bt2020/smpte2084, top first)``."""
    primaries = transfer = None
    order = "progressive"
    for token in (t.strip() for t in (details or "").split(",")):
        if token.count("/") == 2:
            _, primaries, transfer = (_known(t) for t in token.split("/"))
        elif token in ("top first", "bottom first", "top coded first (swapped)", "bottom coded first (swapped)"):
            order = {"top first": "tt", "bottom first": "bb"}.get(token, "tb" if token.startswith("top") else "bt")
    return primaries, transfer, order


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




@dataclass(frozen=True)
class HdrMetadata:
    """HDR10 static metadata as the bitstream carries it (SMPTE ST 2086 mastering display in
    0.00002 / 0.0001 cd/m2 units, CTA-861.3 content light level), for the encoder to write again."""

    master_display: Optional[str] = None  # "G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)", x264/x265 syntax
    content_light: Optional[Tuple[int, int]] = None  # (max_content, max_average)


_TRACE_RE = re.compile(r"\b(display_primaries_[xy]\[\d\]|white_point_[xy]|max_display_mastering_luminance|"
                       r"min_display_mastering_luminance|max_content_light_level|max_pic_average_light_level)\s+\d+ = (\d+)")


def hdr_metadata(path: str, stream_index: Optional[int]) -> Optional[HdrMetadata]:
    """The mastering display and content light level SEI of a video's first frames (H.264,
    H.265: ffmpeg's ``trace_headers`` reads them where its decoders do not export them), or
    None when the stream carries neither."""
    stream = f"0:{stream_index}" if stream_index is not None else "0:v:0"
    proc = subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-i", str(path), "-map", stream, "-c", "copy",
                           "-frames:v", "2", "-bsf:v", "trace_headers", "-f", "null", "-"],
                          capture_output=True, text=True, errors="replace")
    values: Dict[str, int] = {}
    for m in _TRACE_RE.finditer(proc.stderr):
        values.setdefault(m.group(1), int(m.group(2)))
    master = None
    if all(f"display_primaries_{a}[{i}]" in values for a in "xy" for i in range(3)):
        p = lambda i: f"({values[f'display_primaries_x[{i}]']},{values[f'display_primaries_y[{i}]']})"  # noqa: E731
        master = (f"G{p(0)}B{p(1)}R{p(2)}WP({values.get('white_point_x', 0)},{values.get('white_point_y', 0)})"
                  f"L({values.get('max_display_mastering_luminance', 0)},{values.get('min_display_mastering_luminance', 0)})")
    cll = None
    if "max_content_light_level" in values:
        cll = (values["max_content_light_level"], values.get("max_pic_average_light_level", 0))
    return HdrMetadata(master, cll) if master or cll else None


def keyframe_times(path: str, stream_index: Optional[int]) -> Tuple[float, ...]:
    """Presentation times (s, as the container says) of the video's keyframes, from its packets
    (nothing is decoded)."""
    ffprobe = _ffprobe_binary(ffmpeg_binary())
    if ffprobe is None:
        raise MediaError(path, "--resume needs ffprobe beside ffmpeg (to find the keyframes)")
    select = str(stream_index) if stream_index is not None else "v:0"
    out = subprocess.run([ffprobe, "-v", "error", "-select_streams", select, "-show_entries", "packet=pts_time,flags",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, errors="replace")
    if out.returncode != 0:
        raise MediaError(path, f"cannot list its keyframes ({_stderr_tail(out.stderr)})")
    times = []
    for line in out.stdout.splitlines():
        pts, _, flags = line.partition(",")
        if "K" in flags and _float(pts) is not None:
            times.append(float(pts))
    return tuple(sorted(times))
