#!/usr/bin/env bash
# Fill the ignored .gpu/ folder with what benchmarks/gpu_run.sh needs on the GPU machine
# (Python 3.12, JAX, no TensorFlow, no ffmpeg binary, no network), within the device tool's
# 64 MiB per call:
#   wheels: Keras 3.12.4 + namex + optree, imageio-ffmpeg 0.5.1 (a static ffmpeg; 27 MB),
#           ffmpeg-python 0.2.0 + future (imagesr.media's pipes)
#   data:   ../shared/data/train (T91 + BSD200; T91's BMPs re-stored as PNG: the same pixels,
#           checked, in a third of the bytes), bench/Set5/HR and bench/Set14/HR, video/cockatoo.mp4
# usage (here, from the checkout): bash benchmarks/gpu_pack.sh   then carry .gpu in the device call
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
../shared/tools/gpu-kit --ffmpeg --data train,bench
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform any -d .gpu/whl ffmpeg-python==0.2.0 future==1.0.0
rm -rf .gpu/data/bench/*/LR_bicubic .gpu/data/video && mkdir -p .gpu/data/video
cp ../shared/data/video/cockatoo.mp4 .gpu/data/video/
py=.venv/bin/python; [ -x $py ] || py=python3
$py - <<'PY'
import glob, os
import numpy as np
from PIL import Image
n = 0
for bmp in sorted(glob.glob(".gpu/data/train/T91/*.bmp")):
    png = bmp[:-4] + ".png"
    with Image.open(bmp) as im:
        im.save(png, optimize=True)
    with Image.open(bmp) as a, Image.open(png) as b:
        if a.mode != b.mode or not np.array_equal(np.asarray(a), np.asarray(b)):
            raise SystemExit(f"{png}: pixels differ from {bmp}")
    os.remove(bmp)
    n += 1
print(f"gpu_pack: {n} T91 BMPs re-stored as PNG, pixels identical")
PY
size=$(du -sm .gpu | cut -f1); tree=$(git ls-files -z | xargs -0 du -cm | tail -1 | cut -f1)
echo "gpu_pack: .gpu is ${size} MiB, tracked files ${tree} MiB (the device call takes 64 MiB in all)"
[ $((size + tree)) -lt 63 ] || { echo "gpu_pack: too large for one device call" >&2; exit 1; }
