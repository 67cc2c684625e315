"""Live upscaling speed, 1280x720 -> 1920x1080: compute only and end to end, per model, in one run.

For each model (MATLAB bicubic, VDSR 20x64, the efficient SubPixel-SR x1.5; untrained
weights: the speed is the same) it prints

* compute: the frames already in memory as uint8, through the same batching/padding code
  the command uses (imagesr.upscale.FrameProcessor), after a warm-up, median of --repeats;
* end to end: decode (ffmpeg pipe) + inference + encode (ffmpeg, H.264) through
  imagesr.upscale.upscale, the function behind `imagesr upscale`, into a temporary file.

The input is the first --frames frames of ../shared/data/video/cockatoo.mp4 (real footage,
1280x720) when present, else the built-in sample clip (imagesr.samples). VDSR runs at
1080p resolution: on a CPU expect tens of seconds per frame, so pass --frames / --models.

usage: python benchmarks/upscale.py [--frames 30] [--models bicubic vdsr subpixel] [--batch 4] [--repeats 3]
"""

import argparse
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


def _clip(frames: int, workdir: str) -> str:
    """The first ``frames`` frames of the real clip (stream copy, video only) as a file."""
    src = REAL_CLIP
    if not os.path.isfile(src):
        from imagesr import samples

        src = samples.materialize()["video"]
    out = os.path.join(workdir, "input" + os.path.splitext(src)[1])
    subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", "-i", src, "-map", "0:v:0", "-c:v", "copy",
                    "-frames:v", str(frames), out], check=True)
    return out


def _upscaler(name: str):
    from training.serving import FrameUpscaler

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--models", nargs="+", choices=["bicubic", "vdsr", "subpixel"], default=["bicubic", "vdsr", "subpixel"])
    ap.add_argument("--batch", type=int, default=4, help="frames per model call (the command's default)")
    ap.add_argument("--repeats", type=int, default=3, help="compute-only repeats (median)")
    args = ap.parse_args()

    import keras

    with tempfile.TemporaryDirectory(prefix="imagesr-bench-") as work:
        clip = _clip(args.frames, work)
        info = probe_video(clip)
        frames = np.stack(list(iter_video_frames(clip)))
        n, h, w = frames.shape[:3]
        print(f"{n} frames {w}x{h} -> {OUT_SIZE[1]}x{OUT_SIZE[0]} from {os.path.relpath(REAL_CLIP if os.path.isfile(REAL_CLIP) else clip)}"
              f" ({info.codec} {info.pix_fmt}); batch {args.batch}; {platform.machine()}, {os.cpu_count()} cores; "
              f"Keras {keras.__version__} ({keras.backend.backend()}); compute = median of {args.repeats}")
        rows = []
        for name in args.models:
            up = _upscaler(name)
            processor = FrameProcessor(up, (h, w), OUT_SIZE, batch=args.batch)
            processor(frames[: args.batch])  # warm-up: trace / compile the batch shape
            compute = statistics.median(_compute_time(processor, frames, args.batch) for _ in range(args.repeats))
            t = time.perf_counter()  # the whole call: probe, decoder and encoder start-up included
            result = upscale(clip, os.path.join(work, f"{name}.mp4"), model=up, size=OUT_SIZE, batch=args.batch,
                             progress=None)
            e2e = time.perf_counter() - t
            assert result.frames == n and probe_video(os.path.join(work, f"{name}.mp4")).frame_count == n
            rows.append((name, up.parameters, compute, e2e))
            print(f"  {name}: compute {compute:.2f} s, end to end {e2e:.2f} s", file=sys.stderr)

    print()
    print("| model | parameters | compute s | compute fps | end-to-end s | end-to-end fps | end-to-end / compute |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, params, compute, e2e in rows:
        print(f"| {name} | {params:,} | {compute:.2f} | {n / compute:.2f} | {e2e:.2f} | {n / e2e:.2f} | {e2e / compute:.2f} |")


if __name__ == "__main__":
    main()
