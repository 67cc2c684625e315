"""Y'CbCr <-> R'G'B' for video frames: which matrix a stream uses, and the conversions.

Video is stored as Y'CbCr; models see R'G'B'. One policy decides the matrix everywhere
(decoding to RGB, encoding from RGB, and the planar route of live upscaling, which
converts on the accelerator):

* a stream's own ``colorspace`` tag when it has one (``bt709``; ``smpte170m``/``bt470bg``
  are BT.601; ``bt2020nc``, HDR10's and HLG's, is BT.2020);
* untagged streams as players show them: BT.709 for HD (width >= 1280 or height > 576),
  BT.601 below;
* limited ("tv") range unless the stream says full ("pc"/``yuvj``).

Outputs are tagged with the matrix they were converted with, so a player cannot guess
differently. The conversion functions take an array namespace ``xp`` (numpy by default,
``jax.numpy`` inside a jitted call) and work on batches ``[N, ...]``.

Planar layouts are ffmpeg's ``rawvideo``: ``yuv420p`` (Y at full size, then Cb and Cr at
half width and height, chroma sited left and between rows, H.264/MPEG-2's default) and
``yuv444p`` (three full-size planes); a frame travels as one flat uint8 vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

# (Kr, Kb) of each matrix; Kg = 1 - Kr - Kb.
MATRICES = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114), "bt2020": (0.2627, 0.0593)}
# ffmpeg's names for the tags written with each matrix when the input names none:
# (colorspace, primaries, transfer).
TAGS = {"bt709": ("bt709", "bt709", "bt709"), "bt601": ("smpte170m", "smpte170m", "smpte170m"),
        "bt2020": ("bt2020nc", "bt2020", "bt709")}
SWS_MATRIX = {"bt709": "bt709", "bt601": "smpte170m", "bt2020": "bt2020"}  # the names ffmpeg's scale filter takes
_BT601_NAMES = ("smpte170m", "bt470bg", "bt601", "bt470m", "fcc")
PLANAR_FORMATS = {"yuv420p": False, "yuvj420p": True, "yuv444p": False, "yuvj444p": True}  # -> full range


def is_hd(width: int, height: int) -> bool:
    return width >= 1280 or height > 576


def stream_matrix(color_space: Optional[str], width: int, height: int) -> str:
    """``"bt709"`` or ``"bt601"`` for a stream with this tag (None/unknown: by its size)."""
    cs = (color_space or "").lower()
    if cs.startswith("bt709"):
        return "bt709"
    if cs.startswith("bt2020"):  # HDR10 / HLG / wide-gamut SDR; a wrong matrix would shift every colour
        return "bt2020"
    if cs.startswith(_BT601_NAMES):
        return "bt601"
    return "bt709" if is_hd(width, height) else "bt601"


def output_matrix(width: int, height: int) -> str:
    """The matrix written (and tagged) for new video of this size."""
    return "bt709" if is_hd(width, height) else "bt601"


def is_full_range(color_range: Optional[str], pix_fmt: str = "") -> bool:
    return (color_range or "").lower() in ("pc", "jpeg", "full") or pix_fmt.startswith("yuvj")


@dataclass(frozen=True)
class PlanarFormat:
    """One frame layout of 8-bit planar Y'CbCr: pixel format, size, matrix and range."""

    pix_fmt: str  # yuv420p | yuv444p (| the yuvj full-range names)
    height: int
    width: int
    matrix: str = "bt709"
    full_range: bool = False

    def __post_init__(self):
        if self.pix_fmt not in PLANAR_FORMATS:
            raise ValueError(f"unsupported planar format {self.pix_fmt!r}")
        if self.matrix not in MATRICES:
            raise ValueError(f"unknown matrix {self.matrix!r}")
        if self.subsampled and (self.height % 2 or self.width % 2):
            raise ValueError(f"{self.pix_fmt} needs even sides, got {self.width}x{self.height}")

    @property
    def subsampled(self) -> bool:
        return "420" in self.pix_fmt

    @property
    def frame_bytes(self) -> int:
        n = self.height * self.width
        return n * 3 // 2 if self.subsampled else 3 * n

    @property
    def size(self) -> Tuple[int, int]:
        return self.height, self.width

    def to_rgb(self, flat, xp=np):
        """[N, frame_bytes] uint8 -> [N, H, W, 3] float32 R'G'B' in 0..255, rounded to integers
        (what a model trained on 8-bit images sees)."""
        h, w = self.size
        flat = xp.asarray(flat).astype(xp.float32)
        n = h * w
        y = flat[:, :n].reshape(-1, h, w)
        if self.subsampled:
            q = n // 4
            cb = _upsample_chroma(flat[:, n:n + q].reshape(-1, h // 2, w // 2), xp)
            cr = _upsample_chroma(flat[:, n + q:].reshape(-1, h // 2, w // 2), xp)
        else:
            cb, cr = flat[:, n:2 * n].reshape(-1, h, w), flat[:, 2 * n:].reshape(-1, h, w)
        kr, kb = MATRICES[self.matrix]
        kg = 1.0 - kr - kb
        if self.full_range:
            ey, pb, pr = y / 255.0, (cb - 128.0) / 255.0, (cr - 128.0) / 255.0
        else:
            ey, pb, pr = (y - 16.0) / 219.0, (cb - 128.0) / 224.0, (cr - 128.0) / 224.0
        r = ey + 2.0 * (1.0 - kr) * pr
        b = ey + 2.0 * (1.0 - kb) * pb
        g = (ey - kr * r - kb * b) / kg
        rgb = xp.stack([r, g, b], axis=-1) * 255.0
        return xp.clip(xp.floor(rgb + 0.5), 0.0, 255.0)

    def from_rgb(self, rgb, xp=np):
        """[N, H, W, 3] R'G'B' in 0..255 (float or uint8) -> [N, frame_bytes] uint8."""
        rgb = xp.clip(xp.asarray(rgb).astype(xp.float32), 0.0, 255.0) / 255.0
        kr, kb = MATRICES[self.matrix]
        kg = 1.0 - kr - kb
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        ey = kr * r + kg * g + kb * b
        pb, pr = (b - ey) / (2.0 * (1.0 - kb)), (r - ey) / (2.0 * (1.0 - kr))
        if self.subsampled:
            pb, pr = _downsample_chroma(pb, xp), _downsample_chroma(pr, xp)
        if self.full_range:
            y, cb, cr = ey * 255.0, 128.0 + pb * 255.0, 128.0 + pr * 255.0
        else:
            y, cb, cr = 16.0 + ey * 219.0, 128.0 + pb * 224.0, 128.0 + pr * 224.0
        planes = [p.reshape(p.shape[0], -1) for p in (y, cb, cr)]
        out = xp.concatenate(planes, axis=1)
        return xp.clip(xp.floor(out + 0.5), 0.0, 255.0).astype(xp.uint8)


def _shift(c, axis: int, step: int, xp):
    """``c`` moved by one sample along ``axis`` (step -1: c[i-1], +1: c[i+1]), edges repeated
    (slices, not a gather: gathers are slow on some accelerators' compilers)."""
    n = c.shape[axis]
    sl = lambda a, b: (slice(None),) * axis + (slice(a, b),)  # noqa: E731
    if step < 0:
        return xp.concatenate([c[sl(0, 1)], c[sl(0, n - 1)]], axis=axis)
    return xp.concatenate([c[sl(1, n)], c[sl(n - 1, n)]], axis=axis)


def _interleave(even, odd, axis: int, xp):
    s = even.shape
    both = xp.stack([even, odd], axis=axis + 1)
    return both.reshape(s[:axis] + (2 * s[axis],) + s[axis + 1:])


def _upsample_chroma(c, xp):
    """[N, h, w] 4:2:0 chroma -> [N, 2h, 2w]: linear, sited as H.264 by default (horizontally on
    the even luma columns, vertically half-way between the two rows)."""
    c = _interleave(0.75 * c + 0.25 * _shift(c, 1, -1, xp), 0.75 * c + 0.25 * _shift(c, 1, 1, xp), 1, xp)
    return _interleave(c, 0.5 * (c + _shift(c, 2, 1, xp)), 2, xp)


def _downsample_chroma(c, xp):
    """[N, 2h, 2w] chroma -> [N, h, w] at the same siting: the mean of each row pair, then
    [1 2 1]/4 centred on the even columns."""
    c = 0.5 * (c[:, 0::2] + c[:, 1::2])
    even = c[:, :, 0::2]
    return 0.25 * (_shift(c, 2, -1, xp)[:, :, 0::2] + 2.0 * even + c[:, :, 1::2])
