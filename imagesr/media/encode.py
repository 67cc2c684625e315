"""Encoding frames into a video through an ffmpeg pipe (:class:`VideoWriter`): streaming,
atomic, tagged with its colour matrix, the input's audio mapped in."""

from __future__ import annotations

import os
import subprocess
from typing import Optional, Sequence, Tuple

import numpy as np

from imagesr.colour import SWS_MATRIX, TAGS, PlanarFormat, output_matrix
from imagesr.media.files import MediaError, _stderr_tail, ffmpeg_binary, ffmpeg_path
from imagesr.outputs import claim_partial, remove_quietly


def _audio_copy_works(src: str, ext: str) -> bool:
    """Whether ffmpeg can copy ``src``'s audio streams into a ``ext`` container as they are."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="imagesr-audio-") as d:
        cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", "-i", ffmpeg_path(src), "-map", "0:a", "-c:a", "copy",
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
            colour = ["-vf", f"scale=out_color_matrix={SWS_MATRIX[self.matrix]}:out_range=limited,"
                             f"format={self.pix_fmt}"] + colour
        self.audio = None
        if audio_from:
            copy = _audio_copy_works(audio_from, os.path.splitext(path)[1])
            self.audio = "copied" if copy else "re-encoded as AAC"
            cmd += ["-i", ffmpeg_path(audio_from), "-map", "0:v:0", "-map", "1:a"]
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
        cmd[-1] = ffmpeg_path(self.tmp)
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
