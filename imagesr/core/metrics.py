"""Y-channel PSNR and SSIM with the standard SR evaluation protocol (the one home for both).

Protocol (as the VDSR/EDSR papers' MATLAB code and BasicSR with ``test_y_channel=True``):

* RGB images in [0, 255] go to the Y channel of ITU-R BT.601 as MATLAB ``rgb2ycbcr``:
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``, in float64, **not rounded**;
* grayscale images (HxW or HxWx1) are measured on their own intensity, as those scripts do
  for a single-channel image (``bridge.png`` in Set14);
* ``crop_border`` pixels are removed from every side (the SR scale, by convention);
* PSNR = 10 log10(255^2 / MSE); SSIM is Wang et al.'s with an 11x11 Gaussian window
  (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, over the valid region, averaged.

Inputs are uint8 arrays or floats in [0, 255]; the ground truth is expected to be cropped to
the prediction's size already (``imagesr.core.resize.crop_to_multiple``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d

_YCBCR_Y = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y of BT.601 in [16, 235] as float64 for HxWx3 input in [0, 255]; gray passes through."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return image @ _YCBCR_Y + 16.0
    raise ValueError(f"expected HxW, HxWx1 or HxWx3, got shape {image.shape}")


def _prepare(pred: np.ndarray, target: np.ndarray, crop_border: int, test_y_channel: bool):
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {target.shape} differ in shape")
    if test_y_channel:
        pred, target = rgb_to_y(pred), rgb_to_y(target)
    else:
        pred, target = pred.astype(np.float64), target.astype(np.float64)
    if crop_border:
        c = int(crop_border)
        if pred.shape[0] <= 2 * c or pred.shape[1] <= 2 * c:
            raise ValueError(f"image {pred.shape[:2]} too small for crop_border={c}")
        pred = pred[c:-c, c:-c]
        target = target[c:-c, c:-c]
    return pred, target


def psnr(pred: np.ndarray, target: np.ndarray, crop_border: int = 0, test_y_channel: bool = True) -> float:
    """PSNR in dB (peak 255) between two images in [0, 255]; ``inf`` when identical."""
    pred, target = _prepare(pred, target, crop_border, test_y_channel)
    mse = np.mean((pred - target) ** 2)
    if mse == 0:
        return math.inf
    return float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation keeping only the 'valid' region (as MATLAB filter2 'valid')."""
    r = len(g) // 2
    out = correlate1d(correlate1d(a, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    return out[r:-r, r:-r]


def _ssim_2d(a: np.ndarray, b: np.ndarray) -> float:
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    g = _gaussian_window()
    mu_a = _filter_valid(a, g)
    mu_b = _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a**2
    var_b = _filter_valid(b * b, g) - mu_b**2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def ssim(pred: np.ndarray, target: np.ndarray, crop_border: int = 0, test_y_channel: bool = True) -> float:
    """SSIM in [-1, 1] (1 = identical); on Y when ``test_y_channel``, else the channel mean."""
    pred, target = _prepare(pred, target, crop_border, test_y_channel)
    if min(pred.shape[:2]) < 11:
        raise ValueError(f"image {pred.shape[:2]} smaller than the 11x11 SSIM window")
    if pred.ndim == 2:
        return _ssim_2d(pred, target)
    return float(np.mean([_ssim_2d(pred[..., c], target[..., c]) for c in range(pred.shape[2])]))
