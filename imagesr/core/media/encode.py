"""Encoding frames into a video through an ffmpeg pipe (:class:`VideoWriter`): streaming,
atomic, tagged with its colour matrix, the input's audio mapped in."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from imagesr.core.colour import SWS_MATRIX, TAGS, PlanarFormat, output_matrix, stream_matrix
from imagesr.core.media.files import (
    MediaError,
    _stderr_tail,
    ffmpeg_binary,
    ffmpeg_path,
    passthrough_timing,
    url_scheme,
)
from imagesr.core.media.probe import HdrMetadata, VideoInfo
from imagesr.core.media.streams import StreamPlan
from imagesr.core.outputs import claim_partial, remove_quietly

PIPE_BYTES = 1 << 20  # pipe buffer asked for (Linux caps it at /proc/sys/fs/pipe-max-size): fewer wake-ups per frame


def widen_pipe(pipe) -> None:
    """Ask for a 1 MiB pipe buffer (``pipe``: a file object or descriptor): a 1080p frame
    crosses a 64 KiB pipe in about a hundred writer/reader switches."""
    try:
        import fcntl

        fd = pipe if isinstance(pipe, int) else pipe.fileno()
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (OSError, ValueError, AttributeError):
        pass


def is_stream_target(path: str) -> bool:
    """``-`` (standard output) or a URL: written as it goes, never staged and renamed."""
    return str(path) == "-" or url_scheme(path) is not None


@dataclass(frozen=True)
class ColourSpec:
    """How the output is converted and tagged: the matrix frames are converted with, and the
    primaries and transfer it declares (the input's own when it names them: PQ and HLG stay PQ
    and HLG), with the input's HDR10 static metadata."""

    matrix: str
    primaries: str
    transfer: str
    hdr: Optional[HdrMetadata] = None

    @classmethod
    def for_output(cls, width: int, height: int, info: Optional[VideoInfo] = None,
                   hdr: Optional[HdrMetadata] = None) -> "ColourSpec":
        matrix = output_matrix(width, height)
        if info is not None and stream_matrix(info.color_space, info.width, info.height) == "bt2020":
            matrix = "bt2020"  # wide gamut keeps its matrix: BT.709 could not hold its colours
        _, primaries, transfer = TAGS[matrix]
        if info is not None:
            primaries, transfer = info.color_primaries or primaries, info.color_transfer or transfer
        return cls(matrix, primaries, transfer, hdr)


def _hdr_args(codec: str, hdr: Optional[HdrMetadata]) -> Tuple[List[str], Optional[str]]:
    """Encoder options that write the HDR10 SEI, or a note when ``codec`` cannot."""
    if hdr is None:
        return [], None
    if codec == "libx265":
        params = ["log-level=error", "hdr10=1"]
        params += [f"master-display={hdr.master_display}"] if hdr.master_display else []
        params += [f"max-cll={hdr.content_light[0]},{hdr.content_light[1]}"] if hdr.content_light else []
        return ["-x265-params", ":".join(params)], None
    if codec == "libx264":
        params = [f"mastering-display={hdr.master_display}"] if hdr.master_display else []
        params += [f"cll={hdr.content_light[0]},{hdr.content_light[1]}"] if hdr.content_light else []
        return ["-x264-params", ":".join(params)], None
    return [], f"{codec}: the input's HDR mastering metadata is not written (libx264 and libx265 write it)"


def encoder_args(size: Tuple[int, int], codec: str = "libx264", crf: Optional[int] = 18,
                 preset: Optional[str] = "veryfast", pix_fmt: Optional[str] = None,
                 colour: Optional[ColourSpec] = None, deep: bool = False, planar: Optional[PlanarFormat] = None,
                 codec_args: Sequence[str] = ()) -> Tuple[List[str], str, List[str]]:
    """(the output options of the upscaled video stream, its pixel format, notes): codec,
    quality, colour conversion and tags, HDR10 metadata."""
    h, w = size
    colour = colour or ColourSpec.for_output(w, h)
    ten = "10le" if deep else ""
    chosen = pix_fmt or (("yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p") + ten)
    notes = [] if "420" in chosen or pix_fmt else [f"odd size {w}x{h}: encoded as 4:4:4"]
    hdr_args, note = _hdr_args(codec, colour.hdr)
    notes += [note] if note else []
    full = planar is not None and planar.full_range
    space, _, _ = TAGS[colour.matrix]
    video = ["-c:0", codec, *codec_args, *hdr_args]
    if preset:
        video += ["-preset", str(preset)]
    if crf is not None:
        video += ["-crf", str(crf)]
    video += [*passthrough_timing("0"), "-colorspace", space, "-color_primaries", colour.primaries,
              "-color_trc", colour.transfer, "-color_range", "pc" if full else "tv"]
    if planar is None:  # ffmpeg converts, with the matrix the file is tagged with
        video += ["-filter:0", f"scale=out_color_matrix={SWS_MATRIX[colour.matrix]}:out_range=limited,format={chosen}"]
    return video + ["-pix_fmt:0", chosen], chosen, notes


class VideoWriter:
    """Stream frames into a video through an ffmpeg pipe (H.264 by default).

    Frames are RGB (HxWx3 uint8, or uint16 with ``deep``: 16-bit RGB for 10-bit output),
    converted by ffmpeg with ``colour``'s matrix (default: BT.709 for HD, BT.601 below), or,
    with ``planar``, that planar format's flat vectors, already converted (the live route
    converts on the accelerator) and passed to the encoder as they are. Either way the file is
    tagged with its matrix, range, primaries and transfer, so players do not guess, and HDR10
    metadata is written again where the input had it.

    A file is written under a temporary name of its own (:func:`imagesr.core.outputs.claim_partial`)
    and renamed by :meth:`close` only when ffmpeg succeeded; :meth:`abort` (or leaving the
    ``with`` block by an exception) removes it, so a failed or interrupted run never leaves a
    file that looks finished. ``-`` (standard output) and URLs are written as they go. ffmpeg
    starts with the first frame, so ``offset`` (how long after the earliest of the ``streams``
    the video starts: the input's audio/video offset, kept in the output) can be set until
    then. ``copyts``: the ``streams`` input's timestamps are taken as they are, shifted by its
    plan's ``shift`` (a file's absolute clock moved to start at 0; a live source's already
    on the decoder's clock).
    ``streams``: the input's other streams, as :mod:`imagesr.core.media.streams` planned them. Odd
    frame sides are encoded 4:4:4 (4:2:0 needs even sides), keeping the exact size.
    """

    def __init__(self, path: str, size: Tuple[int, int], fps, codec: str = "libx264", crf: Optional[int] = 18,
                 preset: Optional[str] = "veryfast", pix_fmt: Optional[str] = None,
                 planar: Optional[PlanarFormat] = None, fmt: Optional[str] = None,
                 streams: Optional[StreamPlan] = None, offset: float = 0.0, colour: Optional[ColourSpec] = None,
                 deep: bool = False, copyts: bool = False, codec_args: Sequence[str] = ()):
        import tempfile

        self.path = str(path)
        self.size = (int(size[0]), int(size[1]))
        h, w = self.size
        self.planar, self.deep, self.fps, self.offset, self.streams = planar, deep, fps, offset, streams
        if planar is not None:
            if planar.size != self.size:
                raise ValueError(f"planar format {planar.width}x{planar.height} differs from the video's {w}x{h}")
            pix_fmt = planar.pix_fmt
            colour = colour or ColourSpec(planar.matrix, *TAGS[planar.matrix][1:])
        self.colour = colour or ColourSpec.for_output(w, h)
        self.matrix = self.colour.matrix
        self.video_args, self.pix_fmt, self.notes = encoder_args(self.size, codec, crf, preset, pix_fmt, self.colour,
                                                                 deep, planar, codec_args)
        self.stream = is_stream_target(self.path)
        self.in_fmt = planar.pix_fmt if planar is not None else ("rgb48le" if deep else "rgb24")
        self.fmt, self.copyts = fmt, copyts
        self._log = tempfile.TemporaryFile()
        self.tmp = None
        if not self.stream:
            try:
                self.tmp = claim_partial(self.path)
            except OSError as e:
                raise MediaError(self.path, f"cannot write here: {e.strerror or e}") from None
        self.proc = None
        self.frames = 0

    def command(self) -> List[str]:
        h, w = self.size
        cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", *(["-copyts"] if self.copyts else [])]
        cmd += ["-f", "rawvideo", "-pix_fmt", self.in_fmt, "-s", f"{w}x{h}", "-framerate", str(self.fps), "-i", "pipe:0"]
        if self.streams is not None:
            # The video starts ``offset`` after the other streams: the muxer moves everything
            # later by it and the other streams back (a raw video's clock, one tick per frame,
            # would round an offset of the video itself to whole frames).
            cmd += self.streams.input_args_full(-self.offset)
        cmd += ["-map", "0:v:0"] + (self.streams.output_args() if self.streams is not None else [])
        video = list(self.video_args)
        if self.offset and self.streams is not None:
            video += ["-output_ts_offset", f"{self.offset:.6f}"]
        cmd += video + (["-f", self.fmt] if self.fmt else [])
        target = ffmpeg_path(self.tmp) if self.tmp else ("pipe:1" if self.path == "-" else self.path)
        return cmd + [target] + (self.streams.clock_args() if self.streams is not None else [])

    def _start(self) -> None:
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stderr=self._log,
                                         stdout=None if self.path == "-" else subprocess.DEVNULL,
                                         pass_fds=self.streams.pass_fds if self.streams is not None else ())
        except OSError as e:
            remove_quietly(self.tmp)
            raise MediaError(self.path, f"cannot start ffmpeg: {e}") from None
        widen_pipe(self.proc.stdin)

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
        dtype = np.uint16 if self.deep else np.uint8
        for f in frames:
            if self.planar is None and f.shape[:2] != self.size:
                raise ValueError(f"frame size {f.shape[:2]} differs from the video's {self.size}")
            if self.proc is None:
                self._start()
            try:
                self.proc.stdin.write(np.ascontiguousarray(f, dtype=dtype).data)
            except (BrokenPipeError, ValueError, OSError):
                raise self._failure() from None
            self.frames += 1

    def close(self) -> None:
        """Finish the file and rename it into place (raises MediaError if ffmpeg failed)."""
        if self.proc is None:
            self.abort()
            raise MediaError(self.path, "no frames to write")
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0:
            err = self._failure()
            self.abort()
            raise err
        if self.tmp is not None:
            os.replace(self.tmp, self.path)
            self.tmp = None

    def abort(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        remove_quietly(self.tmp)
        self.tmp = None

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
