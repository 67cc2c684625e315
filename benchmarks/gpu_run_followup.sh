#!/usr/bin/env bash
# The second GPU call, after benchmarks/gpu_run.sh: (1) the live route measured both ways on
# the same clip (RGB pipes vs the planar Y'CbCr route, with each batch's host->device copy,
# device call and device->host copy timed apart) with the models the first call trained;
# (2) VDSR trained on from the first call's model within a further time budget.
# Here: bash benchmarks/gpu_pack.sh, then copy the first call's vdsr_x2-3-4.keras and
# subpixel_x1.5.keras into .gpu/models/ (Set5/Set14 can stay behind: evaluate here).
# Device call: carry [".gpu"], command "bash benchmarks/gpu_run_followup.sh", timeout_s 340.
source benchmarks/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
m=.gpu/models
echo "== upscale, 4:2:0 clip, both routes ($(( $(date +%s) - t0 )) s)"
timeout "${UPSCALE_LIMIT:-100}" python3 benchmarks/upscale.py --frames ${FRAMES:-30} --clip .gpu/data/video/cockatoo.mp4 --pix-fmt yuv420p \
  --batch 8 --stages --models io subpixel bicubic vdsr --model subpixel=$m/subpixel_x1.5.keras vdsr=$m/vdsr_x2-3-4.keras \
  --json "$OUT/upscale420.json"
echo "upscale rc=$?"
echo "== planar route: batch 16, presets superfast and ultrafast ($(( $(date +%s) - t0 )) s)"
timeout 25 python3 benchmarks/upscale.py --frames ${FRAMES:-30} --clip .gpu/data/video/cockatoo.mp4 --pix-fmt yuv420p --batch 16 --stages \
  --routes planar --models subpixel --model subpixel=$m/subpixel_x1.5.keras --json "$OUT/upscale420_b16.json"
for preset in superfast ultrafast; do
  timeout 20 python3 benchmarks/upscale.py --frames ${FRAMES:-30} --clip .gpu/data/video/cockatoo.mp4 --pix-fmt yuv420p --batch 8 --repeats 1 \
    --routes planar --models io subpixel --model subpixel=$m/subpixel_x1.5.keras --preset $preset \
    --json "$OUT/upscale420_$preset.json"
done
echo "== VDSR trained on ($(( $(date +%s) - t0 )) s)"
timeout "${TRAIN_LIMIT:-190}" python3 benchmarks/gpu_train.py --data .gpu/data --out "$OUT" --mixed-precision \
  --groups vdsr_x2-3-4 --patch-scales 2 3 4 --warm-start vdsr_x2-3-4=$m/vdsr_x2-3-4.keras \
  --learning-rate vdsr_x2-3-4=2e-4 --budget vdsr_x2-3-4=${VDSR_BUDGET:-120} ${TRAIN_ARGS:-}
echo "gpu_train rc=$?; total $(( $(date +%s) - t0 )) s"
