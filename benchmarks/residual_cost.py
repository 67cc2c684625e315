"""Where the time of ``imagesr patches --residual`` goes, in CPU seconds of this process
(``time.process_time``, steady on a loaded machine): cutting the patches (with the residual: one
MATLAB bicubic of all a frame's LR patches), encoding the records, and gzip at the job's level,
with and without the residual, on every Nth training image; then the same records at each
``--levels`` gzip level (what writing at level 1 instead of Beam's default 6 buys).

usage: python benchmarks/residual_cost.py [--train ../shared/data/train] [--every 6] [--scales 2 3 4] [--levels 1 6]
"""

import argparse
import glob
import os
import time
import zlib

from imagesr.components.beam.beam_internals import GZIP_LEVEL
from imagesr.core.media import decode_image
from imagesr.core.patches import PatchOptions, sample_frame
from imagesr.core.records import encode_pair

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default=os.path.join(ROOT, "..", "shared", "data", "train"))
    ap.add_argument("--every", type=int, default=6)
    ap.add_argument("--scales", nargs="+", type=float, default=[2.0, 3.0, 4.0])
    ap.add_argument("--levels", nargs="+", type=int, default=[GZIP_LEVEL, 6], help="gzip levels to compare")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.train, "**", "*.*"), recursive=True))[:: args.every]
    frames = [decode_image(f) for f in files]
    print(f"{len(frames)} images, scales {args.scales}, gzip level {GZIP_LEVEL}")
    print("| residual | pairs | cut s | encode s | gzip s | total s | raw MB | gzip MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    by_level = []
    for residual in (False, True):
        opts = PatchOptions(scales=tuple(args.scales), residual=residual)
        t0 = time.process_time()
        pairs = [p for i, fr in enumerate(frames) for p in sample_frame(fr, opts, "train", f"s{i}", 0)]
        t1 = time.process_time()
        recs = [encode_pair(p) for p in pairs]
        t2 = time.process_time()
        c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        out = sum(len(c.compress(r)) for r in recs) + len(c.flush())
        t3 = time.process_time()
        print(f"| {residual} | {len(pairs):,} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t3 - t2:.2f} | {t3 - t0:.2f} | "
              f"{sum(map(len, recs)) / 1e6:.0f} | {out / 1e6:.0f} |", flush=True)
        for level in args.levels:
            t = time.process_time()
            c = zlib.compressobj(level, zlib.DEFLATED, 31)
            size = sum(len(c.compress(r)) for r in recs) + len(c.flush())
            by_level.append((residual, level, time.process_time() - t, size / 1e6, t2 - t0))
    print("\n| residual | gzip level | gzip s | gzip MB | gzip share of cut + encode + gzip |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for residual, level, secs, mb, work in by_level:
        print(f"| {residual} | {level} | {secs:.2f} | {mb:.0f} | {secs / (work + secs):.0%} |")


if __name__ == "__main__":
    main()
