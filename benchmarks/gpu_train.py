"""The GPU run of the training issue, in one command: patches -> train -> evaluate -> time.

1. Patch pairs from the training images (T91 + BSD200) with the project's own code
   (imagesr.sources.process_source: MATLAB bicubic at x2/x3/x4/x1.5, 48 px HR patches,
   residuals), written as TFRecords and read back through the TF-free reader (no TensorFlow
   and no Beam on the GPU machine; worker processes instead of Beam).
2. Training with the backend Keras is set to (JAX on the H100): VDSR on x2+x3+x4, SubPixel-SR
   at x2 and at x1.5, each within a time budget.
3. Y-PSNR/SSIM on Set5 and Set14 with imagesr.evaluation (the same protocol as
   `imagesr evaluate`), parameter counts.
4. Time for 30 frames 1280x720 -> 1920x1080 on the device (bicubic, VDSR with its bicubic
   input on the device, SubPixel-SR x1.5), after warm-up, median of repeats.

Results go to OUT/results.json and a printed table; models to OUT/<run>/model.keras.

On the GPU machine, from the checkout root (see ../shared/tools/gpu-kit):
    ../shared/tools/gpu-kit --data train,bench             # here, before the call (36 MB; davis would pass 64 MiB); carry .gpu
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl
    PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax python3 benchmarks/gpu_train.py --data .gpu/data --out $OUT --mixed-precision
A CPU dry run of the same code path: KERAS_BACKEND=jax python benchmarks/gpu_train.py --data ../shared/data --out /tmp/g --quick
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from imagesr.patches import PatchOptions  # noqa: E402
from imagesr.records import write_tfrecord  # noqa: E402
from imagesr.sources import assign_splits, discover, process_source  # noqa: E402

RUNS = [("vdsr", (2, 3, 4)), ("subpixel", (2,)), ("subpixel", (1.5,))]
_OPTS = None


def _work(args):
    idx, sources, out = args
    paths = {}
    files = {}
    n = 0
    try:
        for src in sources:
            o = process_source(src, _OPTS)
            if o.split not in files:
                d = os.path.join(out, f"Split-{o.split}")
                os.makedirs(d, exist_ok=True)
                paths[o.split] = os.path.join(d, f"part-{idx:04d}.tfrecord")
                files[o.split] = open(paths[o.split], "wb")
            for r in o.records:
                write_tfrecord(files[o.split], r)
            n += len(o.records)
    finally:
        for f in files.values():
            f.close()
    return n


def make_patches(train_dir: str, out: str, workers: int, limit_sources=None) -> int:
    global _OPTS
    _OPTS = PatchOptions(scales=(2, 3, 4, 1.5), patch_size=48, stride=24, residual=True)
    sources = assign_splits(discover([train_dir]), 0.02)
    if limit_sources:  # a few of each split
        sources = ([s for s in sources if s.split == "train"][:limit_sources]
                   + [s for s in sources if s.split == "eval"][:1])
    chunks = [(i, sources[i::workers], out) for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return sum(pool.map(_work, chunks))


def timing(model_kind, model, frames: np.ndarray, out_size, batch: int, repeats: int):
    """Device seconds for all frames (uint8 in, uint8 out, host transfers included)."""
    import keras

    from training.layers import bicubic_resize

    def fn(x):
        x = keras.ops.cast(x, "float32")
        if model_kind == "bicubic":
            y = bicubic_resize(x, size=out_size)
        elif model_kind == "vdsr":
            y = model(bicubic_resize(x, size=out_size), training=False)
        else:
            y = model(x, training=False)
        return keras.ops.cast(keras.ops.clip(keras.ops.floor(y + 0.5), 0, 255), "uint8")

    if keras.backend.backend() == "jax":
        import jax

        fn = jax.jit(fn)

    def once():
        for i in range(0, len(frames), batch):
            keras.ops.convert_to_numpy(fn(frames[i : i + batch]))

    once()  # warm-up: compilation
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train/ and bench/ (../shared/data or .gpu/data)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/imagesr-gpu")
    ap.add_argument("--budget-s", type=float, default=540, help="training time per run (default 9 min)")
    ap.add_argument("--steps", type=int, default=200000, help="schedule length (the budget usually stops first)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--mixed-precision", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--quick", action="store_true", help="CPU dry run: few sources, few steps, few frames")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    patches = os.path.join(args.work, "patches")
    # Patches first, in forked workers, before Keras/JAX start their threads and the device.
    n = make_patches(os.path.join(args.data, "train"), patches, args.workers, limit_sources=6 if args.quick else None)
    import keras

    from imagesr.evaluation import evaluate_folder
    from imagesr.resize import imresize
    from training.data import find_record_files
    from training.serving import load_upscaler
    from training.trainer import TrainConfig, train

    results = {"machine": platform.node(), "backend": keras.backend.backend(), "keras": keras.__version__, "runs": {}}
    results["patches"] = {"pairs": n, "seconds": round(time.perf_counter() - t0, 1)}
    print(f"patches: {n:,} pairs in {results['patches']['seconds']} s", flush=True)
    tr, ev = find_record_files(patches, "train"), find_record_files(patches, "eval")
    benches = [os.path.join(args.data, "bench", s, "HR") for s in ("Set5", "Set14")]
    for model, scales in RUNS:
        name = f"{model}_x{'-'.join(f'{s:g}' for s in scales)}"
        cfg = TrainConfig(model=model, scales=scales, batch_size=8 if args.quick else args.batch,
                          steps=30 if args.quick else args.steps, learning_rate=5e-4 if model == "vdsr" else 1e-3,
                          mixed_precision=args.mixed_precision, in_memory=True, time_budget_s=args.budget_s,
                          log_every=10 if args.quick else 2000, eval_batches=4)
        s = train(cfg, tr, ev, os.path.join(args.out, name))
        up = load_upscaler(os.path.join(args.out, name))
        table = {}
        for b in benches:
            for r in evaluate_folder(b, scales, up.evaluation_upscaler):
                table[f"{os.path.basename(os.path.dirname(b))} x{r.scale:g}"] = round(r.psnr_y, 3)
        results["runs"][name] = {"parameters": s["parameters"], "steps": s["steps"], "train_seconds": s["train_seconds"],
                                 "steps_per_second": s["steps_per_second"], "psnr_y": table}
        print(name, json.dumps(results["runs"][name]), flush=True)
    # 30 frames 720p -> 1080p on the device
    import glob

    from imagesr.media import decode_image

    jpgs = sorted(glob.glob(os.path.join(args.data, "davis", "**", "*.jpg"), recursive=True))
    src = [decode_image(p) for p in jpgs[:30]] or [decode_image(p) for p in sorted(glob.glob(os.path.join(benches[1], "*.png")))]
    nframes = 2 if args.quick else 30
    frames = np.stack([imresize(src[i % len(src)], size=(720, 1280)) for i in range(nframes)])
    timings = {"bicubic": timing("bicubic", None, frames, (1080, 1920), 10, 5 if not args.quick else 1)}
    vdsr = keras.saving.load_model(os.path.join(args.out, "vdsr_x2-3-4", "model.keras"), compile=False)
    sp15 = keras.saving.load_model(os.path.join(args.out, "subpixel_x1.5", "model.keras"), compile=False)
    for label, kind, m in (("vdsr", "vdsr", vdsr), ("subpixel_x1.5", "subpixel", sp15)):
        timings[label] = timing(kind, m, frames, (1080, 1920), 5 if kind == "vdsr" else 10, 5 if not args.quick else 1)
    results["timing_30_frames_720p_to_1080p"] = {k: {"seconds": round(v, 4), "fps": round(nframes / v, 1), "frames": nframes}
                                                 for k, v in timings.items()}
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
