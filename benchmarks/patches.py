"""Throughput of the Beam patch job against a plain single-process loop, in one run.

Three ways to turn the same inputs into the same gzip TFRecords with the same core
functions (imagesr.core.sources.process_source + TFRecord framing + gzip level 6, as Beam's sink):
  plain    a Python loop in this process
  beam x1  the Beam job, multi-process DirectRunner with 1 worker
  beam x2  the same with 2 workers
Each is timed end to end (discovery, start-up, writing, finalizing). Prints pairs/s and
input megapixels/s, then the ratios the project tracks (beam x2 / beam x1, beam x1 / plain).

usage: python benchmarks/patches.py [--input ../shared/data/train] [--repeats 1] [--workdir DIR]
"""

import argparse
import gzip
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

from imagesr.core.patches import PatchOptions
from imagesr.core.records import write_tfrecord
from imagesr.core.sources import assign_splits, discover, process_source


def plain_loop(inputs, out):
    t0 = time.perf_counter()
    sources = assign_splits(discover(inputs), 0.05)
    opts = PatchOptions()
    os.makedirs(out)
    pairs = 0
    mp = 0.0
    files = {s: gzip.open(os.path.join(out, f"{s}.tfrecord.gz"), "wb", compresslevel=6) for s in ("train", "eval")}
    for src in sources:
        o = process_source(src, opts)
        for r in o.records:
            write_tfrecord(files[o.split], r)
        pairs += len(o.records)
        mp += o.status["megapixels"]
    for f in files.values():
        f.close()
    return time.perf_counter() - t0, pairs, mp


def beam_job(inputs, out, workers):
    from imagesr.pipelines import patch_job

    t0 = time.perf_counter()
    argv = sum((["--input", i] for i in inputs), []) + ["--output", out, "--workers", str(workers), "--no-progress"]
    manifest = patch_job.run(argv)
    return time.perf_counter() - t0, manifest["counts"]["pairs"], manifest["counts"]["megapixels"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--input", action="append", default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    inputs = args.input or [os.path.join(here, "..", "shared", "data", "train")]
    for i in inputs:
        if not os.path.exists(i):
            sys.exit(f"input {i} not found (the real data lives in ../shared/data)")
    logging.basicConfig(level=logging.WARNING)
    from imagesr.pipelines.patch_job import quiet_beam_logs

    quiet_beam_logs()
    work = args.workdir or tempfile.mkdtemp(prefix="imagesr-bench-")
    print(f"inputs {inputs}; {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}")
    runs = {"plain": [], "beam x1": [], "beam x2": []}
    for r in range(args.repeats):
        for name, fn in (("plain", lambda o: plain_loop(inputs, o)), ("beam x1", lambda o: beam_job(inputs, o, 1)),
                         ("beam x2", lambda o: beam_job(inputs, o, 2))):
            out = os.path.join(work, f"{name.replace(' ', '_')}_{r}")
            dt, pairs, mp = fn(out)
            runs[name].append((dt, pairs, mp))
            print(f"{name:8s} round {r}: {dt:7.1f} s  {pairs:,} pairs  {pairs / dt:8,.0f} pairs/s  {mp / dt:6.2f} MP/s", flush=True)
            shutil.rmtree(out, ignore_errors=True)
    rate = {k: statistics.median(p / d for d, p, _ in v) for k, v in runs.items()}
    mps = {k: statistics.median(m / d for d, _, m in v) for k, v in runs.items()}
    print()
    for k in runs:
        print(f"{k:8s} {rate[k]:8,.0f} pairs/s  {mps[k]:6.2f} input MP/s")
    print(f"beam x2 / beam x1: {rate['beam x2'] / rate['beam x1']:.2f}   (target >= 1.7)")
    print(f"beam x1 / plain:   {rate['beam x1'] / rate['plain']:.2f}   (target >= 0.8)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
