# Sourced by the GPU run scripts: log everything to $OUT/log.txt, install the packed wheels
# (.gpu/whl, from benchmarks/gpu_pack.sh) and select Keras's JAX backend. Sets t0.
set -uo pipefail
OUT=${OUT:-/tmp/imagesr-gpu-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
