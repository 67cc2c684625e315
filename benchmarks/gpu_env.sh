# Sourced by the GPU run scripts: log everything to $OUT/log.txt, install imagesr as a user would
# on a GPU machine without network (the wheel built by benchmarks/gpu_pack.sh, with --no-deps
# into a virtual environment that sees the machine's own JAX, numpy, Pillow and scikit-image;
# Keras, ffmpeg-python and imageio-ffmpeg from the carried wheels), then run the console script
# and the benchmarks against that install. Sets t0 and puts the venv first on PATH.
set -uo pipefail
OUT=${OUT:-/tmp/imagesr-gpu-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
t0=$(date +%s)
venv=${GPU_VENV:-/tmp/imagesr-venv}
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv" || exit 1
"$venv/bin/python" -m pip install -q --no-index --no-deps --no-compile --force-reinstall .gpu/whl/*.whl || exit 1
export PATH="$venv/bin:$PATH" KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
imagesr --version 2>/dev/null || true
checkout=$PWD
(cd / && python3 -c "import imagesr, os, sys; sys.exit(os.path.realpath(imagesr.__file__).startswith('$checkout'))") \
  || { echo "gpu_env: imagesr is imported from the checkout, not the installed wheel" >&2; exit 1; }
echo "gpu_env: imagesr installed from $(ls .gpu/whl/imagesr-*.whl) in $(( $(date +%s) - t0 )) s"
