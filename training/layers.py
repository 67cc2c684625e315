"""Backend-neutral Keras 3 layers for SR models: MATLAB bicubic resize, pixel (un)shuffle and
SPAN's parameter-free attention (the re-parameterisable convolution: ``imagesr.training.reparam``).

``BicubicResize`` is ``imagesr.core.resize.imresize`` expressed in ``keras.ops`` (same kernel,
same coordinate mapping, same mirrored borders, same height-then-width order and, with
``quantize=True``, the same uint8 rounding between and after the passes), so a model can
carry its own bicubic input or skip connection and give bit-identical results to the numpy
core on TensorFlow and on JAX. Values are in [0, 255].
"""

from __future__ import annotations

from fractions import Fraction

import keras
import numpy as np
from keras import ops

from imagesr.core.resize import contributions, cubic
from imagesr.core.scale import Scale


def _phase_table(ratio: Fraction):
    """Weights and left taps of MATLAB's contributions for one period of output positions.

    For a ratio num/den, output x + num reads input taps shifted by exactly den with the same
    weights, so the float64 table of one period (from :func:`imagesr.core.resize.contributions`,
    the numpy core's own, then cast to float32) plus integer offsets reproduces the core
    exactly, on any backend and without float64 on the device.
    """
    period, shift = ratio.numerator, ratio.denominator
    weights, indices = contributions(np.arange(1, period + 1), float(ratio))
    return period, shift, indices[:, 0].astype(np.int64) - 1, weights.astype(np.float32)  # 0-based left tap


def _resize_axis(x, axis: int, in_len, out_len, ratio: Fraction, quantize: bool):
    """MATLAB contributions along ``axis`` (1 = height, 2 = width of NHWC), as tap gathers."""
    period, shift, left0, weights = _phase_table(ratio)
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
        weights.append(cubic(ops.cast(num - den * idx, "float32") / den_f, xp=ops))
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


def bicubic_upscale_to(x, out_h, out_w):
    """MATLAB bicubic upscaling (uint8 semantics) of NHWC [0, 255] to a run-time size >= input."""
    x = _resize_axis_dynamic(x, 1, ops.shape(x)[1], out_h)
    return _resize_axis_dynamic(x, 2, ops.shape(x)[2], out_w)


def _length(x, axis: int):
    """A spatial length: a Python int when static, else a scalar tensor (TF graphs)."""
    dim = x.shape[axis]
    return dim if dim is not None else ops.shape(x)[axis]


def _scaled_length(length, scale: Scale):
    """MATLAB's output side ``ceil(scale * side)``, exactly (integers, also inside a graph)."""
    if isinstance(length, int):
        return scale.hr_side(length)
    return ops.floor_divide(length * scale.numerator + scale.denominator - 1, scale.denominator)


def bicubic_resize(x, scale=None, size=None, quantize: bool = True):
    """MATLAB bicubic of an NHWC float tensor in [0, 255], by an SR ``scale`` or to ``size`` (h, w).

    With ``scale`` the output side is MATLAB's ``ceil(scale * side)`` (the rule of
    :func:`imagesr.core.resize.output_size`); spatial sizes may be dynamic (TF graphs) or static
    (JAX). With ``size`` the per-axis ratio is ``out / in`` exactly and the input size must be
    static.
    """
    if size is not None:
        in_h, in_w = x.shape[1], x.shape[2]
        if in_h is None or in_w is None:
            raise ValueError("bicubic_resize(size=...) needs a static input height and width")
        ratios = (Fraction(int(size[0]), in_h), Fraction(int(size[1]), in_w))
        outs = (int(size[0]), int(size[1]))
    else:
        scale = Scale(scale)
        ratios = (scale, scale)
        outs = (_scaled_length(_length(x, 1), scale), _scaled_length(_length(x, 2), scale))
    for axis in sorted((1, 2), key=lambda a: ratios[a - 1]):  # smaller scale first, height on ties
        if ratios[axis - 1] == 1:
            continue
        x = _resize_axis(x, axis, _length(x, axis), outs[axis - 1], ratios[axis - 1], quantize)
    return x


@keras.saving.register_keras_serializable(package="imagesr")
class BicubicResize(keras.layers.Layer):
    """Resize NHWC [0, 255] images by ``scale`` with MATLAB's bicubic (see module doc).

    Output size is MATLAB's ``ceil(scale * input)`` per side.
    """

    def __init__(self, scale: float, quantize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.quantize = bool(quantize)

    def call(self, x):
        return bicubic_resize(x, scale=self.scale, quantize=self.quantize)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        s = Scale(self.scale)
        return (n, None if h is None else s.hr_side(h), None if w is None else s.hr_side(w), c)

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
    """What PixelShuffle and PixelUnshuffle share: an integer factor, saved in the config, and
    the output shape (sides times the factor and channels over its square, or the inverse)."""

    grows = True  # PixelShuffle: space from depth; PixelUnshuffle: the inverse

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}

    def compute_output_shape(self, s):
        r = self.factor
        side = (lambda n: None if n is None else n * r) if self.grows else (lambda n: None if n is None else n // r)
        return (s[0], side(s[1]), side(s[2]), s[3] // (r * r) if self.grows else s[3] * r * r)


@keras.saving.register_keras_serializable(package="imagesr")
class PixelShuffle(_PixelRearrange):
    def call(self, x):
        return pixel_shuffle(x, self.factor)


@keras.saving.register_keras_serializable(package="imagesr")
class PixelUnshuffle(_PixelRearrange):
    grows = False

    def call(self, x):
        return pixel_unshuffle(x, self.factor)


@keras.saving.register_keras_serializable(package="imagesr")
class SymmetricAttention(keras.layers.Layer):
    """SPAN's parameter-free attention: ``(features + skip) * (sigmoid(features) - 0.5)``.

    The weights come from the block's own last convolution through an activation symmetric
    about the origin, so a feature and its negation are weighted alike; no parameters, one
    element-wise pass (Wan et al., "Swift Parameter-free Attention Network", 2024).
    """

    def call(self, inputs):
        features, skip = inputs
        return (features + skip) * (ops.sigmoid(features) - 0.5)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]
