"""Real-video quality through the real command path: ground-truth frames -> ffmpeg's bicubic
downscale by 1.5 -> H.264 (CRF 23, 4:2:0) -> ``imagesr upscale`` back to the ground truth's
size -> mean Y-PSNR / SSIM against the ground truth, per source and per model.

The default sources are held out of the training of the real-video model (its model card says
so): the DAVIS sequences ``dog`` and ``parkour`` (854x480, cropped to 852x480 so that x1.5 is
whole: 568x320 LR) and ``cockatoo.mp4`` (1280x720 -> 853x480... cropped to 1278x720: 852x480).

usage: python benchmarks/real_video.py [--frames 24] [--models bicubic subpixel_x1.5 PATH ...]
           [--crf 23] [--json OUT.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from imagesr.core.media import decode_image, iter_frames, list_frames
from imagesr.core.metrics import psnr, ssim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")

HELD_OUT = [os.path.join(SHARED, "davis", "DAVIS", "JPEGImages", "480p", "dog"),
            os.path.join(SHARED, "davis", "DAVIS", "JPEGImages", "480p", "parkour"),
            os.path.join(SHARED, "video", "cockatoo.mp4")]  # not in the real-video model's training


def _ground_truth(source: str, frames: int) -> np.ndarray:
    got = np.stack(list(iter_frames(source, limit=frames)))
    h, w = got.shape[1:3]
    return got[:, : h - h % 3, : w - w % 3]  # x1.5 needs sides that are multiples of 3


def _lr_video(gt: np.ndarray, path: str, crf: int) -> None:
    n, h, w = gt.shape[:3]
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{w}x{h}", "-framerate", "25", "-i", "pipe:",
                    "-vf", f"scale={w * 2 // 3}:{h * 2 // 3}:flags=bicubic", "-c:v", "libx264", "-crf", str(crf),
                    "-preset", "medium", "-pix_fmt", "yuv420p", path], input=gt.tobytes(), check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", nargs="+", default=HELD_OUT)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--models", nargs="+", default=["bicubic", "subpixel_x1.5"],
                    help="shipped model names, model folders or .keras files, or bicubic")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="imagesr-realvideo-") as work:
        for src in args.sources:
            name = os.path.splitext(os.path.basename(src.rstrip("/")))[0]  # "cockatoo.mp4" -> "cockatoo"
            gt = _ground_truth(src, args.frames)
            lr = os.path.join(work, f"{name}_lr.mp4")
            _lr_video(gt, lr, args.crf)
            for model in args.models:
                out = os.path.join(work, f"{name}_{abs(hash(model))}")
                cmd = [sys.executable, "-m", "imagesr.cli", "upscale", lr, "-o", out, "--model", model,
                       "--size", f"{gt.shape[2]}x{gt.shape[1]}"]
                proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
                got = [decode_image(f) for f in list_frames(out)]
                assert len(got) == len(gt), (len(got), len(gt))
                p = float(np.mean([psnr(a, b, crop_border=2) for a, b in zip(got, gt)]))
                q = float(np.mean([ssim(a, b, crop_border=2) for a, b in zip(got, gt)]))
                rows.append({"source": name, "model": model, "psnr_y": p, "ssim_y": q, "frames": len(gt),
                             "size": f"{gt.shape[2]}x{gt.shape[1]}"})
                print(f"{name:12s} {model:40s} {p:6.2f} dB  SSIM {q:.4f}", flush=True)
    print()
    print("| model | " + " | ".join(os.path.basename(s.rstrip('/')) for s in args.sources) + " | mean |")
    print("| --- |" + " ---: |" * (len(args.sources) + 1))
    for model in args.models:
        vals = [r["psnr_y"] for r in rows if r["model"] == model]
        print(f"| {model} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {np.mean(vals):.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"crf": args.crf, "frames": args.frames, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
