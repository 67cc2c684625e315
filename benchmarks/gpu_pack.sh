#!/usr/bin/env bash
# Fill the ignored .gpu/ folder with what benchmarks/gpu_run.sh needs on a GPU machine with
# Python 3.12 and JAX but no TensorFlow, no ffmpeg binary and no network, in two parts that each
# travel within a 64 MiB transfer beside the checkout (the first part stays on the machine for
# the second call):
#   .gpu/whl     part 1: the imagesr wheel built here, Keras 3.12.4 (the version the shipped
#                models are saved with) + namex + optree, ffmpeg-python + future, imageio-ffmpeg
#                (a static ffmpeg binary)
#   .gpu/video   part 1: real-video sequences for the x1.5 model (DAVIS 2016 training sequences of
#                datasets/training_data.json, FRAMES consecutive frames each, as near-lossless H.264)
#   .gpu/photos  part 2: HR photographs for x2/x3/x4 (the manifest's photo sources, CROP px crops
#                as PNG, as many as fit)
#   .gpu/bench   part 2: Set5/HR and Set14/HR, and the held-out 720p clip for timing
# usage: bash benchmarks/gpu_pack.sh TRAIN_DIR BENCH_DIR CLIP
#   TRAIN_DIR: datasets/extract.py's --dest; BENCH_DIR: holds Set5/HR and Set14/HR; CLIP: a 1280x720 video
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
train=${1:?TRAIN_DIR}; bench=${2:?BENCH_DIR}; clip=${3:?CLIP}
frames=${FRAMES:-24}; crop=${CROP:-480}; limit_mb=63
py=.venv/bin/python; [ -x $py ] || py=python3
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/whl .gpu/video .gpu/photos .gpu/bench
$py -m pip wheel -q --no-deps -w .gpu/whl . >/dev/null
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .gpu/whl \
  keras==3.12.4 namex optree ffmpeg-python==0.2.0 future==1.0.0 imageio-ffmpeg==0.7.0
tree_mb() { git ls-files -z | xargs -0 du -cb | tail -1 | awk '{print $1 / 1048576}'; }
fits() { awk -v a="$(tree_mb)" -v b="$(du -sb "$@" | awk '{s += $1} END {print s / 1048576}')" -v l=$limit_mb 'BEGIN {exit !(a + b < l)}'; }
# part 1: real-video sequences, one near-lossless H.264 file each, until the part is full
ff=$($py -c "from imagesr.core.media import ffmpeg_binary; print(ffmpeg_binary())")
for seq in "$train"/davis2016-train/DAVIS/JPEGImages/480p/*/; do
  name=$(basename "$seq")
  "$ff" -nostdin -loglevel error -y -framerate 25 -i "$seq/%05d.jpg" -frames:v "$frames" -c:v libx264 -crf 14 \
    -preset slow -pix_fmt yuv420p ".gpu/video/$name.mp4"
  fits .gpu/whl .gpu/video || { rm ".gpu/video/$name.mp4"; break; }
done
# part 2: the benchmark sets and the timing clip, then photo crops until the part is full
cp -r "$bench/Set5" "$bench/Set14" .gpu/bench/ && rm -rf .gpu/bench/*/LR_bicubic
cp "$clip" .gpu/bench/clip_720p.mp4
$py - "$train" "$crop" "$limit_mb" "$(tree_mb)" <<'PY'
import glob, os, sys
import numpy as np
from PIL import Image
train, crop, limit, tree = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
photos = sorted(p for src in ("elementary-wallpapers", "deepin-wallpapers", "budgie-backgrounds", "popos-wallpapers",
                              "kde-wallpapers") for p in glob.glob(os.path.join(train, src, "*.png")))
used = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(".gpu/bench") for f in fs) / 2**20
n, k = 0, 0
while True:  # one crop per photo per round, from a different place each round, until the part is full
    made = 0
    for p in photos:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"))
        h, w = a.shape[:2]
        ys, xs = max(1, (h - crop) // 2), max(1, (w - crop) // 2)
        y, x = [(0, 0), (ys, xs), (h - crop, w - crop), (0, w - crop), (h - crop, 0)][k % 5]
        out = f".gpu/photos/{os.path.basename(p)[:-4]}_{k}.png"
        Image.fromarray(a[max(0, y):max(0, y) + crop, max(0, x):max(0, x) + crop]).save(out, optimize=True)
        size = os.path.getsize(out) / 2**20
        if tree + used + size >= limit:
            os.remove(out)
            print(f"gpu_pack: {n} photo crops of {crop} px, part 2 is {tree + used:.1f} MiB with the tree")
            sys.exit(0)
        used, n, made = used + size, n + 1, made + 1
    k += 1
    if not made:
        break
PY
for part in "whl video" "photos bench"; do
  set -- $part
  echo "gpu_pack: part [.gpu/$1 .gpu/$2]: $(du -sb .gpu/$1 .gpu/$2 | awk '{s += $1} END {printf "%.1f", s / 1048576}') MiB" \
       "+ tracked files $(tree_mb | cut -c1-5) MiB (the limit of one transfer is 64 MiB)"
  fits .gpu/$1 .gpu/$2 || { echo "gpu_pack: part [$1 $2] too large" >&2; exit 1; }
done
echo "gpu_pack: $(ls .gpu/video | wc -l) sequences of $frames frames, $(ls .gpu/photos | wc -l) photo crops"
