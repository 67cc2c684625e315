"""Live upscaling speed, 1280x720 -> 1920x1080: compute only and end to end, per model, in one run.

For each model (MATLAB bicubic, VDSR 20x64, the efficient SubPixel-SR x1.5; untrained
weights unless ``--model NAME=PATH`` gives a trained one: the speed is the same, but a model
trained with mixed precision also runs in bfloat16) it prints

* compute: the frames already in memory as uint8, through the same batching/padding code
  the command uses (imagesr.upscale.FrameProcessor), after a warm-up, median of --repeats;
* end to end: decode (ffmpeg pipe) + inference + encode (ffmpeg, H.264) through
  imagesr.upscale.upscale, the function behind `imagesr upscale`, into a temporary file.

plus an ``io`` row: the same end-to-end path with an upscaler that hands back precomputed
output frames, i.e. what decoding, encoding and the pipeline cost without any model (the
floor under every end-to-end figure on this machine).

The input is the first --frames frames of --clip (default ../shared/data/video/cockatoo.mp4,
real footage, 1280x720) when present, else the built-in sample clip (imagesr.samples). VDSR
runs at 1080p resolution: on a CPU expect tens of seconds per frame.

usage: python benchmarks/upscale.py [--frames 30] [--models io bicubic vdsr subpixel] [--batch 4]
                                    [--repeats 3] [--model vdsr=DIR_OR_KERAS ...] [--json OUT.json]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from imagesr.media import ffmpeg_binary, iter_video_frames, probe_video  # noqa: E402
from imagesr.upscale import FrameProcessor, upscale  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_CLIP = os.path.join(ROOT, "..", "shared", "data", "video", "cockatoo.mp4")
OUT_SIZE = (1080, 1920)


def _clip(src: str, frames: int, workdir: str) -> str:
    """The first ``frames`` frames of ``src`` (stream copy, video only) as a file."""
    if not os.path.isfile(src):
        from imagesr import samples

        src = samples.materialize()["video"]
    out = os.path.join(workdir, "input" + os.path.splitext(src)[1])
    subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", "-i", src, "-map", "0:v:0", "-c:v", "copy",
                    "-frames:v", str(frames), out], check=True)
    return out


class _Replay:
    """The ``io`` row's upscaler: returns the frames given, in order (no per-frame compute)."""

    kind, scale, parameters, model, name = "bicubic", None, 0, None, "io"

    def __init__(self, outputs: np.ndarray):
        self.outputs, self.i = outputs, 0

    def __call__(self, frames, size):
        out = self.outputs[(self.i + np.arange(len(frames))) % len(self.outputs)]
        self.i += len(frames)
        return out


def _upscaler(name: str, trained: dict):
    from training.serving import FrameUpscaler, load_upscaler

    if name in trained:
        return load_upscaler(trained[name])
    if name == "bicubic":
        return FrameUpscaler(None)
    from training.models import build_model

    model = build_model("vdsr") if name == "vdsr" else build_model("subpixel", scale=1.5)
    return FrameUpscaler(model, name=name)


def _compute_time(processor, frames: np.ndarray, batch: int) -> float:
    t = time.perf_counter()
    for i in range(0, len(frames), batch):
        processor(frames[i:i + batch])
    return time.perf_counter() - t


def _write_json(path, rows, n, in_size, args, keras):
    with open(path, "w") as f:
        json.dump({"frames": n, "in": list(in_size), "out": list(OUT_SIZE), "batch": args.batch, "preset": args.preset,
                   "machine": platform.node(), "cores": os.cpu_count(), "backend": keras.backend.backend(),
                   "keras": keras.__version__,
                   "rows": [{"model": r[0], "parameters": r[1], "compute_s": r[2], "end_to_end_s": r[3]} for r in rows]},
                  f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--clip", default=REAL_CLIP, help="a 1280x720 video (default: the real cockatoo clip)")
    ap.add_argument("--models", nargs="+", choices=["io", "bicubic", "vdsr", "subpixel"],
                    default=["io", "bicubic", "vdsr", "subpixel"])
    ap.add_argument("--model", nargs="+", default=[], metavar="NAME=PATH",
                    help="a trained model for vdsr / subpixel (a model dir or .keras file)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--batch", type=int, default=4, help="frames per model call (the command's default)")
    ap.add_argument("--repeats", type=int, default=3, help="compute-only repeats (median)")
    ap.add_argument("--preset", default="veryfast", help="H.264 preset of the end-to-end runs (the command's default)")
    args = ap.parse_args()
    trained = dict(m.split("=", 1) for m in args.model)
    bad = set(trained) - {"vdsr", "subpixel"}
    if bad:
        ap.error(f"--model takes vdsr=PATH or subpixel=PATH, not {sorted(bad)}")

    import keras

    with tempfile.TemporaryDirectory(prefix="imagesr-bench-") as work:
        clip = _clip(args.clip, args.frames, work)
        info = probe_video(clip)
        frames = np.stack(list(iter_video_frames(clip)))
        n, h, w = frames.shape[:3]
        print(f"{n} frames {w}x{h} -> {OUT_SIZE[1]}x{OUT_SIZE[0]} from {os.path.relpath(args.clip if os.path.isfile(args.clip) else clip)}"
              f" ({info.codec} {info.pix_fmt}); batch {args.batch}; {platform.machine()}, {os.cpu_count()} cores; "
              f"Keras {keras.__version__} ({keras.backend.backend()}); compute = median of {args.repeats}; "
              f"H.264 preset {args.preset}")
        rows = []
        for name in args.models:
            if name == "io":
                from imagesr.resize import imresize

                up = _Replay(np.stack([imresize(f, size=OUT_SIZE) for f in frames]))
            else:
                up = _upscaler(name, trained)
            processor = FrameProcessor(up, (h, w), OUT_SIZE, batch=args.batch)
            processor(frames[: args.batch])  # warm-up: trace / compile the batch shape
            compute = statistics.median(_compute_time(processor, frames, args.batch) for _ in range(args.repeats))
            t = time.perf_counter()  # the whole call: probe, decoder and encoder start-up included
            result = upscale(clip, os.path.join(work, f"{name}.mp4"), model=up, size=OUT_SIZE, batch=args.batch,
                             progress=None, preset=args.preset)
            e2e = time.perf_counter() - t
            written = sum(1 for _ in iter_video_frames(os.path.join(work, f"{name}.mp4")))  # no ffprobe on every machine
            assert result.frames == n == written, (result.frames, n, written)
            rows.append((name if name not in trained else f"{name} (trained)", up.parameters, compute, e2e))
            print(f"  {name}: compute {compute:.3f} s, end to end {e2e:.3f} s", file=sys.stderr, flush=True)
            if args.json:  # after every row: a run cut short still reports what it measured
                _write_json(args.json, rows, n, (h, w), args, keras)

    print()
    print("| model | parameters | compute s | compute fps | end-to-end s | end-to-end fps | end-to-end / compute |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, params, compute, e2e in rows:
        print(f"| {name} | {params:,} | {compute:.3f} | {n / compute:.1f} | {e2e:.3f} | {n / e2e:.1f} | {e2e / compute:.2f} |")


if __name__ == "__main__":
    main()
