"""Passthrough: what happens to every stream of the input besides the upscaled video.

Audio, subtitles, cover art, attachments, chapters and container metadata are copied into the
output when its container takes them as they are, converted when it takes them only in
another form (audio to AAC or Opus, text subtitles to ``mov_text`` / SubRip / WebVTT), and
otherwise left out with one line saying what was not carried and why: nothing is dropped
silently. For a file input the plan is tried on the real streams (a one-second trial mux,
then stream by stream to find what the container refuses); a live input is read once, so its
plan follows the rules below alone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from imagesr.core.media.files import _stderr_tail, ffmpeg_binary, ffmpeg_path, url_scheme
from imagesr.core.media.probe import StreamInfo

# ffmpeg's muxer for an output extension (what it would guess itself).
MUXER_OF_EXT = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".ts": "mpegts", ".flv": "flv",
                ".avi": "avi", ".webm": "webm", ".nut": "nut", ".mpg": "mpeg", ".mpeg": "mpeg", ".wmv": "asf",
                ".y4m": "yuv4mpegpipe"}
_ANY = None  # every codec
AUDIO_COPY = {"mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus"}, "mov": {"aac", "mp3", "ac3", "eac3", "alac",
              "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be"}, "matroska": _ANY, "nut": _ANY,
              "mpegts": {"aac", "mp3", "mp2", "ac3", "eac3", "opus"}, "flv": {"aac", "mp3"},
              "avi": {"mp3", "ac3", "mp2", "pcm_s16le", "aac"}, "webm": {"opus", "vorbis"}}
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
# (codecs copied as they are, the codec text subtitles become) per muxer; absent: none carried
SUBTITLES = {"mp4": ({"mov_text", "dvd_subtitle"}, "mov_text"), "mov": ({"mov_text"}, "mov_text"),
             "matroska": ({"subrip", "ass", "ssa", "webvtt", "hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle"},
                          "srt"),
             "webm": ({"webvtt"}, "webvtt"), "mpegts": ({"dvb_subtitle", "dvb_teletext"}, None),
             "nut": ({"subrip", "ass", "ssa", "webvtt", "dvd_subtitle", "dvb_subtitle", "hdmv_pgs_subtitle"}, "srt")}
CHAPTERS = {"mp4", "mov", "matroska", "webm", "nut"}
ATTACHMENTS = {"matroska"}
COVER_ART = {"mp4", "mov", "matroska"}


@dataclass
class StreamChoice:
    """One input stream's fate: ``codec`` (``copy`` or an encoder) or ``reason`` it is left out."""

    stream: StreamInfo
    codec: Optional[str]
    reason: Optional[str] = None
    extra: Tuple[str, ...] = ()

    @property
    def carried(self) -> bool:
        return self.codec is not None


@dataclass
class StreamPlan:
    """The encoder's second input (the file itself, or a pipe from a live source's decoder) and
    what it maps from it; :meth:`args` are the encoder's options for it."""

    source: str
    choices: List[StreamChoice] = field(default_factory=list)
    chapters: bool = False
    chapters_dropped: Optional[str] = None
    input_args: Tuple[str, ...] = ()
    pass_fds: Tuple[int, ...] = ()
    shift: float = 0.0  # added to this input's timestamps (with -copyts: its absolute clock to the output's)
    clock_stream: Optional[int] = None  # a stream read only to keep the input's clock (see clock_args)

    def input_args_full(self, extra_shift: float = 0.0) -> List[str]:
        """The encoder's options that open this input (after the upscaled video's)."""
        total = self.shift + extra_shift
        shift = ["-itsoffset", f"{total:.6f}"] if total else []
        # a file's name as ffmpeg reads it (./-x.mp4, ./a:b.mp4); a live source's pipe as it is
        source = self.source if self.source.startswith("pipe:") else ffmpeg_path(self.source)
        out = list(self.input_args) + shift + ["-i", source]
        if self.chapters:
            # chapters from the file opened once more (nothing else read from it): ffmpeg moves
            # chapters by their input's offset only, not by the output's, so they get the
            # streams' own shift here
            out += (["-itsoffset", f"{self.shift:.6f}"] if self.shift else []) + ["-i", source]
        return out

    def clock_args(self) -> List[str]:
        """A second output that copies ``clock_stream`` to nowhere: ffmpeg moves the clock of an
        MPEG-TS/PS input to its first *read* stream, which would shift the carried streams
        against the upscaled video when the video started first; reading the video too keeps
        the clock where the container has it."""
        if self.clock_stream is None:
            return []
        return ["-map", f"1:{self.clock_stream}", "-c", "copy", "-f", "null", "-"]

    def starts(self) -> List[float]:
        """The carried streams' first timestamps (s, on the input's clock), where known."""
        return [c.stream.start_time for c in self.choices if c.carried and c.stream.start_time is not None]

    def output_args(self) -> List[str]:
        """Maps and codecs, after the upscaled video's ``-map 0:v``."""
        maps, codecs, n = [], [], 1  # output stream 0 is the upscaled video
        for c in self.choices:
            if not c.carried:
                continue
            maps += ["-map", f"1:{c.stream.index}"]
            codecs += [f"-c:{n}", c.codec, *c.extra]
            if c.stream.attached_pic:
                codecs += [f"-disposition:{n}", "attached_pic"]
            n += 1
        return maps + codecs + ["-map_chapters", "2" if self.chapters else "-1", "-map_metadata", "1"]

    @property
    def notes(self) -> List[str]:
        notes = [f"not carried: {c.stream.describe()}: {c.reason}" for c in self.choices if not c.carried]
        notes += [f"{c.stream.describe()} re-encoded as {c.codec}: {c.reason}" for c in self.choices
                  if c.carried and c.codec != "copy" and c.reason]
        if self.chapters_dropped:
            notes.append(f"not carried: chapters: {self.chapters_dropped}")
        return notes

    def summary(self) -> Optional[str]:
        """``audio copied`` / ``audio re-encoded as AAC``, subtitles, chapters: what was carried."""
        parts = []
        for kind in ("audio", "subtitle", "attachment"):
            mine = [c for c in self.choices if c.carried and c.stream.kind == kind]
            if not mine:
                continue
            label = {"audio": "audio", "subtitle": "subtitles", "attachment": "attachments"}[kind]
            count = f"{len(mine)} " if len(mine) > 1 else ""
            if all(c.codec == "copy" for c in mine):
                parts.append(f"{count}{label} copied")
            else:
                codecs = sorted({c.codec for c in mine if c.codec != "copy"})
                parts.append(f"{count}{label} re-encoded as {'/'.join(_CODEC_NAMES.get(c, c) for c in codecs)}")
        if self.chapters:
            parts.append("chapters copied")
        return ", ".join(parts) or None


_CODEC_NAMES = {"aac": "AAC", "libopus": "Opus", "mov_text": "mov_text", "srt": "SubRip"}


def muxer_for(path: str, fmt: Optional[str]) -> Optional[str]:
    return fmt or MUXER_OF_EXT.get(os.path.splitext(str(path))[1].lower())


def rule_choice(s: StreamInfo, muxer: Optional[str]) -> StreamChoice:
    """What the rules say for one stream in one container (no trial)."""
    m = muxer or "matroska"
    if s.kind == "audio":
        allowed = AUDIO_COPY.get(m, set())
        if allowed is _ANY or s.codec in allowed:
            return StreamChoice(s, "copy")
        if m == "webm":
            return StreamChoice(s, "libopus", f"{m} cannot hold {s.codec}")
        return StreamChoice(s, "aac", f"{m} cannot hold {s.codec}", ("-b:a", "192k"))
    if s.kind == "subtitle":
        copied, text = SUBTITLES.get(m, (set(), None))
        if s.codec in copied:
            return StreamChoice(s, "copy")
        if s.codec in TEXT_SUBTITLES and text:
            return StreamChoice(s, text, f"{m} holds text subtitles as {text}")
        return StreamChoice(s, None, f"{m} cannot hold {s.codec} subtitles (write .mkv to keep them)")
    if s.kind == "video":
        if s.attached_pic:
            return StreamChoice(s, "copy") if m in COVER_ART else StreamChoice(s, None, f"{m} holds no cover art")
        return StreamChoice(s, None, "only the first video stream is upscaled")
    if s.kind == "attachment":
        return StreamChoice(s, "copy") if m in ATTACHMENTS else StreamChoice(s, None, f"{m} holds no attachments")
    return StreamChoice(s, None, f"{s.kind} streams are not carried")


def rule_plan(source: str, streams: Sequence[StreamInfo], chapters: int, muxer: Optional[str]) -> StreamPlan:
    plan = StreamPlan(source, [rule_choice(s, muxer) for s in streams])
    if chapters:
        plan.chapters = (muxer or "matroska") in CHAPTERS
        if not plan.chapters:
            plan.chapters_dropped = f"{muxer} has no chapters"
    return plan


def _trial(plan: StreamPlan, video_args: Sequence[str], muxer: Optional[str], ext: str) -> Optional[str]:
    """Mux one second of a black frame and ``plan``'s streams: None when the container takes it,
    else ffmpeg's reason."""
    with tempfile.TemporaryDirectory(prefix="imagesr-trial-") as d:
        out = os.path.join(d, "trial" + (ext or ".out"))
        cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
               "color=c=black:s=64x64:r=5:d=1", *plan.input_args_full(), "-map", "0:v", *plan.output_args(),
               *video_args, "-t", "1",
               *(["-f", muxer] if muxer else []), out]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        return None if proc.returncode == 0 else _stderr_tail(proc.stderr, 2)


def file_plan(path: str, streams: Sequence[StreamInfo], chapters: int, out_path: str, muxer: Optional[str],
              video_args: Sequence[str]) -> Tuple[StreamPlan, Optional[str]]:
    """The plan for a file input, checked by trial muxes: (plan, None), or (plan, reason) when
    even the video alone cannot be written (the codec, its options or the container)."""
    ext = os.path.splitext(out_path)[1] if out_path not in ("-",) and url_scheme(out_path) is None else ""
    plan = rule_plan(path, streams, chapters, muxer)
    if _trial(plan, video_args, muxer, ext) is None:
        return plan, None
    bare = StreamPlan(path)
    problem = _trial(bare, video_args, muxer, ext)
    if problem is not None:
        return bare, problem
    if plan.chapters and _trial(StreamPlan(path, chapters=True), video_args, muxer, ext) is not None:
        plan.chapters, plan.chapters_dropped = False, f"{muxer or ext} refused them"
    for c in plan.choices:
        if not c.carried:
            continue
        one = StreamPlan(path, [c])
        reason = _trial(one, video_args, muxer, ext)
        if reason is None:
            continue
        if c.stream.kind == "audio" and c.codec == "copy":
            c.codec, c.reason, c.extra = "aac", f"{muxer or ext} refused {c.stream.codec}", ("-b:a", "192k")
            if _trial(one, video_args, muxer, ext) is None:
                continue
        c.codec, c.reason, c.extra = None, reason, ()
    return plan, None
