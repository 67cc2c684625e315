#!/usr/bin/env bash
# The GPU checks of the training and live-upscaling issues in ONE device call (about 9 minutes):
#   1. benchmarks/gpu_train.py: patches from T91+BSD200 -> VDSR x2/x3/x4, then SubPixel-SR x2 and x1.5 side by side,
#      each within its time budget, bf16 -> `imagesr evaluate` on Set5/Set14 (CPU, in parallel)
#   2. benchmarks/upscale.py: 30 frames of cockatoo 1280x720 -> 1920x1080, compute-only and end to
#      end (ffmpeg decode + model + H.264 encode) for io / bicubic / VDSR / SubPixel-SR (the trained
#      models), then the efficient model again with a faster H.264 preset
# Everything lands in $OUT (at most 8 files): log.txt, results.json, upscale*.json, *.keras.
# Here, first: bash benchmarks/gpu_pack.sh. Device call: carry [".gpu"], command "bash benchmarks/gpu_run.sh",
# timeout_s 600. Budgets: TRAIN_ARGS="--budget vdsr_x2-3-4=230 ..." (see gpu_train.py --help).
source benchmarks/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_mode --format=csv,noheader || true
# Two training processes share the GPU unless it admits only one (then the runs go one by one).
groups=()
if nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2>/dev/null | grep -qi exclusive; then
  groups=(--groups vdsr_x2-3-4 subpixel_x2 subpixel_x1.5 --budget vdsr_x2-3-4=200 subpixel_x2=55 subpixel_x1.5=55)
  echo "compute mode exclusive: training runs one at a time"
fi
python3 -c "import jax, keras, numpy; print('jax', jax.__version__, jax.devices(), '| keras', keras.__version__, '| numpy', numpy.__version__)" || exit 1
echo "== gpu_train ($(( $(date +%s) - t0 )) s)"
timeout "${TRAIN_LIMIT:-490}" python3 benchmarks/gpu_train.py --data .gpu/data --out "$OUT" --mixed-precision \
  --eval-timeout 60 --deadline-s 430 "${groups[@]}" ${TRAIN_ARGS:-}
echo "gpu_train rc=$?"
trained=()
[ -f "$OUT/vdsr_x2-3-4.keras" ] && trained+=("vdsr=$OUT/vdsr_x2-3-4.keras")
[ -f "$OUT/subpixel_x1.5.keras" ] && trained+=("subpixel=$OUT/subpixel_x1.5.keras")
echo "== upscale ($(( $(date +%s) - t0 )) s)"
timeout "${UPSCALE_LIMIT:-80}" python3 benchmarks/upscale.py --clip .gpu/data/video/cockatoo.mp4 --batch 8 --models io subpixel bicubic vdsr \
  ${trained:+--model "${trained[@]}"} --json "$OUT/upscale.json"
echo "upscale rc=$?"
sp=(); [ -f "$OUT/subpixel_x1.5.keras" ] && sp=(--model "subpixel=$OUT/subpixel_x1.5.keras")
timeout 30 python3 benchmarks/upscale.py --clip .gpu/data/video/cockatoo.mp4 --batch 8 --models io subpixel \
  --preset superfast "${sp[@]}" --json "$OUT/upscale_superfast.json"
echo "upscale superfast rc=$?; total $(( $(date +%s) - t0 )) s"
