"""What is being upscaled: a video, a frame folder or one image (:class:`Source`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, List, Optional

import numpy as np

from imagesr.colour import PlanarFormat
from imagesr.media import (
    MAX_MEGAPIXELS,
    MediaError,
    VideoInfo,
    check_pixels,
    decode_image,
    is_image_path,
    iter_folder_frames,
    iter_video_frames,
    list_frames,
    probe_video,
)
from imagesr.upscale.options import Size


@dataclass
class Source:
    """What is being upscaled: a video, a frame folder or one image."""

    kind: str  # "video" | "folder" | "image"
    path: str
    total: Optional[int]  # frames, when known
    fps: Optional[Fraction]  # videos only
    has_audio: bool = False
    names: Optional[List[str]] = None  # frame folders: the frames' file names
    info: Optional[VideoInfo] = field(default=None, repr=False)  # videos: the probe
    max_megapixels: float = MAX_MEGAPIXELS  # frames larger than this are refused before they are decoded

    def frame_size(self) -> Size:
        """(height, width) of the frames, before any is upscaled (a video's from its probe; an
        image's or a folder's first frame decoded: EXIF orientation can swap the sides)."""
        if self.kind == "video":
            return self.info.height, self.info.width
        first = self.path if self.kind == "image" else list_frames(self.path)[0]
        return decode_image(first, max_megapixels=self.max_megapixels).shape[:2]

    def frames(self, planar: Optional[PlanarFormat] = None) -> Iterator[np.ndarray]:
        """The frames, lazily (decoding happens in whichever thread iterates); a video's as flat
        Y'CbCr vectors of ``planar`` when given."""
        if self.kind == "folder":
            return iter_folder_frames(self.path, max_megapixels=self.max_megapixels)
        if self.kind == "image":
            return (decode_image(p, max_megapixels=self.max_megapixels) for p in [self.path])
        # A variable-rate video is written at a constant rate: resample it to that rate as its
        # timestamps say, or its frames would drift from its (copied) audio.
        rate = self.fps if self.info is not None and self.info.variable_rate else None
        return iter_video_frames(self.path, info=self.info, planar=planar, constant_rate=rate,
                                 max_megapixels=self.max_megapixels)


def open_source(path: str, max_megapixels: float = MAX_MEGAPIXELS) -> Source:
    """Classify and probe the input (raises MediaError with the reason for a bad one, a video
    whose frames are over ``max_megapixels`` included)."""
    path = str(path)
    if os.path.isdir(path):
        files = list_frames(path)
        if not files:
            raise MediaError(path, "folder holds no image frames")
        return Source("folder", path, len(files), None, names=[os.path.basename(f) for f in files],
                      max_megapixels=max_megapixels)
    if os.path.isfile(path) and is_image_path(path):
        return Source("image", path, 1, None, max_megapixels=max_megapixels)
    info = probe_video(path)
    check_pixels(path, info.width, info.height, max_megapixels)
    fps = Fraction(info.fps).limit_denominator(1001) if info.fps and info.fps > 0 else None
    total = info.frame_count
    if total is None and info.duration and info.fps:
        total = int(round(info.duration * info.fps))  # an estimate, for the ETA only
    return Source("video", path, total, fps, has_audio=info.has_audio, info=info, max_megapixels=max_megapixels)
