"""Built-in sample data: real photographs shipped inside scikit-image, and clips made from them.

No network and no cloud account: the photographs are the files in ``skimage/data`` that the
scikit-image wheel installs (not the ones it downloads on demand), and the clips are encoded
here with ffmpeg from those photographs (a slow pan, so consecutive frames differ as in
real footage). ``materialize(dest)`` writes the layout the rest of the project consumes::

    dest/images/train/*.png        photographs for training patches
    dest/images/bench/*.png        held-out photographs for PSNR (incl. a grayscale one)
    dest/DAVIS/JPEGImages/480p/pan/00000.jpg ...   a DAVIS-layout frame sequence
    dest/video/pan_720p.mp4        30 frames 1280x720 H.264 (the live-upscaling input size)

Writing is idempotent and atomic per file (a marker file records completion).
"""

from __future__ import annotations

import logging
import os
from typing import Dict, List

import numpy as np

from imagesr.core.media import encode_video, write_image
from imagesr.core.outputs import cache_dir
from imagesr.core.resize import imresize

log = logging.getLogger(__name__)

# (file in skimage/data, split). Natural photographs; 'camera' is grayscale on purpose.
_PHOTOS = {
    "astronaut": ("astronaut.png", "bench"),
    "camera": ("camera.png", "bench"),
    "coffee": ("coffee.png", "bench"),
    "chelsea": ("chelsea.png", "train"),
    "rocket": ("rocket.jpg", "train"),
    "motorcycle": ("motorcycle_left.png", "train"),
    "hubble": ("hubble_deep_field.jpg", "train"),
}

_MARKER = ".imagesr-samples-v1"
CLIP_FRAMES = 30
CLIP_SIZE = (720, 1280)


def default_dir() -> str:
    """Where sample data lives unless told otherwise."""
    return cache_dir("samples")


def _skimage_data_dir() -> str:
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data")


def photo(name: str) -> np.ndarray:
    """One shipped photograph as uint8 (HxWx3, or HxW for the grayscale 'camera')."""
    from PIL import Image

    from imagesr.core.media import decode_image

    fname = _PHOTOS[name][0]
    path = os.path.join(_skimage_data_dir(), fname)
    if name == "camera":
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    return decode_image(path)


def _pan_frames(n: int = CLIP_FRAMES, size=CLIP_SIZE) -> List[np.ndarray]:
    """A camera pan across a mosaic of the photographs, ``n`` frames of ``size`` (h, w)."""
    h, w = size
    tiles = [photo(n_) for n_ in ("motorcycle", "rocket", "coffee", "chelsea")]
    tiles = [imresize(t, size=(h, int(round(t.shape[1] * h / t.shape[0])))) for t in tiles]
    strip = np.concatenate(tiles, axis=1)
    travel = strip.shape[1] - w
    return [np.ascontiguousarray(strip[:, int(round(i * travel / (n - 1))) : int(round(i * travel / (n - 1))) + w]) for i in range(n)]


def materialize(dest: str = None) -> Dict[str, str]:
    """Write the sample images, frame folder and clip under ``dest``; return their paths."""
    dest = os.path.abspath(dest or default_dir())
    paths = {
        "root": dest,
        "train": os.path.join(dest, "images", "train"),
        "bench": os.path.join(dest, "images", "bench"),
        "davis": os.path.join(dest, "DAVIS"),
        "frames": os.path.join(dest, "DAVIS", "JPEGImages", "480p", "pan"),
        "video": os.path.join(dest, "video", "pan_720p.mp4"),
    }
    if os.path.exists(os.path.join(dest, _MARKER)):
        return paths
    for p in (paths["train"], paths["bench"], paths["frames"], os.path.dirname(paths["video"])):
        os.makedirs(p, exist_ok=True)
    for name, (_, split) in _PHOTOS.items():
        write_image(os.path.join(paths[split], f"{name}.png"), photo(name))
    frames = _pan_frames()
    # DAVIS 480p frames: 854x480 JPEGs, the same pan at DAVIS's size.
    for i, f in enumerate(frames[:8]):
        small = imresize(f, size=(480, 854))
        write_image(os.path.join(paths["frames"], f"{i:05d}.jpg"), small)
    encode_video(paths["video"], frames, fps=30.0)
    with open(os.path.join(dest, _MARKER), "w") as f:
        f.write("complete\n")
    log.info("sample data written to %s", dest)
    return paths
