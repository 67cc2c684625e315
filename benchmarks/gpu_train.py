"""The GPU run of the training issue, in one command: patches -> train -> evaluate.

1. Patch pairs with the project's own code (imagesr.core.sources.process_source, 48 px HR
   patches): MATLAB-bicubic pairs at x2/x3/x4 of the photographs (DATA/photos), realistic x1.5
   pairs of the real-video sequences (DATA/video: blur, noise and H.264 drawn per source, then
   the resize), written as TFRecords by forked workers (no TensorFlow and no Beam on the GPU
   machine) and read back through the TF-free reader.
2. Training with the backend Keras is set to (JAX on the GPU), each run within its own time
   budget with a cosine in time (imagesr.training.trainer, time_budget_s): by default the
   efficient model at x2 and x3 side by side, then x4 beside the real-video x1.5 model (trained
   on realistic pairs from the start). Each run is a child process (this script with --child);
   the runs of one group share the GPU (their steps are short and bound by the host loop, so two
   fill each other's idle gaps).
3. Y-PSNR/SSIM on Set5 and Set14 by `imagesr evaluate --json` (the installed command), run on
   the machine's CPU cores (JAX_PLATFORMS=cpu) in the background while the GPU trains the next
   models: evaluation compiles once per image size, which would otherwise take GPU time.

VDSR (trained at x2/x3/x4) is also evaluated at x1.5, beside the efficient model there.
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

from imagesr.core.dataset import split_dir
from imagesr.core.patches import PatchOptions
from imagesr.core.records import write_tfrecord
from imagesr.core.sources import assign_splits, discover, process_source

# name -> (model, scales, learning rate, steps per compiled call, model args, patches)
# SubPixel-SR is wider and deeper here than the shipped CPU model (64 channels, 6 blocks: about
# 0.5M parameters, still fewer than VDSR's 0.67M and ~13x fewer multiply-adds per 1080p frame):
# on a GPU its training steps are bound by the host loop, not the network, so the capacity is
# nearly free within the same time budget. "clean": MATLAB-bicubic pairs of the photographs
# (DATA/photos, or DATA/train); "real": realistic pairs of the real-video sequences (DATA/video:
# per-source blur, noise, H.264 over the frames, then the x1.5 resize), from the start.
SUBPIXEL_GPU = {"width": 64, "blocks": 6}
RUNS = {
    "vdsr_x2-3-4": ("vdsr", (2, 3, 4), 5e-4, 1, {}, "clean"),
    "subpixel_x2": ("subpixel", (2,), 1e-3, 4, SUBPIXEL_GPU, "clean"),
    "subpixel_x3": ("subpixel", (3,), 1e-3, 4, SUBPIXEL_GPU, "clean"),
    "subpixel_x4": ("subpixel", (4,), 1e-3, 4, SUBPIXEL_GPU, "clean"),
    "subpixel_x1.5": ("subpixel", (1.5,), 1e-3, 4, SUBPIXEL_GPU, "clean"),
    "subpixel_x1.5_real": ("subpixel", (1.5,), 1e-3, 4, SUBPIXEL_GPU, "real"),
}
DEFAULT_BUDGETS = {"vdsr_x2-3-4": 230.0, "subpixel_x2": 150.0, "subpixel_x3": 150.0, "subpixel_x4": 150.0,
                   "subpixel_x1.5": 80.0, "subpixel_x1.5_real": 150.0}
# Runs in one group train at the same time, in separate processes; groups run one after another.
DEFAULT_GROUPS = ["subpixel_x2,subpixel_x3", "subpixel_x4,subpixel_x1.5_real"]
EVAL_SCALES = {"vdsr": (2, 3, 4, 1.5)}  # VDSR serves any scale: shown at the efficient model's x1.5 too
SUMMARY_KEYS = ("parameters", "steps", "train_seconds", "steps_per_second", "final_loss", "eval_psnr_y",
                "eval_psnr_y_bicubic")
_OPTS = None


def _work(args):
    idx, sources, out = args
    files, n = {}, 0
    try:
        for src in sources:
            o = process_source(src, _OPTS)
            if o.split not in files:
                d = split_dir(out, o.split)
                os.makedirs(d, exist_ok=True)
                files[o.split] = open(os.path.join(d, f"part-{idx:04d}.tfrecord"), "wb")
            for r in o.records:
                write_tfrecord(files[o.split], r)
            n += len(o.records)
    finally:
        for f in files.values():
            f.close()
    return n


def make_patches(train_dir: str, out: str, workers: int, limit_sources=None, scales=(2, 3, 4, 1.5),
                 degradation: str = "clean") -> int:
    """Patch pairs of every source at ``scales``, one TFRecord file per worker and split."""
    global _OPTS
    _OPTS = PatchOptions(scales=tuple(scales), patch_size=48, stride=24, residual=degradation == "clean",
                         degradation=degradation)
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
    """`imagesr evaluate --json` jobs in background threads, ``workers`` at a time, on the CPU.

    They run with JAX_PLATFORMS=cpu (no GPU memory, no GPU time) on all cores but the first
    four, which stay with the training loops that feed the GPU; each worker has its own share
    of those cores (evaluation compiles once per image size, which is mostly one thread)."""

    def __init__(self, log, on_result, workers: int = 2):
        self.jobs, self.log, self.on_result = [], log, on_result
        self.cond = threading.Condition()
        self.closed = False
        cores = sorted(os.sched_getaffinity(0))
        spare = cores[4:] or cores
        workers = max(1, min(workers, len(spare)))
        self.procs = [None] * workers
        self.threads = [threading.Thread(target=self._run, args=(i, set(spare[i::workers])), daemon=True)
                        for i in range(workers)]
        for t in self.threads:
            t.start()

    def add(self, key: str, model_dir: str, dataset: str, scales) -> None:
        """Queue a job; smaller datasets go first (Set5 before Set14), so that when time runs
        out each model has its quick figures rather than one model its slow ones."""
        size = len(os.listdir(dataset)) if os.path.isdir(dataset) else 0
        with self.cond:
            self.jobs.append((size, key, model_dir, dataset, scales))
            self.jobs.sort(key=lambda j: j[0])  # stable: same size keeps arrival order
            self.cond.notify()

    def _run(self, worker: int, cores):
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        while True:
            with self.cond:
                while not self.jobs and not self.closed:
                    self.cond.wait()
                if not self.jobs:
                    return
                _, key, model_dir, dataset, scales = self.jobs.pop(0)
            t = time.perf_counter()
            cmd = [shutil.which("imagesr") or "imagesr", "evaluate", "--model", model_dir, "--dataset", dataset,
                   "--scales", *[f"{s:g}" for s in scales], "--json"]  # the installed console script
            p = self.procs[worker] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                      text=True)
            try:
                os.sched_setaffinity(p.pid, cores)  # before it starts its threads (no preexec_fn: we are threaded)
            except OSError:
                pass
            out, err = p.communicate()
            if p.returncode == 0:
                value = json.loads(out.strip().splitlines()[-1])
                value["seconds"] = round(time.perf_counter() - t, 1)
            elif self.closed and p.returncode < 0:
                value = {"error": "stopped: the evaluations ran past --eval-timeout", "command": " ".join(cmd)}
            else:
                value = {"error": err.strip()[-2000:], "command": " ".join(cmd)}
            self.log(f"evaluated {key} in {time.perf_counter() - t:.1f} s"
                     + ("" if p.returncode == 0 else f": FAILED ({value['error'][-300:]})"))
            self.on_result(key, value)

    def close(self, timeout: float):
        """Wait up to ``timeout`` s for the queued jobs; then stop those still running, so that
        they do not disturb what comes next. True when all finished."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        end = time.perf_counter() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.perf_counter()))
        if not any(t.is_alive() for t in self.threads):
            return True
        with self.cond:
            self.jobs.clear()
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.kill()
        for t in self.threads:
            t.join(10)
        return False


def train_config(args, name: str, budget_s: float):
    from imagesr.training.trainer import TrainConfig

    model, scales, lr, spe, model_args, _ = RUNS[name]
    lr = _per_run(args.learning_rate, float).get(name, lr)
    return TrainConfig(model=model, scales=scales, batch_size=8 if args.quick else args.batch, steps=args.steps,
                       learning_rate=lr, mixed_precision=args.mixed_precision, in_memory=True,
                       warm_start=_per_run(args.warm_start, os.path.abspath).get(name),
                       time_budget_s=budget_s, steps_per_execution=spe, model_args=model_args,
                       log_every=20 if args.quick else 2000, eval_batches=4)


def _per_run(items, convert) -> dict:
    """``["RUN=VALUE", ...]`` -> {RUN: convert(VALUE)} (checked against RUNS in main)."""
    return {k: convert(v) for k, _, v in (i.partition("=") for i in items)}


def train_child(args) -> None:
    """One run (--child NAME): train it, then write its summary, backend and devices beside the model."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("imagesr.training").setLevel(logging.INFO)  # pairs loaded, steps, compilation time
    import keras

    from imagesr.core.dataset import record_files
    from imagesr.training.trainer import train

    devices = []
    if keras.backend.backend() == "jax":
        import jax

        devices = [str(d) for d in jax.devices()]
    print(f"Keras {keras.__version__} on {keras.backend.backend()}: {devices}", flush=True)
    patches = os.path.join(args.work, "patches", RUNS[args.child][5])
    run_dir = os.path.join(args.work, "runs", args.child)
    cfg = train_config(args, args.child, args.child_budget)
    s = train(cfg, record_files(patches, "train"), record_files(patches, "eval"), run_dir)
    out = {k: s.get(k) for k in SUMMARY_KEYS}
    out.update(backend=keras.backend.backend(), keras=keras.__version__, devices=devices)
    with open(os.path.join(run_dir, "gpu_summary.json"), "w") as f:
        json.dump(out, f)


def run_group(args, names, budgets, log):
    """Train ``names`` at the same time, one child process each, their output prefixed in the
    log; returns {name: (summary or None, error or None, wall seconds)}."""
    procs, t, ended = {}, time.perf_counter(), {}
    env = dict(os.environ)
    if len(names) > 1:  # JAX takes 75% of the GPU's memory per process by default
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / len(names):.2f}"
    for name in names:
        run_dir = os.path.join(args.work, "runs", name)
        shutil.rmtree(run_dir, ignore_errors=True)
        cmd = [sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--child", name,
               "--child-budget", f"{budgets[name]:.1f}"]
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        tail = []

        def pump(p=p, name=name, tail=tail):
            for line in p.stdout:
                line = line.rstrip()
                if line:
                    tail[:] = (tail + [line])[-5:]
                    log(f"  {name} | {line}")
            ended[name] = time.perf_counter()  # its output closed: it has exited

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        procs[name] = (p, thread, tail)
    done = {}
    for name, (p, thread, tail) in procs.items():
        rc = p.wait()
        thread.join()
        wall = ended.get(name, time.perf_counter()) - t
        summary_path = os.path.join(args.work, "runs", name, "gpu_summary.json")
        if rc == 0 and os.path.exists(summary_path):
            with open(summary_path) as f:
                done[name] = (json.load(f), None, wall)
        else:
            done[name] = (None, f"exit status {rc}: " + " | ".join(tail[-3:]), wall)
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with photos/ (or train/: training images), video/ (real-video "
                    "sequences, for the real x1.5 run) and bench/Set5/HR, bench/Set14/HR")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/imagesr-gpu")
    ap.add_argument("--budget", nargs="+", default=[], metavar="RUN=SECONDS",
                    help=f"training seconds per run (default {' '.join(f'{k}={v:g}' for k, v in DEFAULT_BUDGETS.items())})")
    ap.add_argument("--groups", nargs="+", default=DEFAULT_GROUPS, metavar="RUN[,RUN...]",
                    help="runs in order; the runs of one group (comma-separated) train at the same time "
                         f"(default: {' '.join(DEFAULT_GROUPS)}); runs are {', '.join(RUNS)}")
    ap.add_argument("--steps", type=int, default=1_000_000, help="upper bound on steps (the budget stops first)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute (the GPU run)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--eval-timeout", type=float, default=240, help="seconds to wait for evaluations at the end")
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="finish within this many seconds: the groups' budgets shrink in proportion when the "
                         "patches or compilations took longer than planned")
    ap.add_argument("--quick", action="store_true", help="CPU dry run: few sources, short budgets")
    ap.add_argument("--warm-start", nargs="+", default=[], metavar="RUN=PATH",
                    help="start a run from a trained model (.keras or model folder) instead of from scratch")
    ap.add_argument("--learning-rate", nargs="+", default=[], metavar="RUN=LR", help="a run's peak learning rate")
    ap.add_argument("--child", choices=list(RUNS), help=argparse.SUPPRESS)
    ap.add_argument("--child-budget", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return train_child(args)
    groups = [g.split(",") for g in args.groups]
    for name in (n for g in groups for n in g):
        if name not in RUNS:
            ap.error(f"--groups: unknown run {name!r}; runs are {', '.join(RUNS)}")
    budgets = dict(DEFAULT_BUDGETS)
    if args.quick:
        budgets = {k: 15.0 for k in budgets}
    for option, items in (("--budget", args.budget), ("--warm-start", args.warm_start),
                          ("--learning-rate", args.learning_rate)):
        for k in _per_run(items, str):
            if k not in RUNS:
                ap.error(f"{option} {k}: unknown run; runs are {', '.join(RUNS)}")
    for k, p in _per_run(args.warm_start, str).items():
        if not os.path.exists(p):
            ap.error(f"--warm-start {k}={p}: no such model")
    budgets.update(_per_run(args.budget, float))
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    results = {"machine": platform.node(), "cpus": os.cpu_count(), "groups": args.groups, "runs": {},
               "evaluation": {}}

    lock = threading.Lock()

    def save():
        with lock:  # the evaluation thread saves too
            results["total_seconds"] = round(time.perf_counter() - t0, 1)
            tmp = os.path.join(args.out, "results.json.partial")
            with open(tmp, "w") as f:
                json.dump(results, f, indent=1, default=str)
            os.replace(tmp, os.path.join(args.out, "results.json"))

    # Patches in forked workers; this process never starts Keras or the GPU (the runs are children).
    wanted = {kind: sorted({s for g in groups for r in g if RUNS[r][5] == kind for s in RUNS[r][1]})
              for kind in ("clean", "real")}
    photos = os.path.join(args.data, "photos")
    photos = photos if os.path.isdir(photos) else os.path.join(args.data, "train")
    folders = {"clean": photos, "real": os.path.join(args.data, "video")}
    results["patches"] = {}
    for kind, scales in wanted.items():
        if not scales:
            continue
        t = time.perf_counter()
        n = make_patches(folders[kind], os.path.join(args.work, "patches", kind), args.workers,
                         limit_sources=6 if args.quick else None, scales=[int(s) if float(s).is_integer() else s
                                                                           for s in scales],
                         degradation="clean" if kind == "clean" else "realistic")
        results["patches"][kind] = {"pairs": n, "seconds": round(time.perf_counter() - t, 1), "workers": args.workers,
                                    "source": folders[kind], "scales": scales}
        log(f"patches ({kind}, {folders[kind]}): {n:,} pairs (x{'/x'.join(f'{s:g}' for s in scales)}, 48 px) "
            f"in {results['patches'][kind]['seconds']} s")
    save()

    benches = {s: os.path.join(args.data, "bench", s, "HR") for s in ("Set5", "Set14")}
    benches = {s: p for s, p in benches.items() if os.path.isdir(p)}  # none: evaluate elsewhere

    def evaluated(key, value):
        with lock:
            results["evaluation"][key] = value
        save()

    evals = Evaluations(log, evaluated)
    overhead_s = 25.0  # per group: start, loading, compilation, eval-split patches, export
    i = 0
    while i < len(groups):
        group = groups[i]
        if args.deadline_s:
            rest = groups[i:]
            left = args.deadline_s - (time.perf_counter() - t0) - overhead_s * len(rest) - args.eval_timeout / 2
            planned = sum(max(budgets[r] for r in g) for g in rest)
            if left < planned:
                factor = max(left, 5.0 * len(rest)) / planned
                for name in group:
                    budgets[name] = max(5.0, budgets[name] * factor)
                log(f"{','.join(group)}: budgets cut to {', '.join(f'{budgets[r]:.0f}' for r in group)} s "
                    f"to end by the {args.deadline_s:g} s deadline")
        log(f"training {', '.join(f'{r} ({budgets[r]:.0f} s)' for r in group)}")
        retry = []
        for name, (s, error, wall) in run_group(args, group, budgets, log).items():
            model, scales, lr, _, model_args, _ = RUNS[name]
            lr = _per_run(args.learning_rate, float).get(name, lr)
            if error:
                results["runs"][name] = {"error": error}
                log(f"{name}: FAILED {error}")
                save()
                if len(group) > 1 and wall < budgets[name] / 2:  # e.g. the GPU refused a second process
                    retry.append(name)
                continue
            for k in ("backend", "keras", "devices"):
                results[k] = s.pop(k)
            run_dir = os.path.join(args.work, "runs", name)
            shutil.copy(os.path.join(run_dir, "model.keras"), os.path.join(args.out, f"{name}.keras"))
            results["runs"][name] = dict(s, budget_s=budgets[name], wall_seconds=round(wall, 1),
                                         warm_start=_per_run(args.warm_start, str).get(name),
                                         trained_beside=[r for r in group if r != name],
                                         batch=8 if args.quick else args.batch, learning_rate=lr,
                                         mixed_precision=args.mixed_precision, model_args=model_args)
            log(f"{name}: {json.dumps(results['runs'][name])}")
            save()
            for bench, folder in benches.items():
                evals.add(f"{name} {bench}", run_dir, folder, EVAL_SCALES.get(model, scales))
        if retry:
            log(f"{', '.join(retry)}: failed early beside another run; retried alone")
            groups[i + 1:i + 1] = [[r] for r in retry]
        i += 1
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
