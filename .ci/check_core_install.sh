#!/usr/bin/env bash
# The live tool as a user installs it: a fresh virtual environment on Python 3.12 (else 3.13,
# else 3.11; CORE_PYTHON=3.13 picks one), `pip install .` (the core, no extras), then, with TFX, Beam and
# TensorFlow checked absent: `imagesr upscale` of a small clip, `imagesr evaluate --model
# subpixel_x2` on the built-in samples, a pipeline command refused with the extra to install,
# and the shipped-model tests (each model loads under this Python's Keras and JAX and, where the
# reference data is present, reproduces its card's Set5 figure). Prints the install's time and size.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source infra/find_python.sh
py=""
for v in ${CORE_PYTHON:-3.12 3.13 3.11}; do
  py=$(PYTHON="" find_python "$v") && break || py=""
done
if [ -z "$py" ]; then
  echo "check_core_install: skipped: no Python 3.11, 3.12 or 3.13 on this machine (pyenv or python3.X on PATH)"
  exit 0
fi
work=$(mktemp -d -t imagesr-core-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$py" -m venv "$work/venv"
bin=$work/venv/bin
t0=$(date +%s)
"$bin/python" -m pip install -q --upgrade "pip>=24" >/dev/null
# from a clean copy of the tree (tracked and untracked-not-ignored files): a stale build/ folder must not
# lend the wheel files that a fresh clone would not have
mkdir -p "$work/src"
git ls-files -z -co --exclude-standard | xargs -0 cp -P --parents -t "$work/src"
"$bin/python" -m pip install -q "$work/src" pytest
echo "check_core_install: $("$bin/python" --version): core install (pip install .) took $(( $(date +%s) - t0 )) s," \
  "$(du -sm "$work/venv" | cut -f1) MB (with pytest for the checks below)"
"$bin/python" - <<'PY'
import importlib.util
import imagesr.training  # selects Keras's backend before Keras loads (JAX here: no TensorFlow)
import jax, keras, numpy
present = [m for m in ("tensorflow", "tfx", "apache_beam", "ml_metadata", "kfp") if importlib.util.find_spec(m)]
assert not present, f"the core install brought {present}"
print(f"check_core_install: keras {keras.__version__} ({keras.backend.backend()}), jax {jax.__version__}, "
      f"numpy {numpy.__version__}; "
      "TensorFlow, TFX, Beam, ml-metadata, kfp absent")
PY
cd "$work"
"$bin/imagesr" samples --dest samples >/dev/null
small=$work/small.mp4
"$bin/python" - "$small" <<'PY'
# a small clip (12 frames of 160x96) from the built-in sample clip, decoded and encoded by imagesr
import itertools, sys
from imagesr.core.media import encode_video, iter_video_frames
from imagesr.core.resize import imresize
frames = [imresize(f, size=(96, 160)) for f in itertools.islice(iter_video_frames("samples/video/pan_720p.mp4"), 12)]
encode_video(sys.argv[1], frames, fps=25.0)
PY
"$bin/imagesr" upscale "$small" -o "$work/up.mp4"
"$bin/python" - "$work/up.mp4" <<'PY'
import sys
from imagesr.core.media import probe_video
info = probe_video(sys.argv[1])
assert (info.width, info.height) == (240, 144), info
print(f"check_core_install: upscale: {sys.argv[1]} is {info.width}x{info.height}")
PY
"$bin/imagesr" evaluate --model subpixel_x2 --dataset samples/images/bench --json > eval.json
"$bin/python" - <<'PY'
import json
r = json.load(open("eval.json"))
print(f"check_core_install: evaluate subpixel_x2 on the built-in samples: "
      + ", ".join(f"x{x['scale']:g} {x['psnr_y']:.2f} dB" for x in r["results"]))
assert all(x["psnr_y"] > 25 for x in r["results"]), r
PY
set +e
"$bin/imagesr" patches --input samples --output "$work/patches" 2> refused.txt
rc=$?
set -e
grep -q "imagesr\[pipeline\]" refused.txt && [ "$rc" = 2 ] \
  || { echo "check_core_install: patches without the pipeline extra: rc $rc, $(cat refused.txt)" >&2; exit 1; }
echo "check_core_install: patches refused: $(cat refused.txt)"
cd "$root"
"$bin/pytest" -q -p no:cacheprovider tests/test_shipped.py
