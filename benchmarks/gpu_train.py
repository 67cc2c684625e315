"""The GPU run of the training issue, in one command: patches -> train -> evaluate.

1. Patch pairs from the training images (T91 + BSD200) with the project's own code
   (imagesr.sources.process_source: MATLAB bicubic at x2/x3/x4/x1.5, 48 px HR patches,
   residuals), written as TFRecords by forked workers (no TensorFlow and no Beam on the GPU
   machine) and read back through the TF-free reader (training.data.load_arrays).
2. Training with the backend Keras is set to (JAX on the H100), each run within its own time
   budget with a cosine in time (training.trainer, time_budget_s): VDSR on x2+x3+x4,
   SubPixel-SR at x2 and at x1.5.
3. Y-PSNR/SSIM on Set5 and Set14 by `imagesr evaluate --json` (the command itself), run on the
   machine's CPU cores (JAX_PLATFORMS=cpu) in the background while the GPU trains the next
   model: evaluation compiles once per image size, which would otherwise take GPU time.

Results go to OUT/results.json (rewritten after every stage, so a cut-off run still reports
what it finished) and each model to OUT/<run>.keras; at most 4 files, within what the device
tool brings back. The 30-frame timing is benchmarks/upscale.py (run after this, see
benchmarks/gpu_run.sh, the whole device command).

CPU dry run of the same code path (minutes):
    KERAS_BACKEND=jax python benchmarks/gpu_train.py --data ../shared/data --out /tmp/g --quick
"""

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from imagesr.patches import PatchOptions  # noqa: E402
from imagesr.records import write_tfrecord  # noqa: E402
from imagesr.sources import assign_splits, discover, process_source  # noqa: E402

# name -> (model, scales, learning rate, steps per compiled call, model args)
# SubPixel-SR is wider and deeper here than the shipped CPU model (64 channels, 6 blocks: about
# 0.5M parameters, still fewer than VDSR's 0.67M and ~13x fewer multiply-adds per 1080p frame):
# on a GPU its training steps are bound by the host loop, not the network, so the capacity is
# nearly free within the same time budget.
SUBPIXEL_GPU = {"width": 64, "blocks": 6}
RUNS = {
    "vdsr_x2-3-4": ("vdsr", (2, 3, 4), 5e-4, 1, {}),
    "subpixel_x2": ("subpixel", (2,), 1e-3, 4, SUBPIXEL_GPU),
    "subpixel_x1.5": ("subpixel", (1.5,), 1e-3, 4, SUBPIXEL_GPU),
}
DEFAULT_BUDGETS = {"vdsr_x2-3-4": 200.0, "subpixel_x2": 55.0, "subpixel_x1.5": 55.0}
_OPTS = None


def _work(args):
    idx, sources, out = args
    files, n = {}, 0
    try:
        for src in sources:
            o = process_source(src, _OPTS)
            if o.split not in files:
                d = os.path.join(out, f"Split-{o.split}")
                os.makedirs(d, exist_ok=True)
                files[o.split] = open(os.path.join(d, f"part-{idx:04d}.tfrecord"), "wb")
            for r in o.records:
                write_tfrecord(files[o.split], r)
            n += len(o.records)
    finally:
        for f in files.values():
            f.close()
    return n


def make_patches(train_dir: str, out: str, workers: int, limit_sources=None) -> int:
    """Patch pairs of every source at x2/x3/x4/x1.5, one TFRecord file per worker and split."""
    global _OPTS
    _OPTS = PatchOptions(scales=(2, 3, 4, 1.5), patch_size=48, stride=24, residual=True)
    sources = assign_splits(discover([train_dir]), 0.02)
    if limit_sources:  # a few of each split
        sources = ([s for s in sources if s.split == "train"][:limit_sources]
                   + [s for s in sources if s.split == "eval"][:1])
    if os.path.isdir(out):
        shutil.rmtree(out)
    chunks = [(i, sources[i::workers], out) for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return sum(pool.map(_work, chunks))


class Evaluations:
    """`imagesr evaluate --json` jobs, one at a time in a background thread, on the CPU.

    They run with JAX_PLATFORMS=cpu (no GPU memory, no GPU time) on all cores but the first
    two, which stay with the training loop that feeds the GPU."""

    def __init__(self, log, on_result):
        self.jobs, self.log, self.on_result = [], log, on_result
        self.cond = threading.Condition()
        self.closed = False
        self.proc = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, key: str, model_dir: str, dataset: str, scales) -> None:
        with self.cond:
            self.jobs.append((key, model_dir, dataset, scales))
            self.cond.notify()

    def _run(self):
        env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(
            p for p in [ROOT, os.environ.get("PYTHONPATH", "")] if p))
        cores = sorted(os.sched_getaffinity(0))
        spare = set(cores[2:]) or set(cores)
        while True:
            with self.cond:
                while not self.jobs and not self.closed:
                    self.cond.wait()
                if not self.jobs:
                    return
                key, model_dir, dataset, scales = self.jobs.pop(0)
            t = time.perf_counter()
            cmd = [sys.executable, "-m", "imagesr.cli", "evaluate", "--model", model_dir, "--dataset", dataset,
                   "--scales", *[f"{s:g}" for s in scales], "--json"]
            p = self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                os.sched_setaffinity(p.pid, spare)  # before it starts its threads (no preexec_fn: we are threaded)
            except OSError:
                pass
            out, err = p.communicate()
            p = subprocess.CompletedProcess(cmd, p.returncode, out, err)
            if p.returncode == 0:
                value = json.loads(p.stdout.strip().splitlines()[-1])
                value["seconds"] = round(time.perf_counter() - t, 1)
            elif self.closed and p.returncode < 0:
                value = {"error": "stopped: the evaluations ran past --eval-timeout", "command": " ".join(cmd)}
            else:
                value = {"error": p.stderr.strip()[-2000:], "command": " ".join(cmd)}
            self.log(f"evaluated {key} in {time.perf_counter() - t:.1f} s"
                     + ("" if p.returncode == 0 else f": FAILED ({value['error'][-300:]})"))
            self.on_result(key, value)

    def close(self, timeout: float):
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join(timeout)
        if self.thread.is_alive():  # stop the one running, so that it does not disturb what comes next
            with self.cond:
                self.jobs.clear()
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
            self.thread.join(10)
            return False
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train/ and bench/ (../shared/data or .gpu/data)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/imagesr-gpu")
    ap.add_argument("--budget", nargs="+", default=[], metavar="RUN=SECONDS",
                    help=f"training seconds per run (default {' '.join(f'{k}={v:g}' for k, v in DEFAULT_BUDGETS.items())})")
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--steps", type=int, default=1_000_000, help="upper bound on steps (the budget stops first)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute (the GPU run)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--eval-timeout", type=float, default=240, help="seconds to wait for evaluations at the end")
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="finish within this many seconds: the runs' budgets shrink in proportion when the "
                         "patches or compilations took longer than planned")
    ap.add_argument("--quick", action="store_true", help="CPU dry run: few sources, short budgets")
    args = ap.parse_args()
    budgets = dict(DEFAULT_BUDGETS)
    if args.quick:
        budgets = {k: 15.0 for k in budgets}
    for b in args.budget:
        k, _, v = b.partition("=")
        if k not in RUNS:
            ap.error(f"--budget {b}: unknown run {k!r}; runs are {', '.join(RUNS)}")
        budgets[k] = float(v)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("training").setLevel(logging.INFO)  # pairs loaded, steps, compilation time

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    results = {"machine": platform.node(), "cpus": os.cpu_count(), "runs": {}, "evaluation": {}}

    lock = threading.Lock()

    def save():
        with lock:  # the evaluation thread saves too
            results["total_seconds"] = round(time.perf_counter() - t0, 1)
            tmp = os.path.join(args.out, "results.json.partial")
            with open(tmp, "w") as f:
                json.dump(results, f, indent=1, default=str)
            os.replace(tmp, os.path.join(args.out, "results.json"))

    # Patches first, in forked workers, before Keras/JAX start their threads and the device.
    patches = os.path.join(args.work, "patches")
    n = make_patches(os.path.join(args.data, "train"), patches, args.workers, limit_sources=6 if args.quick else None)
    results["patches"] = {"pairs": n, "seconds": round(time.perf_counter() - t0, 1), "workers": args.workers}
    log(f"patches: {n:,} pairs (x2/x3/x4/x1.5, 48 px) in {results['patches']['seconds']} s")
    save()

    import keras

    from training.data import find_record_files
    from training.trainer import TrainConfig, train

    results.update(backend=keras.backend.backend(), keras=keras.__version__)
    if keras.backend.backend() == "jax":
        import jax

        results["devices"] = [str(d) for d in jax.devices()]
    log(f"Keras {keras.__version__} on {keras.backend.backend()}: {results.get('devices', '')}")
    tr, ev = find_record_files(patches, "train"), find_record_files(patches, "eval")
    benches = {s: os.path.join(args.data, "bench", s, "HR") for s in ("Set5", "Set14")}
    def evaluated(key, value):
        with lock:
            results["evaluation"][key] = value
        save()

    evals = Evaluations(log, evaluated)
    overhead_s = 25.0  # per run: loading, evaluation on the eval split, export (the deadline absorbs more)
    for i, name in enumerate(args.runs):
        model, scales, lr, spe, model_args = RUNS[name]
        if args.deadline_s:
            rest = args.runs[i:]
            left = args.deadline_s - (time.perf_counter() - t0) - overhead_s * len(rest) - args.eval_timeout / 2
            planned = sum(budgets[r] for r in rest)
            if left < planned:
                budgets[name] = max(5.0, budgets[name] * left / planned)
                log(f"{name}: budget cut to {budgets[name]:.0f} s to end by the {args.deadline_s:g} s deadline")
        cfg = TrainConfig(model=model, scales=scales, batch_size=8 if args.quick else args.batch, steps=args.steps,
                          learning_rate=lr, mixed_precision=args.mixed_precision, in_memory=True,
                          time_budget_s=budgets[name], steps_per_execution=spe, model_args=model_args,
                          log_every=20 if args.quick else 2000, eval_batches=4)
        run_dir = os.path.join(args.work, "runs", name)
        t = time.perf_counter()
        try:
            s = train(cfg, tr, ev, run_dir)
        except Exception as e:  # noqa: BLE001 - report and go on with the next run
            results["runs"][name] = {"error": f"{type(e).__name__}: {e}"}
            log(f"{name}: FAILED {type(e).__name__}: {e}")
            save()
            continue
        shutil.copy(os.path.join(run_dir, "model.keras"), os.path.join(args.out, f"{name}.keras"))
        results["runs"][name] = {k: s.get(k) for k in ("parameters", "steps", "train_seconds", "steps_per_second",
                                                       "final_loss", "eval_psnr_y", "eval_psnr_y_bicubic")}
        results["runs"][name].update(budget_s=budgets[name], wall_seconds=round(time.perf_counter() - t, 1),
                                     batch=cfg.batch_size, learning_rate=lr, mixed_precision=cfg.mixed_precision,
                                     model_args=model_args)
        log(f"{name}: {json.dumps(results['runs'][name])}")
        save()
        for bench, folder in benches.items():
            evals.add(f"{name} {bench}", run_dir, folder, scales)
    done = evals.close(args.eval_timeout)
    if not done:
        results["evaluation_incomplete"] = f"evaluations still running after {args.eval_timeout:g} s"
    save()
    print("\n| run | parameters | steps | train s | " + " | ".join(f"{b} x{s:g}" for b in benches for s in (2, 3, 4, 1.5)) + " |")
    for name, r in results["runs"].items():
        cells = []
        for b in benches:
            got = {x["scale"]: x["psnr_y"] for x in results["evaluation"].get(f"{name} {b}", {}).get("results", [])}
            cells += [f"{got[s]:.2f}" if s in got else "" for s in (2, 3, 4, 1.5)]
        print(f"| {name} | {r.get('parameters', '')} | {r.get('steps', '')} | {r.get('train_seconds', '')} | " + " | ".join(cells) + " |")
    log("done")


if __name__ == "__main__":
    main()
