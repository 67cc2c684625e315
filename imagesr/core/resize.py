"""MATLAB ``imresize``-compatible bicubic resizing (the one bicubic of the project).

Every stage that degrades or upsamples (the Beam job, training targets, evaluation,
live upscaling) calls :func:`imresize`, so that what is trained on, evaluated and served
is resized identically.

What MATLAB does, and this module reproduces:

* cubic kernel with ``a = -0.5`` (Keys), support 4;
* when downscaling with antialiasing (the default), the kernel is stretched by
  ``1/scale`` (support ``4/scale``), i.e. a low-pass filter before sampling;
* output coordinate ``x`` maps to input ``u = x/scale + 0.5 (1 - 1/scale)`` (1-based);
* out-of-range taps are mirrored (symmetric padding);
* weights are normalised to sum to one per output sample;
* the two dimensions are resized one after the other, the dimension with the smaller
  scale first (height first on ties);
* the uint8 path: ``imresizemex`` returns the input's class after *each* dimension, so the
  intermediate image is rounded (half away from zero) and saturated to uint8 between the
  two passes, and again at the end. Skipping that intermediate rounding (as most Python
  ports do) leaves only about 88% of the values of Set5's MATLAB-made LR images identical;
  with it, all of them are.
* output size for a scale factor is ``ceil(scale * input)``.

Arrays are HxW or HxWxC (any C), uint8 or floating point; uint8 input gives uint8 output,
float input gives float output of the same dtype (no clipping, as MATLAB).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse

from imagesr.core.scale import Scale

Size = Tuple[int, int]


def cubic(x, xp=np):
    """Keys' cubic convolution kernel with a = -0.5, as MATLAB's ``cubic``: the one kernel of
    every bicubic in imagesr (``xp``: numpy, or ``keras.ops`` inside a model's graph)."""
    ax = xp.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = xp.where(ax <= 1.0, 1.5 * ax3 - 2.5 * ax2 + 1.0, 0.0)
    far = xp.where((ax > 1.0) & (ax <= 2.0), -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0, 0.0)
    return near + far


def contributions(out_positions: np.ndarray, scale: float, antialias: bool = True):
    """MATLAB's contributions for 1-based output positions along one axis: (weights
    [n, taps] float64, normalised, 1-based input indices [n, taps]) before mirroring. The
    one place the bicubic weights are computed: the numpy core's sparse matrices and the
    Keras layers' phase tables both come from here."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width = kernel_width / scale
    x = np.asarray(out_positions, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    dist = u[:, None] - indices
    if scale < 1 and antialias:
        weights = scale * cubic(dist * scale)
    else:
        weights = cubic(dist)
    return weights / weights.sum(axis=1, keepdims=True), indices


@functools.lru_cache(maxsize=64)
def _weight_matrix(in_length: int, out_length: int, scale: float, antialias: bool, dtype_name: str):
    """Sparse (out_length x in_length) matrix of MATLAB's contributions along one axis.

    Cached: the Beam job and video upscaling resize thousands of same-sized frames.
    """
    weights, indices = contributions(np.arange(1, out_length + 1), scale, antialias)
    taps = weights.shape[1]
    # Symmetric (mirror) padding of out-of-range taps, in 0-based indices.
    idx = indices.astype(np.int64) - 1
    period = 2 * in_length
    idx = np.mod(idx, period)
    idx = np.where(idx >= in_length, period - 1 - idx, idx)
    rows = np.repeat(np.arange(out_length), taps)
    matrix = scipy.sparse.coo_matrix(
        (weights.ravel(), (rows, idx.ravel())), shape=(out_length, in_length)
    ).tocsr()  # duplicate (mirrored) taps are summed, as MATLAB's accumulation does
    matrix.eliminate_zeros()
    return matrix.astype(np.dtype(dtype_name))


def output_size(in_size: Size, scale) -> Size:
    """MATLAB's output size for a scale factor: ``ceil(scale * size)`` per dimension: the one
    output-size rule of every stage. An SR :class:`~imagesr.core.scale.Scale` is exact; a float
    (down-scaling) is guarded against float noise (0.5 * 1020 = 510.00000000000006) first."""
    h, w = in_size
    if isinstance(scale, Fraction):
        return (-(-h * scale.numerator // scale.denominator), -(-w * scale.numerator // scale.denominator))
    return (int(math.ceil(round(h * scale, 9))), int(math.ceil(round(w * scale, 9))))


def _round_uint8(a: np.ndarray) -> np.ndarray:
    """MATLAB's double -> uint8: round half away from zero, saturate.

    In place on ``a`` (a temporary): after clipping to [0, 255] the values are non-negative,
    so the truncating cast of ``a + 0.5`` is exactly round-half-up.
    """
    np.add(a, 0.5, out=a)
    np.maximum(a, 0, out=a)  # two ufuncs: several times faster than np.clip in numpy 1.26
    np.minimum(a, 255, out=a)
    return a.astype(np.uint8)


def _swap_hw(a: np.ndarray) -> np.ndarray:
    """Contiguous copy with height and width swapped.

    Viewing each pixel's channels as one opaque element turns the HxWxC transpose into a
    2-D one, which numpy does several times faster than moveaxis on the 3-D array.
    """
    a = np.ascontiguousarray(a)
    if a.ndim == 2:
        return np.ascontiguousarray(a.T)
    h, w, c = a.shape
    pixels = a.view(np.dtype((np.void, a.itemsize * c))).reshape(h, w)
    return np.ascontiguousarray(pixels.T).view(a.dtype).reshape(w, h, c)


def _resize_rows(a: np.ndarray, out_length: int, scale: float, antialias: bool) -> np.ndarray:
    """Resize along axis 0 with one sparse banded matrix product (float32/64 in and out)."""
    m = _weight_matrix(a.shape[0], out_length, float(scale), antialias, a.dtype.name)
    flat = np.ascontiguousarray(a).reshape(a.shape[0], -1)
    return np.asarray(m @ flat).reshape((out_length,) + a.shape[1:])


def imresize(
    image: np.ndarray,
    scale: Optional[Union[float, Sequence[float]]] = None,
    size: Optional[Size] = None,
    antialias: bool = True,
) -> np.ndarray:
    """Bicubic resize exactly as MATLAB ``imresize(image, scale)`` / ``imresize(image, [h w])``.

    Args:
      image: HxW or HxWxC array, uint8 or float (values in any range; float is not clipped).
      scale: a factor (0.5 halves, 1.5 enlarges) or a (scale_h, scale_w) pair; the output
        size is ``ceil(scale * input size)``.
      size: explicit output (height, width) instead of ``scale``; the per-axis scale is then
        ``out / in`` (e.g. 720x1280 -> 1080x1920 is 1.5 on both axes).
      antialias: widen the kernel when downscaling (MATLAB's default, True).

    Returns:
      The resized array, uint8 for uint8 input (rounded as MATLAB), otherwise the input's
      float dtype (float16 and integer types other than uint8 are computed in float32/64).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize expects HxW or HxWxC, got shape {image.shape}")
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    in_h, in_w = image.shape[:2]
    if in_h == 0 or in_w == 0:
        raise ValueError(f"cannot resize an empty image of shape {image.shape}")
    if size is not None:
        out_h, out_w = int(size[0]), int(size[1])
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"output size must be positive, got {size}")
        scales = (out_h / in_h, out_w / in_w)
    else:
        scales = (float(scale), float(scale)) if np.isscalar(scale) else tuple(float(s) for s in scale)
        if len(scales) != 2 or min(scales) <= 0:
            raise ValueError(f"scale must be positive (one number or a pair), got {scale}")
        out_h = output_size((in_h, 1), scales[0])[0]
        out_w = output_size((1, in_w), scales[1])[1]

    is_uint8 = image.dtype == np.uint8
    # float32 is exact enough for 8-bit data (errors ~1e-5 of a level); keep float64 as float64.
    float_dtype = np.float32 if is_uint8 or image.dtype in (np.float32, np.float16) else np.float64
    work = image
    out_lengths = (out_h, out_w)
    # MATLAB: resize along the dimension with the smallest scale first (height first on ties).
    # The width pass runs on a transposed copy so both passes are row products.
    for axis in sorted((0, 1), key=lambda d: scales[d]):
        if work.shape[axis] == out_lengths[axis] and scales[axis] == 1.0:
            continue
        if axis == 1:
            work = _swap_hw(work)
        work = _resize_rows(work.astype(float_dtype, copy=False), out_lengths[axis], scales[axis], antialias)
        if is_uint8:
            work = _round_uint8(work)
        if axis == 1:
            work = _swap_hw(work)
    if is_uint8:
        return work.astype(np.uint8, copy=False)
    if image.dtype.kind == "f":
        return work.astype(image.dtype, copy=False)
    return work.astype(float_dtype, copy=False)


def crop_to_multiple(image: np.ndarray, scale) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of the scale's modulus (the SR
    protocol: 2 for x2, 3 for x1.5), so that LR and HR align exactly."""
    m = Scale(scale).modulus
    h, w = image.shape[:2]
    return image[: h - h % m, : w - w % m]


def downscale(hr: np.ndarray, scale) -> np.ndarray:
    """LR image for an HR image already cropped to a multiple of the scale (MATLAB bicubic)."""
    s = Scale(scale)
    h, w = hr.shape[:2]
    if h % s.modulus or w % s.modulus:
        raise ValueError(f"HR size {w}x{h} is not a multiple of {s.modulus} for scale {s}; crop_to_multiple first")
    return imresize(hr, size=(s.lr_side(h), s.lr_side(w)))


def imresize_stack(images: np.ndarray, size: Size) -> np.ndarray:
    """:func:`imresize` of N same-sized uint8 images ``[N, H, W(, C)]`` to ``size`` at once:
    one sparse product per axis for the whole stack instead of two per image, with MATLAB's
    uint8 rounding between and after the passes, so every image equals its own ``imresize``
    bit for bit (the patch job's residuals, thousands of patches a frame)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(f"imresize_stack expects uint8 [N, H, W(, C)], got {images.dtype} {images.shape}")
    n, in_h, in_w = images.shape[:3]
    out_h, out_w = int(size[0]), int(size[1])
    scales = (out_h / in_h, out_w / in_w)
    work = np.moveaxis(images, 0, 2)  # H, W, N(, C): the pixel axes first, the stack rides along
    for axis in sorted((0, 1), key=lambda d: scales[d]):  # MATLAB's order, as imresize
        if work.shape[axis] == (out_h, out_w)[axis] and scales[axis] == 1.0:
            continue
        if axis == 1:
            work = np.swapaxes(work, 0, 1)
        work = _round_uint8(_resize_rows(work.astype(np.float32), (out_h, out_w)[axis], scales[axis], True))
        if axis == 1:
            work = np.swapaxes(work, 0, 1)
    return np.ascontiguousarray(np.moveaxis(work, 2, 0))
