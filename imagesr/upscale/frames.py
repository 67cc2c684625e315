"""Frames in, frames out: :class:`FrameProcessor` (padding to the architecture's multiple,
tiles that cover its receptive field, the exact output size, the planar route) around a
:class:`imagesr.training.serving.FrameUpscaler`, and loading the model by name or path."""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Optional, Tuple

import numpy as np

from imagesr.core import shipped
from imagesr.core.colour import PlanarFormat, output_matrix
from imagesr.core.resize import imresize, output_size
from imagesr.core.scale import Scale
from imagesr.upscale.options import DEFAULT_MODEL, Size, UpscaleError, _fmt_size


def tiled(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, tile: int, overlap: int,
          factor: Fraction = Fraction(1)) -> np.ndarray:
    """Apply ``run`` (upscaling by ``factor``) to overlapping tiles of NHWC ``x`` and stitch
    the tiles' cores. ``tile``, ``overlap`` and the sides of ``x`` must be multiples of
    ``factor``'s denominator, so that every tile's output lies on the whole frame's grid."""
    n, h, w, c = x.shape
    out = np.empty((n, int(h * factor), int(w * factor), c), np.uint8)
    # Every window has the same size (tile + 2 overlap, or the frame): windows at the borders
    # slide inwards instead of shrinking, so the model sees one input shape (one trace).
    win_h, win_w = min(tile + 2 * overlap, h), min(tile + 2 * overlap, w)
    for y0 in range(0, h, tile):
        y1, a0 = min(y0 + tile, h), min(max(0, y0 - overlap), h - win_h)
        for x0 in range(0, w, tile):
            x1, b0 = min(x0 + tile, w), min(max(0, x0 - overlap), w - win_w)
            piece = run(x[:, a0:a0 + win_h, b0:b0 + win_w])
            Y0, Y1, X0, X1, A0, B0 = (int(v * factor) for v in (y0, y1, x0, x1, a0, b0))
            out[:, Y0:Y1, X0:X1] = piece[:, Y0 - A0:Y1 - A0, X0 - B0:X1 - B0]
    return out


class FrameProcessor:
    """Batches of same-sized uint8 frames -> uint8 frames of exactly ``out_size``.

    Wraps a :class:`imagesr.training.serving.FrameUpscaler`: pads frames to the model's size multiple
    (symmetric borders), optionally runs the network on overlapping tiles, crops and resizes
    to the requested size. ``batch``: where each batch shape costs a compilation (JAX), a
    short batch (the last one) is padded to the shape already compiled.
    """

    def __init__(self, upscaler, in_size: Size, out_size: Size, tile: Optional[int] = None, batch: int = 1):
        self.up, self.in_size, self.out_size, self.batch = upscaler, tuple(in_size), tuple(out_size), batch
        self.planar: Optional[Tuple[PlanarFormat, PlanarFormat]] = None  # see use_planar
        self.spec = getattr(upscaler, "spec", None)  # None: the bicubic baseline (or a stand-in)
        self.fixed = self.spec is not None and self.spec.fixed_scale
        h, w = self.in_size
        if self.fixed:  # a sub-pixel network: its own scale, inputs in multiples of its unshuffle
            self.factor = Scale(upscaler.scale)
            self.grid = self.spec.input_multiple(self.factor)
            self.natural = output_size(self.in_size, self.factor)
        else:
            self.factor, self.grid, self.natural = Fraction(1), 1, self.out_size
        self.pad = (-h % self.grid, -w % self.grid)
        self.tile = self.overlap = None
        if tile and self.spec is not None:
            # the receptive field in input pixels, + 3 px for the bicubic (input or skip)
            context = self.spec.receptive_radius(upscaler.model) * self.spec.convolution_grid(self.factor) + 3
            self.tile = max(self.grid, -(-int(tile) // self.grid) * self.grid)
            self.overlap = -(-context // self.grid) * self.grid
        self._traced = False

    def use_planar(self, source: Optional[PlanarFormat]) -> bool:
        """Take and return flat Y'CbCr frames (``source``'s layout in, 4:2:0 out, tagged BT.709
        for HD) when the whole upscale is one device call: the JAX backend, no tiles, no padding,
        the model's own output size, even output sides. Returns whether it does."""
        out_h, out_w = self.out_size
        if (source is None or source.size != self.in_size or not self.up.backend.jit
                or self.tile is not None or any(self.pad) or self.natural != self.out_size or out_h % 2 or out_w % 2):
            return False
        self.planar = (source, PlanarFormat("yuv420p", out_h, out_w, output_matrix(out_w, out_h)))
        return True

    @property
    def model_scale_note(self) -> Optional[str]:
        """A note when the output size is not the model's own scale (bicubic makes up the rest)."""
        if not self.fixed or max(abs(a - b) for a, b in zip(self.natural, self.out_size)) <= 1:
            return None
        return (f"x{self.up.scale:g} model asked for x{self.out_size[1] / self.in_size[1]:.3g}: its "
                f"{_fmt_size(self.natural)} output is resized to {_fmt_size(self.out_size)} with bicubic")

    def _deep(self, frames: np.ndarray) -> np.ndarray:
        """16-bit RGB frames (10-bit video) -> 16-bit: the model's output on the frames rounded to
        8 bits, plus the MATLAB bicubic of what the rounding took away, so smooth 10-bit
        gradients stay 10-bit (no banding) and the network's detail is added as on 8-bit video."""
        x = frames.astype(np.float32) / 257.0
        x8 = np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)
        y8 = self(x8).astype(np.float32)
        rest = np.stack([imresize(e, size=self.out_size) for e in (x - x8)])
        return np.clip(np.floor((y8 + rest) * 257.0 + 0.5), 0, 65535).astype(np.uint16)

    def _run_natural(self, x: np.ndarray) -> np.ndarray:
        return self.up(x, (int(x.shape[1] * self.factor), int(x.shape[2] * self.factor)))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if getattr(frames, "dtype", None) == np.uint16:
            return self._deep(frames)
        frames = np.asarray(frames, dtype=np.uint8)
        n = len(frames)
        if n < self.batch and self._traced and self.up.backend.jit:
            frames = np.concatenate([frames, np.repeat(frames[-1:], self.batch - n, axis=0)])  # no recompile
        self._traced = self._traced or n == self.batch
        if self.planar is not None:  # a device array, not waited for
            out = self.up.planar(frames, self.planar)
            return out if len(frames) == n else out[:n]
        if self.spec is None:
            return self.up(frames, self.out_size)[:n]
        if not self.fixed:  # the network runs on the bicubic upscale at the output size
            if self.tile is None:
                return self.up(frames, self.out_size)[:n]
            hr = np.stack([imresize(f, size=self.out_size) for f in frames])
            return tiled(lambda t: self.up(t, t.shape[1:3]), hr, self.tile, self.overlap)[:n]
        x = frames
        if any(self.pad):
            x = np.pad(frames, ((0, 0), (0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="symmetric")
        y = self._run_natural(x) if self.tile is None else tiled(self._run_natural, x, self.tile, self.overlap, self.factor)
        y = y[:n, : self.natural[0], : self.natural[1]]
        if self.natural != self.out_size:
            y = np.stack([imresize(f, size=self.out_size) for f in y])
        return y


def load_model(model: Optional[str], scale: Optional[float] = None):
    """A FrameUpscaler for ``model``: a path, a shipped model's name or ``"bicubic"``; None: the
    shipped model trained for ``scale`` when there is one, else the default (x1.5) model."""
    from imagesr.training.serving import load_upscaler

    if model is None:
        chosen = shipped.for_scale(scale) if scale is not None else None
        model = chosen.name if chosen is not None else shipped.DEFAULT
        if shipped.get(model) is None:
            raise UpscaleError(f"the shipped model is not installed ({DEFAULT_MODEL} is missing): "
                               "pass --model bicubic or --model PATH (a model folder or a .keras file)")
    try:
        return load_upscaler(shipped.resolve(model))
    except ValueError as e:
        if isinstance(e, UpscaleError):
            raise
        raise UpscaleError(str(e)) from None
