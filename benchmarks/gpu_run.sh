#!/usr/bin/env bash
# The GPU checks of the training, live-tool and install issues in ONE device call, ending by
# DEADLINE_S (default 540 s) whatever happens, so that a rerun fits in what is left:
#   0. imagesr installed from its wheel (benchmarks/gpu_env.sh), `imagesr --version`
#   1. benchmarks/gpu_train.py: clean x2/x3/x4 pairs of the photographs and realistic x1.5 pairs of
#      the real-video sequences -> subpixel x2, x3 (side by side), then x4 beside the real-video
#      x1.5 model, each within its time budget, bf16 -> `imagesr evaluate` on Set5/Set14 (CPU)
#   2. the real-video x1.5 model on Set14 with H.264 CRF 23 LR (`imagesr evaluate --degradation`)
#   3. the live route: benchmarks/upscale.py, 30 frames of the held-out 720p clip -> 1080p,
#      compute and end to end (io / bicubic / the trained real-video model), both routes
#   4. `imagesr upscale` of the whole clip, the command as users run it (frames/s in its summary)
# Everything lands in $OUT: log.txt, results.json, upscale.json, eval_real.json, *.keras.
# Here, first: bash benchmarks/gpu_pack.sh TRAIN_DIR BENCH_DIR CLIP, and rehearse with
# bash benchmarks/gpu_dryrun.sh. On the GPU machine (64 MiB per transfer, files kept while it is
# warm): a first call carries part 1 ([".gpu/whl", ".gpu/video"], command "ls .gpu"), the next,
# back to back, part 2 ([".gpu/photos", ".gpu/bench"]) with command "bash benchmarks/gpu_run.sh",
# timeout_s 600 (the deadline inside ends it earlier).
source benchmarks/gpu_env.sh
deadline=$(( t0 + ${DEADLINE_S:-540} ))
left() { echo $(( deadline - $(date +%s) )); }
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_mode --format=csv,noheader || true
python3 -c "import jax, keras, numpy; print('jax', jax.__version__, jax.devices(), '| keras', keras.__version__, '| numpy', numpy.__version__)" || exit 1
groups=()
if nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2>/dev/null | grep -qi exclusive; then
  groups=(--groups subpixel_x2 subpixel_x3 subpixel_x4 subpixel_x1.5_real
          --budget subpixel_x2=75 subpixel_x3=75 subpixel_x4=75 subpixel_x1.5_real=75)
  echo "compute mode exclusive: training runs one at a time"
fi
echo "== gpu_train ($(( $(date +%s) - t0 )) s, $(left) s left)"
timeout $(( $(left) - 110 )) python3 benchmarks/gpu_train.py --data .gpu --out "$OUT" --mixed-precision \
  --eval-timeout 45 --deadline-s $(( $(left) - 150 )) "${groups[@]}" ${TRAIN_ARGS:-}
echo "gpu_train rc=$?"
real=$OUT/subpixel_x1.5_real.keras
if [ -f "$real" ]; then
  echo "== real-video model on Set14, H.264 CRF 23 LR ($(left) s left)"
  JAX_PLATFORMS=cpu timeout 40 imagesr evaluate --model "$real" --dataset .gpu/bench/Set14/HR --scales 1.5 \
    --degradation h264-crf23+bicubic --json > "$OUT/eval_real.json"
  echo "evaluate rc=$?"
fi
trained=(); [ -f "$real" ] && trained=(--model "subpixel=$real")
echo "== live route, 30 frames 720p -> 1080p ($(left) s left)"
timeout $(( $(left) > 70 ? 60 : $(left) - 10 )) python3 benchmarks/upscale.py --clip .gpu/bench/clip_720p.mp4 \
  --batch 8 --models io bicubic subpixel "${trained[@]}" --json "$OUT/upscale.json"
echo "upscale.py rc=$?"
echo "== imagesr upscale, the whole clip ($(left) s left)"
model=(); [ -f "$real" ] && model=(--model "$real")
timeout $(( $(left) > 40 ? 30 : $(left) - 5 )) imagesr upscale .gpu/bench/clip_720p.mp4 -o /tmp/imagesr-up.mp4 \
  --size 1920x1080 "${model[@]}" ${UPSCALE_ARGS:-}
echo "imagesr upscale rc=$?; total $(( $(date +%s) - t0 )) s"
