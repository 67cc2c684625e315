"""Backend-neutral Keras 3 layers for SR models: MATLAB bicubic resize and pixel (un)shuffle.

``BicubicResize`` is ``imagesr.resize.imresize`` expressed in ``keras.ops`` (same kernel,
same coordinate mapping, same mirrored borders, same height-then-width order and, with
``quantize=True``, the same uint8 rounding between and after the passes), so a model can
carry its own bicubic input or skip connection and give bit-identical results to the numpy
core on TensorFlow and on JAX. Values are in [0, 255].
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

import keras
from keras import ops


def _phase_table(scale: float):
    """Weights and left taps of MATLAB's contributions for one period of output positions.

    For a scale num/den, output x + num reads input taps shifted by exactly den with the same
    weights, so the float64 table of one period (computed like imagesr.resize, normalised,
    then cast to float32) plus integer offsets reproduces the numpy core exactly, on any
    backend and without float64 on the device.
    """
    frac = Fraction(scale).limit_denominator(10000)
    period, shift = frac.numerator, frac.denominator
    antialias = scale < 1
    kernel_width = 4.0 / scale if antialias else 4.0
    taps = int(math.ceil(kernel_width)) + 2
    x = np.arange(1, period + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    d = u[:, None] - (left[:, None] + np.arange(taps))
    w = scale * _np_cubic(d * scale) if antialias else _np_cubic(d)
    w = w / w.sum(axis=1, keepdims=True)
    return period, shift, left.astype(np.int64) - 1, w.astype(np.float32)  # 0-based left tap


def _np_cubic(x):
    ax = np.abs(x)
    return (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1) + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _resize_axis(x, axis: int, in_len, out_len, scale: float, quantize: bool):
    """MATLAB contributions along ``axis`` (1 = height, 2 = width of NHWC), as tap gathers."""
    period, shift, left0, weights = _phase_table(scale)
    pos = ops.arange(out_len, dtype="int32")  # out_len may be a scalar tensor (TF graphs)
    phase = ops.mod(pos, period)
    left = ops.take(ops.convert_to_tensor(left0.astype(np.int32)), phase) + (pos // period) * shift
    acc = None
    for k in range(weights.shape[1]):
        j = ops.mod(left + k, 2 * in_len)  # mirror (symmetric padding) into [0, in_len)
        j = ops.where(j >= in_len, 2 * in_len - 1 - j, j)
        w = ops.take(ops.convert_to_tensor(weights[:, k]), phase)
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        term = ops.take(x, j, axis=axis) * ops.reshape(ops.cast(w, x.dtype), shape)
        acc = term if acc is None else acc + term
    if quantize:
        acc = ops.clip(ops.floor(acc + 0.5), 0.0, 255.0)
    return acc


def _resize_axis_dynamic(x, axis: int, in_len, out_len):
    """Upscaling along ``axis`` to a length known only at run time (a serving signature's
    size input): MATLAB's contributions computed in float32 on the device. Equal to the
    numpy core except for float32 rounding ties at exact .5 values (on noise at x1.5 about 0.1% of
    values, one level, as between the float32 core and a float64 MATLAB emulation)."""
    # u = x / s + (1 - 1/s) / 2 with s = out/in, as one exact integer ratio:
    # u = (2 x in + out - in) / (2 out); taps and distances stay integers until one division.
    pos = ops.arange(out_len, dtype="int32") + 1
    num = 2 * pos * in_len + out_len - in_len
    den = 2 * out_len
    left = ops.floor_divide(num - 4 * out_len, den)  # floor(u - 2)
    den_f = ops.cast(den, "float32")
    weights, indices = [], []
    for k in range(6):  # upscaling: kernel width 4, ceil(4) + 2 taps
        idx = left + k
        weights.append(_cubic_ops(ops.cast(num - den * idx, "float32") / den_f))
        j = ops.mod(idx - 1, 2 * in_len)  # 1-based -> 0-based, mirrored into [0, in_len)
        indices.append(ops.where(j >= in_len, 2 * in_len - 1 - j, j))
    total = weights[0]
    for w in weights[1:]:
        total = total + w
    acc = None
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    for w, j in zip(weights, indices):
        term = ops.take(x, j, axis=axis) * ops.reshape(w / total, shape)
        acc = term if acc is None else acc + term
    return ops.clip(ops.floor(acc + 0.5), 0.0, 255.0)


def _cubic_ops(x):
    ax = ops.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * ops.cast(ax <= 1.0, "float32")
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ops.cast((ax > 1.0) & (ax <= 2.0), "float32")
    return near + far


def bicubic_upscale_to(x, out_h, out_w):
    """MATLAB bicubic upscaling (uint8 semantics) of NHWC [0, 255] to a run-time size >= input."""
    x = _resize_axis_dynamic(x, 1, ops.shape(x)[1], out_h)
    return _resize_axis_dynamic(x, 2, ops.shape(x)[2], out_w)


def _length(x, axis: int):
    """A spatial length: a Python int when static, else a scalar tensor (TF graphs)."""
    dim = x.shape[axis]
    return dim if dim is not None else ops.shape(x)[axis]


def _scaled_length(length, scale: float):
    if isinstance(length, int):
        return int(round(length * scale))
    return ops.cast(ops.round(ops.cast(length, "float32") * scale), "int32")


def bicubic_resize(x, scale: float = None, size=None, quantize: bool = True):
    """MATLAB bicubic of an NHWC float tensor in [0, 255], by ``scale`` or to ``size`` (h, w).

    With ``scale`` the output side is ``round(scale * side)`` (SR inputs are cropped to a
    multiple of the scale's modulus, where this equals MATLAB's ``ceil``); spatial sizes may
    be dynamic (TF graphs) or static (JAX). With ``size`` the per-axis scale is ``out / in``
    and the input size must be static.
    """
    if size is not None:
        in_h, in_w = x.shape[1], x.shape[2]
        if in_h is None or in_w is None:
            raise ValueError("bicubic_resize(size=...) needs a static input height and width")
        scales = (size[0] / in_h, size[1] / in_w)
        outs = (int(size[0]), int(size[1]))
    else:
        scales = (float(scale), float(scale))
        outs = (_scaled_length(_length(x, 1), scales[0]), _scaled_length(_length(x, 2), scales[1]))
    for axis in sorted((1, 2), key=lambda a: scales[a - 1]):  # smaller scale first, height on ties
        if scales[axis - 1] == 1.0:
            continue
        x = _resize_axis(x, axis, _length(x, axis), outs[axis - 1], scales[axis - 1], quantize)
    return x


@keras.saving.register_keras_serializable(package="imagesr")
class BicubicResize(keras.layers.Layer):
    """Resize NHWC [0, 255] images by ``scale`` with MATLAB's bicubic (see module doc).

    Output size is ``round(scale * input)`` per side (inputs are cropped to a multiple of
    the scale's modulus by the SR protocol, so this equals MATLAB's ``ceil``).
    """

    def __init__(self, scale: float, quantize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.quantize = bool(quantize)

    def call(self, x):
        return bicubic_resize(x, scale=self.scale, quantize=self.quantize)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        s = self.scale
        return (n, None if h is None else int(round(h * s)), None if w is None else int(round(w * s)), c)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "quantize": self.quantize}


def pixel_shuffle(x, r: int):
    """(N, H, W, C*r*r) -> (N, H*r, W*r, C), channels_last, backend-neutral (depth_to_space)."""
    shape = ops.shape(x)
    n, h, w, c = shape[0], shape[1], shape[2], x.shape[-1] // (r * r)
    x = ops.reshape(x, (n, h, w, r, r, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (n, h * r, w * r, c))


def pixel_unshuffle(x, r: int):
    """(N, H*r, W*r, C) -> (N, H, W, C*r*r), the inverse of pixel_shuffle (space_to_depth)."""
    shape = ops.shape(x)
    n, h, w, c = shape[0], shape[1] // r, shape[2] // r, x.shape[-1]
    x = ops.reshape(x, (n, h, r, w, r, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (n, h, w, r * r * c))


class _PixelRearrange(keras.layers.Layer):
    """What PixelShuffle and PixelUnshuffle share: an integer factor, saved in the config."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="imagesr")
class PixelShuffle(_PixelRearrange):
    def call(self, x):
        return pixel_shuffle(x, self.factor)

    def compute_output_shape(self, s):
        r = self.factor
        return (s[0], None if s[1] is None else s[1] * r, None if s[2] is None else s[2] * r, s[3] // (r * r))


@keras.saving.register_keras_serializable(package="imagesr")
class PixelUnshuffle(_PixelRearrange):
    def call(self, x):
        return pixel_unshuffle(x, self.factor)

    def compute_output_shape(self, s):
        r = self.factor
        return (s[0], None if s[1] is None else s[1] // r, None if s[2] is None else s[2] // r, s[3] * r * r)
