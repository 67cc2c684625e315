#!/usr/bin/env bash
# Rehearse benchmarks/gpu_run.sh on this CPU in an environment built like the GPU machine's, before
# spending device time: Python 3.12, numpy 2, JAX (CPU), Keras 3.12.4, no TensorFlow, and no
# ffmpeg/ffprobe on the PATH (bind-mounted away in a private mount namespace, so the packed
# imageio-ffmpeg binary is the one used); imagesr installed from the packed wheel into that
# environment (GPU_VENV). Quick budgets and a longer deadline; minutes, not a measurement.
# usage: bash benchmarks/gpu_pack.sh && bash benchmarks/gpu_dryrun.sh [OUT]   (needs root for unshare)
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
venv=${GPU_DRYRUN_VENV:-/tmp/imagesr-gpu-venv}
if [ ! -x "$venv/bin/python" ]; then
  py=""  # a Python 3.12 that runs (a pyenv shim may exist for a version that is not selected)
  for c in "${PYTHON312:-}" python3.12 \
           "$(PYENV_VERSION=$(pyenv versions --bare 2>/dev/null | grep '^3\.12' | tail -1) pyenv which python3.12 2>/dev/null)"; do
    [ -n "$c" ] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { py=$c; break; }
  done
  [ -n "$py" ] || { echo "gpu_dryrun: no Python 3.12 found (set PYTHON312)" >&2; exit 2; }
  "$py" -m venv "$venv"
  # what the GPU image already holds (Keras, optree, ffmpeg-python, imageio-ffmpeg come from .gpu/whl)
  "$venv/bin/pip" install -q "numpy>=2" scipy pillow "jax[cpu]" absl-py rich h5py ml-dtypes packaging typing-extensions
fi
out=${1:-/tmp/imagesr-gpu-dryrun}; rm -rf "$out" /tmp/site
exec unshare -m bash -c 'for b in ffmpeg ffprobe; do p=$(command -v $b) && mount --bind /dev/null "$p"; done
  export PATH="'"$venv"'/bin:$PATH" GPU_VENV="'"$venv"'" OUT="'"$out"'" TRAIN_ARGS="--quick --workers 2" DEADLINE_S=${DEADLINE_S:-900}
  bash benchmarks/gpu_run.sh'
