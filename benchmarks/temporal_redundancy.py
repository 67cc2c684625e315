"""How much the neighbouring frames of compressed low-resolution video know that the frame itself
does not: the question behind a multi-frame x1.5 model, measured without training one.

For each source: ground truth -> ffmpeg bicubic / 1.5 -> H.264 4:2:0 at CRF 0 (the clean LR:
Y lossless) and at each CRF asked for (preset medium, as ``benchmarks/real_video.py``), on the
luma plane as coded. Each frame's 8x8 blocks are matched in the previous and the next frame
(integer motion, +-R pixels, least absolute difference), and the script reports per CRF:

* ``LR dB``: Y-PSNR of the compressed LR against the clean LR (what compression took);
* ``rho``: correlation of the compression error of a block and of its match in a neighbour,
  on the blocks that the clean frames align to within 1 level per pixel (motion known exactly:
  matched on the clean frames). Averaging three such frames can remove at most
  ``10 log10(3 / (1 + 2 rho))`` dB of the error there; 4.8 dB if the errors were independent;
* ``aligned``: the share of blocks that align that well;
* ``fused dB``: the gain of the three-frame average over the frame alone, on the blocks whose
  compressed matches differ by less than ``--tau`` per pixel (motion from the compressed frames,
  as a model would have to find it), and its best weight against the frame itself.

usage: python benchmarks/temporal_redundancy.py [--frames 24] [--crf 15 23 35] [--radius 6] [--tau 3]
"""

import argparse
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from real_video import HELD_OUT, _ground_truth  # noqa: E402

from imagesr.core.media import ffmpeg_binary  # noqa: E402

B = 8  # block side
ALIGNED = 2.0  # a block "aligns" when its clean match differs by less than this per pixel


def _luma(gt: np.ndarray, crf: int) -> np.ndarray:
    """The Y plane of the x1.5-down, H.264-coded frames (frames, h, w) uint8."""
    n, h, w = gt.shape[:3]
    lw, lh = w * 2 // 3, h * 2 // 3
    enc = subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-s", f"{w}x{h}", "-framerate", "25", "-i", "pipe:", "-vf", f"scale={lw}:{lh}:flags=bicubic",
                          "-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p",
                          "-f", "matroska", "pipe:"], input=gt.tobytes(), capture_output=True, check=True).stdout
    raw = subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "matroska", "-i", "pipe:",
                          "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:"], input=enc, capture_output=True,
                         check=True).stdout
    frame = lw * lh + 2 * ((lw + 1) // 2) * ((lh + 1) // 2)
    data = np.frombuffer(raw, np.uint8).reshape(-1, frame)
    assert len(data) == n, (len(data), n)
    return data[:, : lw * lh].reshape(n, lh, lw)


def _blocks(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[0] // B * B, a.shape[1] // B * B
    return a[:h, :w].reshape(h // B, B, w // B, B).swapaxes(1, 2)  # (by, bx, B, B)


def _match(ref: np.ndarray, other: np.ndarray, radius: int):
    """Per block of ``ref``: the best integer shift into ``other`` and the mean absolute
    difference there; returns (dy, dx, mad) maps of shape (by, bx)."""
    r = radius
    pad = np.pad(other.astype(np.float32), r, mode="edge")
    h, w = ref.shape[0] // B * B, ref.shape[1] // B * B
    rb = _blocks(ref.astype(np.float32))
    best = np.full(rb.shape[:2], np.inf, np.float32)
    dy = np.zeros(rb.shape[:2], np.int32)
    dx = np.zeros(rb.shape[:2], np.int32)
    for oy in range(-r, r + 1):
        for ox in range(-r, r + 1):
            cand = _blocks(pad[r + oy: r + oy + h, r + ox: r + ox + w])
            mad = np.abs(cand - rb).mean(axis=(2, 3))
            better = mad < best
            best = np.where(better, mad, best)
            dy, dx = np.where(better, oy, dy), np.where(better, ox, dx)
    return dy, dx, best


def _warp(other: np.ndarray, dy: np.ndarray, dx: np.ndarray, radius: int) -> np.ndarray:
    """``other``'s blocks moved by the matched shifts, as (by, bx, B, B) float32."""
    r = radius
    pad = np.pad(other.astype(np.float32), r, mode="edge")
    by, bx = dy.shape
    out = np.empty((by, bx, B, B), np.float32)
    for i in range(by):
        for j in range(bx):
            y, x = r + i * B + dy[i, j], r + j * B + dx[i, j]
            out[i, j] = pad[y: y + B, x: x + B]
    return out


def _psnr(a, b) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / mse) if mse > 0 else float("inf")


def clean_matches(clean: np.ndarray, radius: int) -> dict:
    """{(t, neighbour): (dy, dx, mad)} on the clean frames (the same for every CRF)."""
    return {(t, n): _match(clean[t], clean[n], radius) for t in range(1, len(clean) - 1) for n in (t - 1, t + 1)}


def analyse(clean: np.ndarray, coded: np.ndarray, exact: dict, radius: int, tau: float) -> dict:
    base, err_c, err_n, aligned, total = [], [], [], 0, 0
    weights = (0.0, 1 / 3, 0.5, 2 / 3)  # of the neighbours' mean against the frame itself
    fused = {(label, w): [] for label in ("found", "known") for w in weights}
    for t in range(1, len(clean) - 1):
        c_blocks, k_blocks = _blocks(clean[t].astype(np.float32)), _blocks(coded[t].astype(np.float32))
        base.append(_psnr(k_blocks, c_blocks))
        found, found_masks, known, known_masks = [], [], [], []
        for n in (t - 1, t + 1):
            # motion known (matched on the clean frames): how alike are the errors of one content?
            dy, dx, mad = exact[(t, n)]
            good = mad < ALIGNED
            aligned += int(good.sum())
            total += good.size
            warped = _warp(coded[n], dy, dx, radius)
            err_c.append((k_blocks - c_blocks)[good].ravel())
            err_n.append((warped - _warp(clean[n], dy, dx, radius))[good].ravel())
            known.append(warped)
            known_masks.append(good)
            # motion found on the compressed frames, as a model would have to
            dy, dx, mad = _match(coded[t], coded[n], radius)
            found.append(_warp(coded[n], dy, dx, radius))
            found_masks.append(mad < tau)
        for label, frames, masks in (("found", found, found_masks), ("known", known, known_masks)):
            both = (masks[0] & masks[1])[..., None, None]
            mean_n = (frames[0] + frames[1]) / 2
            for w in weights:
                f = np.where(both, (1 - w) * k_blocks + w * mean_n, k_blocks)
                fused[label, w].append(_psnr(np.clip(np.floor(f + 0.5), 0, 255), c_blocks))
    ec, en = np.concatenate(err_c), np.concatenate(err_n)
    rho = float(np.corrcoef(ec, en)[0, 1]) if ec.size > 1 else float("nan")
    out = {"lr_db": float(np.mean(base)), "rho": rho, "aligned": aligned / max(total, 1),
           "bound_db": float(10 * np.log10(3 / (1 + 2 * rho)))}
    for label in ("found", "known"):
        gains = {w: float(np.mean(fused[label, w]) - np.mean(base)) for w in weights}
        best = max(gains, key=gains.get)
        out[label] = (gains[best], best)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", nargs="+", default=HELD_OUT)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--crf", type=int, nargs="+", default=[15, 23, 35])
    ap.add_argument("--radius", type=int, default=6, help="motion search range in LR pixels")
    ap.add_argument("--tau", type=float, default=3.0, help="largest mean absolute difference of a block used")
    args = ap.parse_args()
    print(f"{args.frames} frames per source, x1.5 down, H.264 preset medium 4:2:0, Y plane; blocks {B}x{B}, "
          f"search +-{args.radius} px, fuse where the match differs by < {args.tau} per pixel")
    print("| source | CRF | LR dB | aligned | rho | bound dB | fused, motion known | fused, motion found |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for src in args.sources:
        name = os.path.splitext(os.path.basename(src.rstrip("/")))[0]
        gt = _ground_truth(src, args.frames)
        clean = _luma(gt, 0)
        exact = clean_matches(clean, args.radius)
        for crf in args.crf:
            r = analyse(clean, _luma(gt, crf), exact, args.radius, args.tau)
            print(f"| {name} | {crf} | {r['lr_db']:.2f} | {r['aligned']:.0%} | {r['rho']:.2f} | {r['bound_db']:+.2f} | "
                  f"{r['known'][0]:+.2f} (w {r['known'][1]:.2f}) | {r['found'][0]:+.2f} (w {r['found'][1]:.2f}) |",
                  flush=True)


if __name__ == "__main__":
    main()
