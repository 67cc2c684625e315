"""Where upscaled frames go: a video, a folder of PNGs or one image, each written under a
temporary name of the run's own and renamed into place only when complete."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Callable, List, Optional, Tuple, Union

import numpy as np

from imagesr.core.media import VideoWriter, is_stream_target, write_image
from imagesr.core.media.streams import StreamPlan
from imagesr.core.outputs import check_name_length, claim_partial, remove_quietly, resolve_link
from imagesr.upscale.inputs import Source
from imagesr.upscale.options import Size, UpscaleError, output_kind


def _check_output(output: str, source: Source, codec: str = "libx264", fmt: Optional[str] = None) -> Tuple[str, str]:
    """(absolute output path, kind) after checking it can be written and is not the input."""
    kind = output_kind(output, codec, fmt)
    if kind == "stream":
        return output, kind
    out = os.path.abspath(output.rstrip("/" + os.sep) or output)
    if kind == "folder":
        out = resolve_link(out)  # a link to a folder: the frames go into that folder
    check_name_length(out)
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        what = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise UpscaleError(f"cannot write {output}: its folder {parent} {what}")
    if os.path.exists(out) and os.path.realpath(out) == os.path.realpath(source.path):
        raise UpscaleError(f"{output}: the output would overwrite the input")
    if os.path.exists(out) and not (os.path.isfile(out) or os.path.isdir(out)):
        raise UpscaleError(f"{output}: is not a regular file or folder (a device or pipe); give a file or folder name")
    if kind == "folder" and os.path.isdir(out) and os.listdir(out):
        raise UpscaleError(f"{output}: the output folder exists and is not empty (remove it or choose another)")
    if kind == "folder" and os.path.isfile(out):
        raise UpscaleError(f"{output}: is a file; a folder output needs a folder name")
    if kind != "folder" and os.path.isdir(out):
        raise UpscaleError(f"{output}: is a folder; give a file name for a {kind} output")
    if kind == "image" and source.total is not None and source.total > 1:
        raise UpscaleError(f"{output}: an image holds one frame but {source.path} has {source.total}; "
                           "write a video or a folder")
    return out, kind


class _Sink:
    """Where upscaled frames go, under a temporary name of this run's own
    (:func:`imagesr.core.outputs.claim_partial`); ``commit`` renames it into place, ``abort``
    removes it (and nothing else)."""

    def __init__(self, path: str):
        self.path = path
        self.tmp: Optional[str] = None

    def write(self, frames: np.ndarray) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        remove_quietly(self.tmp)

    def _check_writable(self) -> None:
        try:
            remove_quietly(claim_partial(self.path))
        except OSError as e:
            raise UpscaleError(f"cannot write {self.path}: {e.strerror or e}") from None


class VideoSink(_Sink):
    """Video at the input's frame rate through :class:`imagesr.core.media.VideoWriter` (the input's
    other streams as ``streams`` plans them; a file atomic, a stream as it goes). ``offset``:
    a number, or a function giving it once the first frame is there (a live source's)."""

    timed = True  # every frame slot is written (a held or dropped frame repeats the last)

    def __init__(self, path: str, size: Size, fps: Fraction, streams: Optional[StreamPlan] = None,
                 offset: Union[float, Callable[[], float]] = 0.0, **writer):
        super().__init__(path)
        if not is_stream_target(path):
            self._check_writable()
        self.offset = offset
        self.writer = VideoWriter(path, size, fps, streams=streams, **writer)
        self.notes = list(self.writer.notes)
        self.audio = streams.summary() if streams is not None else None

    def write(self, frames: np.ndarray) -> None:
        if self.writer.proc is None and self.writer.frames == 0:
            self.writer.offset = self.offset() if callable(self.offset) else self.offset
        self.writer.write(frames)

    def commit(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


class FolderSink(_Sink):
    """One PNG per frame in a temporary folder beside ``NAME``, renamed to ``NAME/`` at the end."""

    timed = False  # one file per decoded frame: held frames are not repeated

    def __init__(self, path: str, names: Optional[List[str]] = None):
        super().__init__(path)
        stems = [os.path.splitext(n)[0] for n in names or []]
        self.names = stems if len(set(stems)) == len(stems) else None  # else 000000.png, 000001.png, ...
        self.count = 0
        try:
            self.tmp = claim_partial(path, folder=True)
        except OSError as e:
            raise UpscaleError(f"cannot write {path}: {e.strerror or e}") from None

    def write(self, frames: np.ndarray) -> None:
        for f in frames:
            name = self.names[self.count] if self.names and self.count < len(self.names) else f"{self.count:06d}"
            write_image(os.path.join(self.tmp, name + ".png"), f)
            self.count += 1

    def commit(self) -> None:
        try:
            if os.path.isdir(self.path):
                os.rmdir(self.path)  # checked empty before the run (and the run holds the output's lock)
            os.replace(self.tmp, self.path)
        except OSError as e:  # the finished frames are kept where they are, and said so
            done, self.tmp = self.tmp, None
            raise UpscaleError(f"cannot move the finished frames into {self.path} ({e.strerror or e}); they are "
                               f"in {done}") from None


class ImageSink(_Sink):
    """One image, written with :func:`imagesr.core.media.write_image` (itself atomic) at the end."""

    timed = False

    def __init__(self, path: str, source: str, quality: Optional[int] = None):
        super().__init__(path)
        self._check_writable()
        self.source, self.quality = source, quality
        self.frame = None

    def write(self, frames: np.ndarray) -> None:
        for f in frames:
            if self.frame is not None:
                raise UpscaleError(f"{self.path}: an image holds one frame but {self.source} has more; "
                                   "write a video or a folder")
            self.frame = f

    def commit(self) -> None:
        try:
            write_image(self.path, self.frame, quality=self.quality)
        except (OSError, ValueError) as e:
            raise UpscaleError(f"cannot write {self.path}: {e}") from None
