"""Shared fixtures: the real data beside the checkout (skipped where absent) and small media
made on the fly with Pillow and the real ffmpeg binary."""

import os
import socket
import subprocess
import sys
import time

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


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_emulator():
    """A real GCS-protocol server (gcp-storage-emulator) on 127.0.0.1 for the session."""
    exe = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    if not os.path.exists(exe):
        pytest.skip("gcp-storage-emulator not installed (pip install -e '.[test]')")
    port = _free_port()
    proc = subprocess.Popen([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("GCS emulator did not start")
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    from imagesr.components.beam.patch_transform import configure_gcs_emulator

    configure_gcs_emulator()
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    if old is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = old


