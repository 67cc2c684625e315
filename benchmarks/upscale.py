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

On the JAX backend each model is measured on both routes of ``imagesr upscale``: ``rgb``
(RGB frames through the pipes and the host link, one synchronous call per batch) and
``planar`` (the decoder's Y'CbCr in, 4:2:0 out, colour conversions on the device, the next
batch sent while the last one computes; compute = all batches sent, then all fetched).
``--stages`` adds, per model and route, the three parts of one batch's call measured apart:
host -> device copy, the jitted call on device-resident input, device -> host copy.

The input is the first --frames frames of --clip (default ../shared/data/video/cockatoo.mp4,
real footage, 1280x720) when present, else the built-in sample clip (imagesr.core.samples). VDSR
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

import numpy as np

from imagesr.core.media import ffmpeg_binary, iter_video_frames, probe_video
from imagesr.upscale import FrameProcessor, parse_size, upscale

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_CLIP = os.path.join(ROOT, "..", "shared", "data", "video", "cockatoo.mp4")
OUT_SIZE = (1080, 1920)


def _clip(src: str, frames: int, workdir: str, pix_fmt=None, size=None) -> str:
    """The first ``frames`` frames of ``src`` (video only) as a file: the stream copied, or
    re-encoded nearly losslessly (H.264, CRF 10) to ``pix_fmt`` and/or ``size`` (h, w)."""
    if not os.path.isfile(src):
        from imagesr.core import samples

        src = samples.materialize()["video"]
    out = os.path.join(workdir, "input" + os.path.splitext(src)[1])
    codec = ["-c:v", "copy"]
    if pix_fmt or size:
        codec = ["-c:v", "libx264", "-crf", "10", "-preset", "veryfast", "-pix_fmt", pix_fmt or "yuv420p"]
        if size:
            codec += ["-vf", f"scale={size[1]}:{size[0]}:flags=bicubic"]
    subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", "-i", src, "-map", "0:v:0", *codec,
                    "-frames:v", str(frames), out], check=True)
    return out


class _Replay:
    """The ``io`` row's upscaler: returns the frames given, in order (no per-frame compute);
    the planar route's output frames too, when given."""

    kind, scale, parameters, model, name = "bicubic", None, 0, None, "io"

    def __init__(self, outputs: np.ndarray, planar_outputs=None):
        self.outputs, self.planar_outputs, self.i = outputs, planar_outputs, 0
        from imagesr.training.serving import ServingBackend

        # the planar route's floor is measured as JAX would run it (frames in the decoder's Y'CbCr)
        self.backend = ServingBackend("jax" if planar_outputs is not None else "io", jit=planar_outputs is not None,
                                      accelerator=False)

    def _next(self, outputs, n):
        i = self.i % len(outputs)
        self.i += n
        if i + n <= len(outputs):
            return outputs[i:i + n]  # a view: the floor should not pay for a copy no model needs
        return outputs[(i + np.arange(n)) % len(outputs)]

    def __call__(self, frames, size):
        return self._next(self.outputs, len(frames))

    def planar(self, frames, planar):
        return self._next(self.planar_outputs, len(frames))


def _upscaler(name: str, trained: dict):
    from imagesr.training.serving import FrameUpscaler, load_upscaler

    if name in trained:
        return load_upscaler(trained[name])
    if name == "bicubic":
        return FrameUpscaler(None)
    from imagesr.training.models import build_model

    model = build_model("vdsr") if name == "vdsr" else build_model("subpixel", scale=1.5)
    return FrameUpscaler(model, name=name)


def _compute_time(processor, frames: np.ndarray, batch: int) -> float:
    """Host frames -> host frames: every batch sent, then every result fetched (the planar
    route's calls return without waiting; the rgb route's wait inside each call)."""
    t = time.perf_counter()
    pending = [processor(frames[i:i + batch]) for i in range(0, len(frames), batch)]
    for out in pending:
        np.asarray(out)
    return time.perf_counter() - t


def _stages(up, batch: np.ndarray, size, planar, repeats: int = 5) -> dict:
    """One batch's call in three parts, each waited for: host -> device, the jitted call on
    device-resident input, device -> host (medians, seconds)."""
    import jax

    fn = up.jax_function(batch.shape, size, planar)
    x = jax.device_put(batch).block_until_ready()
    y = fn(x).block_until_ready()
    np.asarray(y)
    times = {"h2d": [], "device": [], "d2h": []}
    for _ in range(repeats):
        t = time.perf_counter()
        x = jax.device_put(batch).block_until_ready()
        times["h2d"].append(time.perf_counter() - t)
        t = time.perf_counter()
        y = fn(x).block_until_ready()
        times["device"].append(time.perf_counter() - t)
        t = time.perf_counter()
        np.asarray(y)
        times["d2h"].append(time.perf_counter() - t)
    out = {k: statistics.median(v) for k, v in times.items()}
    out.update(in_mb=batch.nbytes / 1e6, out_mb=int(np.prod(y.shape)) / 1e6)
    return out


def _write_json(path, rows, n, in_size, args, keras):
    with open(path, "w") as f:
        json.dump({"frames": n, "in": list(in_size), "out": list(OUT_SIZE), "batch": args.batch, "preset": args.preset,
                   "machine": platform.node(), "cores": os.cpu_count(), "backend": keras.backend.backend(),
                   "keras": keras.__version__,
                   "rows": [{"model": r[0], "route": r[1], "parameters": r[2], "compute_s": r[3], "end_to_end_s": r[4],
                             **({"stages": r[5]} if r[5] else {})} for r in rows]},
                  f, indent=1)


def _cpu() -> tuple:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _timed(fn) -> tuple:
    """(wall, this process's CPU, its children's CPU) seconds of ``fn()``."""
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    wall, c1 = time.perf_counter() - t0, _cpu()
    return wall, c1[0] - c0[0], c1[1] - c0[1]


def _vs_ffmpeg(clip: str, work: str, args) -> None:
    """The io route (decode -> RGB -> the pipeline -> encode, no model) against ``ffmpeg -i clip
    -vf scale=W:H -c:v libx264 -preset P -crf 18`` (decode, scale and encode in one process),
    alternated so both see the same machine."""
    from imagesr.core.resize import imresize

    frames = np.stack(list(iter_video_frames(clip)))
    n = len(frames)
    up = _Replay(np.stack([imresize(f, size=OUT_SIZE) for f in frames]))
    h, w = OUT_SIZE
    plain = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y", "-i", clip, "-map", "0:v:0", "-vf",
             f"scale={w}:{h}:flags=bicubic", "-c:v", "libx264", "-preset", args.preset, "-crf", "18",
             "-pix_fmt", "yuv420p", os.path.join(work, "plain.mp4")]
    runs = {"ffmpeg": [], "io": []}
    for _ in range(args.vs_ffmpeg):
        runs["ffmpeg"].append(_timed(lambda: subprocess.run(plain, check=True)))
        runs["io"].append(_timed(lambda: upscale(clip, os.path.join(work, "io.mp4"), model=up, size=OUT_SIZE,
                                                 batch=args.batch, progress=None, preset=args.preset, planar=False)))
    med = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in runs.items()}
    print(f"{n} frames {frames.shape[2]}x{frames.shape[1]} -> {w}x{h}, libx264 preset {args.preset} CRF 18, "
          f"{args.vs_ffmpeg} alternated runs each, medians; {platform.machine()}, {os.cpu_count()} cores")
    print("| route | wall s | fps | CPU s, Python | CPU s, ffmpeg processes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for k, (wall, mine, kids) in med.items():
        print(f"| {k} | {wall:.3f} | {n / wall:.1f} | {mine:.2f} | {kids:.2f} |")
    print(f"io / ffmpeg wall: {med['io'][0] / med['ffmpeg'][0]:.3f} "
          f"(each run: {', '.join(f'{a[0] / b[0]:.3f}' for a, b in zip(runs['io'], runs['ffmpeg']))})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--clip", default=REAL_CLIP, help="a 1280x720 video (default: the real cockatoo clip)")
    ap.add_argument("--in-size", default=None, help="WxH: rescale the clip to this input size first (e.g. 640x360)")
    ap.add_argument("--out-size", default="1920x1080", help="WxH of the upscaled frames (default 1920x1080)")
    ap.add_argument("--pix-fmt", help="re-encode the clip to this pixel format first (e.g. yuv420p, what most "
                                      "video is; the cockatoo clip is 4:4:4)")
    ap.add_argument("--models", nargs="+", choices=["io", "bicubic", "vdsr", "subpixel"],
                    default=["io", "bicubic", "vdsr", "subpixel"])
    ap.add_argument("--model", nargs="+", default=[], metavar="NAME=PATH",
                    help="a trained model for vdsr / subpixel (a model dir or .keras file); another NAME adds "
                         "a row of its own")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--batch", type=int, default=4, help="frames per model call (the command's default)")
    ap.add_argument("--repeats", type=int, default=3, help="compute-only repeats (median)")
    ap.add_argument("--preset", default="veryfast", help="H.264 preset of the end-to-end runs (the command's default)")
    ap.add_argument("--routes", nargs="+", choices=["rgb", "planar"], default=["rgb", "planar"],
                    help="routes to measure (planar: JAX backend and a 4:2:0 or 4:4:4 clip only)")
    ap.add_argument("--stages", action="store_true", help="also time one batch's copies and device call apart (JAX)")
    ap.add_argument("--vs-ffmpeg", type=int, default=0, metavar="N",
                    help="only compare the io route with a plain ffmpeg transcode to the same size, codec and "
                         "preset, N runs of each alternated (wall and CPU seconds, medians)")
    args = ap.parse_args()
    trained = dict(m.split("=", 1) for m in args.model)
    global OUT_SIZE
    OUT_SIZE = parse_size(args.out_size)
    in_size = parse_size(args.in_size) if args.in_size else None
    # NAME=PATH for another name adds a row of its own (two models of one kind in one run)
    extra = [n for n in trained if n not in ("vdsr", "subpixel")]
    import keras

    with tempfile.TemporaryDirectory(prefix="imagesr-bench-") as work:
        clip = _clip(args.clip, args.frames, work, args.pix_fmt, in_size)
        if args.vs_ffmpeg:
            return _vs_ffmpeg(clip, work, args)
        info = probe_video(clip)
        frames = np.stack(list(iter_video_frames(clip)))
        n, h, w = frames.shape[:3]
        print(f"{n} frames {w}x{h} -> {OUT_SIZE[1]}x{OUT_SIZE[0]} from {os.path.relpath(args.clip if os.path.isfile(args.clip) else clip)}"
              f" ({info.codec} {info.pix_fmt}); batch {args.batch}; {platform.machine()}, {os.cpu_count()} cores; "
              f"Keras {keras.__version__} ({keras.backend.backend()}); compute = median of {args.repeats}; "
              f"H.264 preset {args.preset}")
        rows = []
        planar_in = info.planar_format()
        frames_p = np.stack(list(iter_video_frames(clip, planar=planar_in))) if planar_in else None
        for name in list(args.models) + extra:
            if name == "io":
                from imagesr.core.colour import PlanarFormat, output_matrix
                from imagesr.core.resize import imresize

                outs = np.stack([imresize(f, size=OUT_SIZE) for f in frames])
                out_fmt = PlanarFormat("yuv420p", *OUT_SIZE, output_matrix(OUT_SIZE[1], OUT_SIZE[0]))
                up = _Replay(outs, out_fmt.from_rgb(outs) if keras.backend.backend() == "jax" else None)
            else:
                up = _upscaler(name, trained)
            for route in args.routes:
                processor = FrameProcessor(up, (h, w), OUT_SIZE, batch=args.batch)
                if route == "planar" and not processor.use_planar(planar_in):
                    print(f"  {name}: no planar route here (needs JAX and a 4:2:0 or 4:4:4 clip)", file=sys.stderr)
                    continue
                src = frames_p if route == "planar" else frames
                np.asarray(processor(src[: args.batch]))  # warm-up: trace / compile the batch shape
                compute = statistics.median(_compute_time(processor, src, args.batch) for _ in range(args.repeats))
                stages = None
                if args.stages and name != "io" and up.backend.jit:
                    size = processor.planar[1].size if processor.planar else processor.natural
                    stages = _stages(up, src[: args.batch], size, processor.planar)
                t = time.perf_counter()  # the whole call: probe, decoder and encoder start-up included
                result = upscale(clip, os.path.join(work, f"{name}.mp4"), model=up, size=OUT_SIZE, batch=args.batch,
                                 progress=None, preset=args.preset, planar=route == "planar")
                e2e = time.perf_counter() - t
                written = sum(1 for _ in iter_video_frames(os.path.join(work, f"{name}.mp4")))  # no ffprobe on every machine
                assert result.frames == n == written, (result.frames, n, written)
                rows.append((name if name not in trained else f"{name} (trained)", route, up.parameters, compute, e2e,
                             stages))
                print(f"  {name} [{route}]: compute {compute:.3f} s, end to end {e2e:.3f} s"
                      + (" | one batch: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in stages.items()
                                                      if k in ("h2d", "device", "d2h"))
                         + f" ({stages['in_mb']:.0f} MB in, {stages['out_mb']:.0f} MB out)" if stages else ""),
                      file=sys.stderr, flush=True)
                if args.json:  # after every row: a run cut short still reports what it measured
                    _write_json(args.json, rows, n, (h, w), args, keras)

    print()
    print("| model | route | parameters | compute s | compute fps | end-to-end s | end-to-end fps | end-to-end / compute |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, route, params, compute, e2e, _ in rows:
        print(f"| {name} | {route} | {params:,} | {compute:.3f} | {n / compute:.1f} | {e2e:.3f} | {n / e2e:.1f} | "
              f"{e2e / compute:.2f} |")


if __name__ == "__main__":
    main()
