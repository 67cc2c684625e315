"""Speed of the core MATLAB bicubic against Pillow's bicubic, measured in one run.

Downscales a 2040x1356 RGB image (a DIV2K-sized frame) by 2 with imagesr's imresize and with
Pillow's Image.resize(BICUBIC), interleaved, after warm-up, and prints the median times and
their ratio. Also times x3, x4 and 1280x720 -> 1920x1080 for reference.

usage: python benchmarks/resize.py [--image PATH] [--repeats N]
"""

import argparse
import platform
import statistics
import time

import numpy as np
from PIL import Image

from imagesr.core.media import decode_image
from imagesr.core.resize import imresize


def _photo(path):
    if path:
        img = decode_image(path)
    else:  # a real photograph from scikit-image, enlarged to DIV2K size
        from skimage import data

        img = imresize(data.astronaut(), size=(1356, 2040))
    return np.ascontiguousarray(img[:1356, :2040])


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=None, help="an image to use instead of the built-in photograph")
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    img = _photo(args.image)
    pil = Image.fromarray(img)
    h, w = img.shape[:2]
    print(f"image {w}x{h}, {platform.processor() or platform.machine()}, numpy {np.__version__}, Pillow {Image.__version__}")
    cases = [("x2 down", 0.5), ("x3 down", 1 / 3), ("x4 down", 0.25)]
    for label, s in cases:
        size = (int(round(h * s)), int(round(w * s)))
        ours = lambda: imresize(img, size=size)  # noqa: E731
        theirs = lambda: pil.resize((size[1], size[0]), Image.BICUBIC)  # noqa: E731
        ours(), theirs()  # warm-up (weight matrices are cached per shape)
        t_ours, t_pil = [], []
        for _ in range(args.repeats):  # interleaved so machine noise hits both alike
            t_ours.append(_median_time(ours, 1))
            t_pil.append(_median_time(theirs, 1))
        a, b = statistics.median(t_ours), statistics.median(t_pil)
        print(f"{label:10s} imagesr {a * 1e3:7.1f} ms   Pillow {b * 1e3:7.1f} ms   ratio {a / b:5.2f}")
    small = np.ascontiguousarray(imresize(img, size=(720, 1280)))
    up = lambda: imresize(small, size=(1080, 1920))  # noqa: E731
    up()
    print(f"{'720p->1080p':10s} imagesr {_median_time(up, 7) * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
