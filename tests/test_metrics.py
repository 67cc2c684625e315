import math

import numpy as np
import pytest
from conftest import shared_path, smooth_image

from imagesr.core import evaluation
from imagesr.core.metrics import psnr, rgb_to_y, ssim


def test_y_channel_matches_matlab_rgb2ycbcr():
    assert rgb_to_y(np.array([[[0, 0, 0]]]))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.array([[[255, 255, 255]]]))[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(np.array([[[255, 0, 0]]]))[0, 0] == pytest.approx(16 + 65.481)


def test_psnr_known_values():
    a = np.full((10, 10), 100.0)
    assert psnr(a, a) == math.inf
    b = a + 5  # MSE 25
    assert psnr(b, a, test_y_channel=False) == pytest.approx(10 * math.log10(255**2 / 25))


def test_crop_border_excludes_edges():
    a = smooth_image(40, 40)
    b = a.copy()
    b[:2] = 0
    assert psnr(b, a, crop_border=2) == math.inf
    assert psnr(b, a, crop_border=1) < 30


def test_grayscale_and_ssim():
    g = smooth_image(64, 64)[..., 0]
    assert ssim(g, g) == pytest.approx(1.0)
    noisy = np.clip(g + np.random.default_rng(0).normal(0, 10, g.shape), 0, 255)
    assert 0 < ssim(noisy, g) < 1
    assert psnr(g[..., None], g[..., None]) == math.inf


def test_shape_mismatch_and_tiny_images():
    with pytest.raises(ValueError, match="differ"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="too small"):
        psnr(np.zeros((4, 4)), np.ones((4, 4)), crop_border=2)
    with pytest.raises(ValueError, match="window"):
        ssim(np.zeros((8, 8)), np.ones((8, 8)))


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "dataset,published,tolerance",
    [("Set5", (33.66, 30.39, 28.42), 0.05), ("Set14", (30.24, 27.55, 26.00), 0.15)],
)
def test_bicubic_reproduces_published_baselines(dataset, published, tolerance):
    results = evaluation.evaluate_folder(shared_path("bench", dataset, "HR"), (2, 3, 4))
    for r, want in zip(results, published):
        assert abs(r.psnr_y - want) <= tolerance, (dataset, r.scale, r.psnr_y, want)
