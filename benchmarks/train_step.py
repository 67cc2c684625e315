"""Training-step cost of SR architectures side by side, in one process: the trainer's optimiser,
loss and compilation on random patch batches, rounds of steps alternating between the models
so that a loaded machine's noise falls on all of them alike. Prints wall steps/s and CPU
seconds per step (``time.process_time``: all of this process's threads; steadier than the wall
clock on a shared machine), medians over the rounds.

usage: python benchmarks/train_step.py --model subpixel '{"width": 64, "blocks": 6}' --model span '{}'
       [--scale 2] [--batch 32] [--patch 48] [--steps 20] [--rounds 5] [--mixed-precision]
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs=2, action="append", metavar=("NAME", "ARGS_JSON"), required=True)
    ap.add_argument("--scale", type=float, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--patch", type=int, default=48, help="HR patch side")
    ap.add_argument("--steps", type=int, default=20, help="steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mixed-precision", action="store_true")
    args = ap.parse_args()

    import keras

    from imagesr.core.scale import Scale
    from imagesr.training.losses import LOSSES
    from imagesr.training.models import build_model, multiply_adds
    from imagesr.training.reparam import fold

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    s = Scale(args.scale)
    lr_side = args.patch * s.denominator // s.numerator
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.batch, lr_side, lr_side, 3)).astype("float32")
    y = rng.integers(0, 256, (args.batch, args.patch, args.patch, 3)).astype("float32")
    models = {}
    for name, margs in args.model:
        m = build_model(name, scale=args.scale, **json.loads(margs))
        m.compile(optimizer=keras.optimizers.Adam(1e-4, clipnorm=1.0), loss=LOSSES["l1"], jit_compile="auto")
        m.train_on_batch(x, y)  # compile
        label = f"{name} {margs}"
        served = fold(m).count_params()
        macs = multiply_adds(m, (1080 * s.denominator // s.numerator, 1920 * s.denominator // s.numerator), (1080, 1920))
        models[label] = (m, {"wall": [], "cpu": []}, served, macs)
    for _ in range(args.rounds):
        for m, times, _, _ in models.values():
            w, c = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                m.train_on_batch(x, y)
            times["wall"].append((time.perf_counter() - w) / args.steps)
            times["cpu"].append((time.process_time() - c) / args.steps)
    print(f"x{s} batch {args.batch}, HR patch {args.patch}, {keras.backend.backend()}, "
          f"{'mixed_bfloat16' if args.mixed_precision else 'float32'}, {os.cpu_count()} cores, "
          f"median of {args.rounds} rounds of {args.steps} steps")
    print("| model | parameters (served) | G multiply-adds per 1080p frame | steps/s | CPU s per step |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, (m, times, served, macs) in models.items():
        print(f"| {label} | {served:,} | {macs / 1e9:.1f} | {1 / statistics.median(times['wall']):.2f} | "
              f"{statistics.median(times['cpu']):.3f} |")


if __name__ == "__main__":
    main()
