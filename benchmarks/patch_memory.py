"""Peak memory and throughput of the patch job, one worker, under ``/usr/bin/time -v``.

Runs ``imagesr patches --workers 1`` on

* a 10-second and a 60-second 1280x720 clip (made here with ffmpeg by looping a real clip), so
  the peak resident memory of a long video can be compared with a short one's;
* the training images (T91 + BSD200), with and without ``--residual``;
* one large photograph (``frame4k``: 3840x2160, ``frame8k``: 7680x4320, a real photograph resized
  with the MATLAB bicubic), for the memory one frame takes against the pixel budget
  (``--max-megapixels``, default 40);
* optionally the same jobs with the code of an earlier commit (``--baseline REV``: a git
  worktree run with the same interpreter and packages), for ratios measured in one run.

and prints wall and CPU seconds (user + system, the steadier figure on a loaded machine), peak RSS (the largest process: the worker) and pairs/s per job.

usage: python benchmarks/patch_memory.py [--clip ../shared/data/video/cockatoo.mp4]
           [--train ../shared/data/train] [--baseline REV]
           [--jobs clip10 clip60 train train_residual frame4k frame8k]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from imagesr.core.dataset import read_manifest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")


def _make_clip(src: str, seconds: int, out: str) -> str:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", src, "-t", str(seconds),
                    "-an", "-vf", "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                    "-pix_fmt", "yuv420p", out], check=True)
    return out


def _make_frame(size, out: str) -> str:
    from imagesr.core.media import write_image
    from imagesr.core.resize import imresize
    from imagesr.core.samples import photo

    write_image(out, imresize(photo("astronaut"), size=size))
    return out


def _run(code_root: str, args, work: str):
    out = tempfile.mkdtemp(prefix="out-", dir=work)
    shutil.rmtree(out)
    env = dict(os.environ, PYTHONPATH=code_root)
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "imagesr.cli", "patches", *args, "--output", out,
           "--workers", "1", "--no-progress", "--eval-fraction", "0"]
    proc = subprocess.run(cmd, cwd=code_root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"job failed ({code_root}): {proc.stderr[-2000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", proc.stderr).group(1)) for k in ("User", "System"))
    pairs = read_manifest(out)["counts"]["pairs"]
    shutil.rmtree(out, ignore_errors=True)
    return seconds, cpu, rss_kb / 1024, pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=os.path.join(SHARED, "video", "cockatoo.mp4"))
    ap.add_argument("--train", default=os.path.join(SHARED, "train"))
    ap.add_argument("--baseline", help="also run the jobs with this commit's code (a git worktree)")
    ap.add_argument("--jobs", nargs="+", default=["clip10", "clip60", "train", "train_residual"])
    ap.add_argument("--scales", nargs="+", default=["2", "3", "4"])
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="imagesr-patchmem-")
    codes = [("current", ROOT)]
    try:
        if args.baseline:
            base = os.path.join(work, "baseline")
            subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", base, args.baseline], check=True)
            codes.append((f"baseline {args.baseline}", base))
        inputs = {}
        if {"clip10", "clip60"} & set(args.jobs):
            inputs["clip10"] = [_make_clip(args.clip, 10, os.path.join(work, "clip10.mp4"))]
            inputs["clip60"] = [_make_clip(args.clip, 60, os.path.join(work, "clip60.mp4"))]
        for job, size in (("frame4k", (2160, 3840)), ("frame8k", (4320, 7680))):
            if job in args.jobs:
                inputs[job] = [_make_frame(size, os.path.join(work, f"{job}.png")), "--residual"]
        inputs["train"] = [args.train]
        inputs["train_residual"] = [args.train, "--residual"]
        rows = []
        for job in args.jobs:  # interleaved: each job with every code version before the next job
            for label, code in codes:
                src, *extra = inputs[job]
                seconds, cpu, rss_mb, pairs = _run(code, ["--input", src, "--scales", *args.scales, *extra], work)
                rows.append((job, label, seconds, cpu, rss_mb, pairs))
                print(f"{job:15s} {label:22s} {seconds:7.1f} s  cpu {cpu:7.1f} s  peak RSS {rss_mb:7.0f} MB  {pairs:9,} pairs  "
                      f"{pairs / seconds:8,.0f} pairs/s", flush=True)
        print()
        print("| job | code | wall s | cpu s | peak RSS MB | pairs | pairs/s |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for job, label, seconds, cpu, rss_mb, pairs in rows:
            print(f"| {job} | {label} | {seconds:.1f} | {cpu:.1f} | {rss_mb:.0f} | {pairs:,} | {pairs / seconds:,.0f} |")
    finally:
        if args.baseline:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", os.path.join(work, "baseline")])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
