import glob
import math
import os

import numpy as np
import pytest
from conftest import shared_path, smooth_image
from PIL import Image

from imagesr.core.resize import crop_to_multiple, downscale, imresize, output_size
from imagesr.core.scale import Scale


def reference_imresize_axis(a, out_len, scale):
    """Straight transcription of MATLAB's contributions() for one axis (float64, loops)."""
    in_len = a.shape[0]
    kw = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros((out_len,) + a.shape[1:])
    for i in range(out_len):
        x = i + 1
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - kw / 2)
        ws, idx = [], []
        for k in range(int(math.ceil(kw)) + 2):
            j = left + k
            d = u - j
            if scale < 1:
                d *= scale
            ad = abs(d)
            w = (1.5 * ad**3 - 2.5 * ad**2 + 1) if ad <= 1 else ((-0.5 * ad**3 + 2.5 * ad**2 - 4 * ad + 2) if ad <= 2 else 0)
            if scale < 1:
                w *= scale
            jj = j - 1
            while jj < 0 or jj >= in_len:  # symmetric padding
                jj = -jj - 1 if jj < 0 else 2 * in_len - 1 - jj
            ws.append(w)
            idx.append(jj)
        ws = np.array(ws) / np.sum(ws)
        out[i] = sum(w * a[j] for w, j in zip(ws, idx))
    return out


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 1.5, 2, 3, 2 / 3])
def test_matches_reference_transcription_float(scale, rng):
    a = rng.uniform(0, 1, size=(13, 11, 2))
    ref = reference_imresize_axis(a, output_size((13, 1), scale)[0], scale)
    ref = reference_imresize_axis(np.moveaxis(ref, 1, 0), output_size((1, 11), scale)[1], scale)
    ref = np.moveaxis(ref, 0, 1)
    got = imresize(a, scale)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_uint8_rounds_between_passes_like_matlab():
    """MATLAB's uint8 path rounds after each dimension: emulate with the float path."""
    img = smooth_image(30, 24)
    got = imresize(img, 0.5)
    step1 = np.clip(np.floor(imresize(img.astype(np.float64), (0.5, 1.0)) + 0.5), 0, 255)
    step2 = np.clip(np.floor(imresize(step1, (1.0, 0.5)) + 0.5), 0, 255)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, step2.astype(np.uint8))


def test_sizes_and_dtypes():
    img = smooth_image(720, 1280)
    up = imresize(img, size=(1080, 1920))
    assert up.shape == (1080, 1920, 3) and up.dtype == np.uint8
    assert imresize(img.astype(np.float32), 1.5).dtype == np.float32
    assert imresize(img[..., 0], 0.5).shape == (360, 640)
    assert output_size((171, 99), 0.5) == (86, 50)
    assert imresize(np.zeros((5, 7, 4), np.uint8), 2).shape == (10, 14, 4)


def test_constant_image_stays_constant():
    img = np.full((20, 17, 3), 77, np.uint8)
    for s in (0.5, 1 / 3, 1.5, 4):
        out = imresize(img, s)
        assert (out == 77).all()


def test_crop_and_modulus():
    assert [Scale(s).modulus for s in (2, 3, 1.5, 4, 4 / 3)] == [2, 3, 3, 4, 4]
    img = np.zeros((101, 77, 3), np.uint8)
    assert crop_to_multiple(img, 3).shape == (99, 75, 3)
    assert crop_to_multiple(img, 1.5).shape == (99, 75, 3)
    assert downscale(crop_to_multiple(img, 1.5), 1.5).shape == (66, 50, 3)
    with pytest.raises(ValueError, match="multiple"):
        downscale(img, 2)
    assert imresize(np.zeros((66, 50, 3), np.uint8), size=output_size((66, 50), Scale(1.5))).shape == (99, 75, 3)


def test_bad_arguments():
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), scale=2, size=(8, 8))
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), scale=-1)
    with pytest.raises(ValueError):
        imresize(np.zeros((0, 4)), scale=2)
    with pytest.raises(ValueError):
        imresize(np.zeros((4,)), scale=2)


@pytest.mark.shared_data
def test_reproduces_matlab_set5_lr_files():
    """Every Set5 LR file made by MATLAB imresize: >= 99% identical values, none off by > 2."""
    hr_dir = shared_path("bench", "Set5", "HR")
    checked = 0
    for scale in (2, 3, 4):
        for f in sorted(glob.glob(os.path.join(hr_dir, "*.png"))):
            name = os.path.splitext(os.path.basename(f))[0]
            ref = np.asarray(Image.open(shared_path("bench", "Set5", "LR_bicubic", f"X{scale}", f"{name}x{scale}.png")).convert("RGB"))
            hr = np.asarray(Image.open(f).convert("RGB"))
            lr = downscale(crop_to_multiple(hr, scale), scale)
            assert lr.shape == ref.shape, name
            diff = np.abs(lr.astype(int) - ref.astype(int))
            assert (diff == 0).mean() >= 0.99, (name, scale, (diff == 0).mean())
            assert diff.max() <= 2, (name, scale, diff.max())
            checked += 1
    assert checked == 15
