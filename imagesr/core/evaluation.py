"""Benchmark evaluation of an upscaler on a folder of HR images (the one SR protocol).

For each HR image and scale ``s``: crop the HR to a multiple of ``s``, make the LR with the
core MATLAB bicubic, upscale it back with the upscaler under test, and measure Y-PSNR and
SSIM with ``crop_border = ceil(s)``. ``imagesr bench bicubic``, ``imagesr evaluate``, the TFX
evaluator and the benchmarks all call :func:`evaluate_folder`, so their numbers agree.

Grayscale HR images (Set14's ``bridge.png``) are measured on their own intensity; the
upscaler receives them as 3-channel RGB (channels equal) and its output is averaged back to
one channel.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from imagesr.core import degrade, metrics, resize
from imagesr.core.degrade import CLEAN, Degradation
from imagesr.core.media import IMAGE_EXTENSIONS, MAX_MEGAPIXELS, MediaError, decode_image, read_regular
from imagesr.core.scale import Scale

log = logging.getLogger(__name__)

# upscaler(lr_rgb_uint8, (out_h, out_w), scale) -> sr_rgb_uint8 of that size
Upscaler = Callable[[np.ndarray, tuple, float], np.ndarray]


def bicubic_upscaler(lr: np.ndarray, size: tuple, scale: float) -> np.ndarray:
    """The baseline: MATLAB bicubic upscaling to the HR size."""
    return resize.imresize(lr, size=size)


@dataclass
class ImageResult:
    image: str
    scale: float
    psnr_y: float
    ssim_y: float


@dataclass
class ScaleResult:
    scale: float
    psnr_y: float
    ssim_y: float
    images: int
    per_image: List[ImageResult] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)  # images too small for this scale

    def summary(self) -> Dict:
        d = asdict(self)
        d.pop("per_image")
        if not self.skipped:
            d.pop("skipped")
        d["scale"] = _scale_json(self.scale)
        return d


def _scale_json(s: float):
    return int(s) if float(s).is_integer() else float(s)


def list_images(folder: str) -> List[str]:
    """Sorted image files directly in ``folder``; a clear error if none or missing."""
    if not os.path.isdir(folder):
        raise MediaError(folder, "no such folder")
    files = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise MediaError(folder, "folder holds no images")
    return files


def load_hr(path: str, max_megapixels: Optional[float] = MAX_MEGAPIXELS) -> np.ndarray:
    """HR image as uint8: HxWx3, or HxW for a single-channel (grayscale) file. Only a regular
    file is read, and one over the pixel budget is refused before it is decoded."""
    data = read_regular(path)
    rgb = decode_image(data, name=path, max_megapixels=max_megapixels)  # the decoder's errors and conversions
    try:
        with Image.open(io.BytesIO(data)) as im:  # header only: was it single-channel?
            gray = im.mode in ("L", "I;16", "I;16B", "I;16L", "I", "1", "F")
    except OSError:
        gray = False
    return rgb[..., 0] if gray else rgb


SSIM_WINDOW = 11


def too_small(hr: np.ndarray, scale: float) -> bool:
    """Whether an HR image leaves no SSIM window after the protocol's crops at ``scale``
    (to a multiple of the scale, then the border of ``ceil(scale)`` on every side)."""
    h, w = resize.crop_to_multiple(hr, scale).shape[:2]
    return min(h, w) - 2 * int(math.ceil(scale)) < SSIM_WINDOW


def degraded_lr(rgb: np.ndarray, scale, degradation: Degradation = CLEAN) -> np.ndarray:
    """The LR of an HR image already cropped to the scale's modulus: the MATLAB bicubic (the
    protocol), or through another :class:`~imagesr.core.degrade.Degradation` (the real-video path)."""
    if degradation == CLEAN:
        return resize.downscale(rgb, scale)
    s = Scale(scale)
    return degrade.apply([rgb], (s.lr_side(rgb.shape[0]), s.lr_side(rgb.shape[1])), degradation)[0]


def _measure(hr: np.ndarray, rgb: np.ndarray, lr: np.ndarray, upscaler: Upscaler, scale: float) -> tuple:
    sr = np.asarray(upscaler(lr, rgb.shape[:2], scale))
    if sr.shape[:2] != rgb.shape[:2]:
        raise ValueError(f"upscaler returned {sr.shape[:2]}, expected {rgb.shape[:2]}")
    if hr.ndim == 2:
        sr = sr.astype(np.float64).mean(axis=2)
    border = int(math.ceil(scale))
    return (
        metrics.psnr(sr, hr, crop_border=border, test_y_channel=True),
        metrics.ssim(sr, hr, crop_border=border, test_y_channel=True),
    )


def evaluate_image(hr: np.ndarray, scale: float, upscaler: Upscaler, degradation: Degradation = CLEAN) -> tuple:
    """(psnr_y, ssim_y) of ``upscaler`` on one HR image at ``scale`` under the protocol, the LR
    made by ``degradation`` (default: the MATLAB bicubic)."""
    hr = resize.crop_to_multiple(hr, scale)
    rgb = np.repeat(hr[..., None], 3, axis=2) if hr.ndim == 2 else hr
    return _measure(hr, rgb, degraded_lr(rgb, scale, degradation), upscaler, scale)


def evaluate_models(
    dataset: str,
    upscalers: Dict[str, Tuple[Upscaler, Sequence[float]]],
    progress: Optional[Callable[[str], None]] = None,
    degradation: Degradation = CLEAN,
    max_megapixels: Optional[float] = MAX_MEGAPIXELS,
) -> Dict[str, List[ScaleResult]]:
    """Mean Y-PSNR/SSIM per scale of each ``{name: (upscaler, scales)}`` over the HR images in
    ``dataset``, every model on the same LR: each image's LR is made once per scale (for
    real-video input, one encoder round trip) and given to every model in turn. Images too
    small for a scale are skipped with a warning naming them (and listed in the result); a
    scale that leaves no image is an error, and so is an image over ``max_megapixels``."""
    files = list_images(dataset)
    images = [(os.path.basename(f), load_hr(f, max_megapixels)) for f in files]
    order = list(dict.fromkeys(float(s) for _, scales in upscalers.values() for s in scales))
    per: Dict[tuple, List[ImageResult]] = {}
    skipped: Dict[float, List[str]] = {}
    for s in order:
        names = [n for n, (_, scales) in upscalers.items() if s in {float(x) for x in scales}]
        for image, hr in images:
            if too_small(hr, s):
                log.warning("%s: %dx%d is too small to measure at x%g; skipped", os.path.join(dataset, image),
                            hr.shape[1], hr.shape[0], s)
                skipped.setdefault(s, []).append(image)
                continue
            hr_s = resize.crop_to_multiple(hr, s)
            rgb = np.repeat(hr_s[..., None], 3, axis=2) if hr_s.ndim == 2 else hr_s
            lr = degraded_lr(rgb, s, degradation)
            for n in names:
                p, q = _measure(hr_s, rgb, lr, upscalers[n][0], s)
                per.setdefault((n, s), []).append(ImageResult(image, s, p, q))
                if progress:
                    progress(f"{n + ' ' if len(upscalers) > 1 else ''}x{s:g} {image}: {p:.2f} dB")
        if not any((n, s) in per for n in names):
            raise MediaError(dataset, f"every image is too small to measure at x{s:g}")
    out: Dict[str, List[ScaleResult]] = {}
    for n, (_, scales) in upscalers.items():
        out[n] = [ScaleResult(scale=float(s), psnr_y=float(np.mean([r.psnr_y for r in per[(n, float(s))]])),
                              ssim_y=float(np.mean([r.ssim_y for r in per[(n, float(s))]])),
                              images=len(per[(n, float(s))]), per_image=per[(n, float(s))],
                              skipped=skipped.get(float(s), []))
                  for s in scales]
    return out


def evaluate_folder(
    dataset: str,
    scales: Sequence[float] = (2, 3, 4),
    upscaler: Upscaler = bicubic_upscaler,
    progress: Optional[Callable[[str], None]] = None,
    degradation: Degradation = CLEAN,
    max_megapixels: Optional[float] = MAX_MEGAPIXELS,
) -> List[ScaleResult]:
    """:func:`evaluate_models` for one upscaler."""
    return evaluate_models(dataset, {"model": (upscaler, scales)}, progress, degradation, max_megapixels)["model"]


def results_json(dataset: str, results: Iterable[ScaleResult], **extra) -> Dict:
    """The JSON convention of the benchmark commands: {"dataset", "results": [...], ...}."""
    out = {"dataset": dataset, "results": [r.summary() for r in results]}
    out.update(extra)
    return out


def format_table(results: Iterable[ScaleResult], title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'scale':>6} {'PSNR-Y (dB)':>12} {'SSIM-Y':>8} {'images':>7}")
    for r in results:
        lines.append(f"{'x' + str(_scale_json(r.scale)):>6} {r.psnr_y:>12.2f} {r.ssim_y:>8.4f} {r.images:>7}")
    return "\n".join(lines)
