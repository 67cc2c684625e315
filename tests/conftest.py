"""Shared fixtures: the real data beside the checkout (skipped where absent) and small media
made on the fly with Pillow and the real ffmpeg binary."""

import os
import subprocess

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("IMAGESR_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def shared_path(*parts) -> str:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"real data not available: {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 RGB image (smooth gradients plus texture) of size h x w."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack(
        [
            128 + 100 * np.sin(x / (7 + c) + y / (11 + 2 * c) + c) * np.cos(y / (13 + c))
            for c in range(3)
        ],
        axis=2,
    )
    base += r.normal(0, 6, size=base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def write_png(path, array) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def make_video(path, frames=12, size=(48, 64), fps=10, extra_args=(), pix_fmt="yuv420p") -> str:
    """Encode a small H.264 clip with the real ffmpeg binary (moving gradient frames)."""
    h, w = size
    raw = b"".join(smooth_image(h, w, seed=i).tobytes() for i in range(frames))
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:", "-c:v", "libx264", "-pix_fmt", pix_fmt,
        *extra_args, str(path),
    ]
    subprocess.run(cmd, input=raw, check=True)
    return str(path)
