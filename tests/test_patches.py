import numpy as np
import pytest
from conftest import smooth_image

from imagesr.core.patches import PatchOptions, residual_target, sample_frame
from imagesr.core.resize import crop_to_multiple, downscale, imresize


def test_lr_patches_are_the_frame_bicubic_at_that_place():
    frame = smooth_image(101, 130)
    opts = PatchOptions(scales=(2, 3, 4, 1.5), patch_size=24, stride=12, min_std=0)
    pairs = list(sample_frame(frame, opts, "d", "d/a.png"))
    assert {p.scale for p in pairs} == {2, 3, 4, 1.5}
    for s in (2, 3, 4, 1.5):
        hr = crop_to_multiple(frame, s)
        lr = downscale(hr, s)
        for p in [q for q in pairs if q.scale == s]:
            np.testing.assert_array_equal(p.hr, hr[p.y : p.y + 24, p.x : p.x + 24])
            ly, lx, n = int(round(p.y / s)), int(round(p.x / s)), int(round(24 / s))
            np.testing.assert_array_equal(p.lr, lr[ly : ly + n, lx : lx + n])


def test_flat_filter_cap_and_stats():
    frame = smooth_image(96, 96)
    frame[:48] = 128  # top half flat
    stats = {}
    pairs = list(sample_frame(frame, PatchOptions(scales=(2,), patch_size=24, stride=24, min_std=2), "d", "s", stats=stats))
    st = stats[2]
    assert st.candidates == 16 and st.flat == 8 and st.kept == len(pairs) == 8
    capped = list(sample_frame(frame, PatchOptions(scales=(2,), patch_size=24, stride=24, max_patches_per_frame=3), "d", "s"))
    assert len(capped) == 3


def test_deterministic_and_order_independent():
    frame = smooth_image(120, 120)
    opts = PatchOptions(scales=(2, 3), patch_size=24, stride=12, max_patches_per_frame=5, dihedral="random", seed=7)
    a = [(p.scale, p.y, p.x, p.hr.tobytes()) for p in sample_frame(frame, opts, "d", "s", 3)]
    b = [(p.scale, p.y, p.x, p.hr.tobytes()) for p in sample_frame(frame, opts, "d", "s", 3)]
    assert a == b
    other = PatchOptions(scales=(2, 3), patch_size=24, stride=12, max_patches_per_frame=5, dihedral="random", seed=8)
    assert a != [(p.scale, p.y, p.x, p.hr.tobytes()) for p in sample_frame(frame, other, "d", "s", 3)]


def test_dihedral_all_and_residual_exact():
    frame = smooth_image(48, 48)
    opts = PatchOptions(scales=(2,), patch_size=24, stride=24, dihedral="all", residual=True, min_std=0)
    pairs = list(sample_frame(frame, opts, "d", "s"))
    assert len(pairs) == 4 * 8
    assert len({p.hr.tobytes() for p in pairs}) == 32
    for p in pairs:
        up = imresize(p.lr, size=(24, 24)).astype(np.int16)
        np.testing.assert_array_equal(up + p.residual, p.hr.astype(np.int16))
        np.testing.assert_array_equal(p.residual, residual_target(p.lr, p.hr))


def test_small_frames_and_bad_options():
    stats = {}
    assert list(sample_frame(smooth_image(20, 200), PatchOptions(scales=(2,)), "d", "s", stats=stats)) == []
    assert stats[2].candidates == 0
    with pytest.raises(ValueError, match="multiple of 3"):
        PatchOptions(scales=(3,), patch_size=50)
    with pytest.raises(ValueError, match="stride"):
        PatchOptions(scales=(1.5,), stride=20)
    with pytest.raises(ValueError, match="> 1"):
        PatchOptions(scales=(1,))
    with pytest.raises(ValueError, match="dihedral"):
        PatchOptions(dihedral="sometimes")
