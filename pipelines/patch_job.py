"""The Beam patch-pair job: media (folders, DAVIS, videos; local or gs://) -> TFRecords.

    imagesr patches --input DIR_OR_GLOB [--input ...] --output DIR_OR_GS [--scales 2 3 4]
        [--patch-size 48] [--stride 24] [--residual] [--eval-fraction 0.05] [--runner ...]
        [any Beam pipeline option: --project, --region, --temp_location, ...]

Layout of the output (the splits as TFX ExampleGen writes them, so TFX can consume it)::

    OUTPUT/Split-train/data_tfrecord-00000-of-00002.gz   gzip TFRecords of tf.train.Example
    OUTPUT/Split-eval/data_tfrecord-00000-of-00001.gz
    OUTPUT/dead_letter.jsonl   one line per input that failed, with the reason
    OUTPUT/manifest.json       options, counts per dataset/scale/split, every input's status

Everything is first written under ``OUTPUT/.staging-<run>/`` and moved into place only when
the run succeeded and produced records; ``manifest.json`` is written last, so a folder
without it is not a finished dataset. A run in which no input is valid fails with the
reasons and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import sys
import threading
import time
import uuid
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    TestOptions,
    WorkerOptions,
)

from components.patch_transform import SPLITS, STATUS_TAG, BeamFS, MediaToPatchPairs, write_split
from imagesr.patches import DIHEDRAL_MODES, PatchOptions
from imagesr.sources import assign_splits, discover, join

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DEAD_LETTER = "dead_letter.jsonl"
RECORD_PREFIX = "data_tfrecord"


class PatchJobError(Exception):
    """A run that cannot start or produced no dataset; the message says why."""


def _scale(text: str):
    v = float(text)
    if v <= 1:
        raise argparse.ArgumentTypeError(f"scale must be > 1, got {text}")
    return int(v) if v.is_integer() else v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imagesr patches",
        description="Turn images, DAVIS frame folders and videos into LR/HR patch-pair TFRecords with Apache Beam. "
        "Unrecognised flags are Beam pipeline options (e.g. --project, --region, --temp_location, "
        "--max_num_workers, --machine_type for --runner DataflowRunner).",
    )
    p.add_argument("--input", action="append", required=True, help="file, folder or glob; local or gs://; repeatable")
    p.add_argument("--output", required=True, help="output folder, local or gs://")
    p.add_argument("--scales", type=_scale, nargs="+", default=[2, 3, 4], help="SR scales (default 2 3 4; 1.5 allowed)")
    p.add_argument("--patch-size", type=int, default=48, help="HR patch side in pixels (default 48)")
    p.add_argument("--stride", type=int, default=24, help="HR patch grid step (default 24)")
    p.add_argument("--min-std", type=float, default=4.0, help="drop patches whose HR luma std is below this (default 4)")
    p.add_argument("--max-patches-per-frame", type=int, default=0, help="cap per frame and scale, 0 = none")
    p.add_argument("--dihedral", choices=DIHEDRAL_MODES, default="none", help="dihedral augmentation (default none)")
    p.add_argument("--residual", action="store_true", help="also store HR - bicubic_up(LR) (int16)")
    p.add_argument("--eval-fraction", type=float, default=0.05, help="share of sources in the eval split (default 0.05)")
    p.add_argument("--frame-stride", type=int, default=5, help="use every k-th frame of videos and sequences (default 5)")
    p.add_argument("--max-frames", type=int, default=None, help="at most this many frames per video/sequence")
    p.add_argument("--official-lr", action="store_true", help="use DIV2K's LR_bicubic images when present")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a finished dataset already in --output")
    p.add_argument("--runner", default="DirectRunner", help="DirectRunner (default) or DataflowRunner, ...")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: CPU count)")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    return p


def pipeline_options(args, beam_argv: Sequence[str]) -> PipelineOptions:
    """Runner configuration: multi-process DirectRunner locally, Dataflow when asked."""
    opts = PipelineOptions(list(beam_argv), runner=args.runner, save_main_session=False)
    if args.runner in ("DirectRunner", "direct"):
        direct = opts.view_as(DirectOptions)
        direct.direct_running_mode = direct.direct_running_mode if "--direct_running_mode" in " ".join(beam_argv) else "multi_processing"
        if not any(a.startswith("--direct_num_workers") for a in beam_argv):
            direct.direct_num_workers = args.workers or os.cpu_count() or 1
    if args.runner in ("DataflowRunner", "dataflow"):
        setup = opts.view_as(SetupOptions)
        worker = opts.view_as(WorkerOptions)
        if not setup.setup_file and not worker.sdk_container_image:
            # Ship imagesr to the workers (the worker image in infra/ is the alternative).
            setup.setup_file = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")
        gco = opts.view_as(GoogleCloudOptions)
        if not gco.job_name:
            gco.job_name = "imagesr-patches-" + datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")
    return opts


def _validate(args) -> PatchOptions:
    if not 0 <= args.eval_fraction < 1:
        raise PatchJobError(f"--eval-fraction must be in [0, 1), got {args.eval_fraction}")
    if args.frame_stride < 1:
        raise PatchJobError(f"--frame-stride must be >= 1, got {args.frame_stride}")
    if args.max_frames is not None and args.max_frames < 1:
        raise PatchJobError(f"--max-frames must be >= 1, got {args.max_frames}")
    try:
        return PatchOptions(
            scales=tuple(args.scales), patch_size=args.patch_size, stride=args.stride, min_std=args.min_std,
            max_patches_per_frame=args.max_patches_per_frame, dihedral=args.dihedral, residual=args.residual,
            seed=args.seed,
        )
    except ValueError as e:
        raise PatchJobError(str(e)) from None


def build_pipeline(p: beam.Pipeline, sources: List[Dict], patch_options: PatchOptions, staging: str, args,
                   progress_dir: Optional[str] = None):
    """Wire the job into ``p``: sources -> patch pairs -> sharded TFRecords + statuses."""
    out = (
        p
        | "Sources" >> beam.Create(sources)
        | "MediaToPatchPairs" >> MediaToPatchPairs(patch_options, args.frame_stride, args.max_frames, progress_dir)
    )
    for split in SPLITS:
        write_split(out[split], join(staging, f"Split-{split}", RECORD_PREFIX), split.title())
    (
        out[STATUS_TAG]
        | "StatusToJson" >> beam.Map(lambda st: json.dumps(st, sort_keys=True))
        | "WriteStatuses" >> beam.io.WriteToText(join(staging, "status", "status"), file_name_suffix=".jsonl")
    )
    return out


class _Progress:
    """Local runs: a line of sources done, pairs written, rate and ETA from the workers' marker files."""

    def __init__(self, folder: str, total_sources: int, stream=sys.stderr):
        self.folder, self.total, self.stream = folder, total_sources, stream
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.perf_counter()
        self._tty = stream.isatty()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._print(final=True)

    def _read(self):
        done = pairs = failed = 0
        for name in os.listdir(self.folder):
            if name.startswith("."):
                continue
            try:
                with open(os.path.join(self.folder, name)) as f:
                    d = json.load(f)
            except (OSError, ValueError):
                continue
            done += 1
            pairs += d["pairs"]
            failed += d["status"] != "ok"
        return done, pairs, failed

    def _print(self, final=False):
        done, pairs, failed = self._read()
        dt = time.perf_counter() - self._t0
        rate = pairs / dt if dt > 0 else 0.0
        eta = (dt / done * (self.total - done)) if done else float("nan")
        eta_s = "--:--" if eta != eta else f"{int(eta) // 60}:{int(eta) % 60:02d}"
        line = (f"[patches] sources {done}/{self.total} ({failed} failed)  pairs {pairs:,}  "
                f"{rate:,.0f} pairs/s  elapsed {dt:.0f}s  ETA {eta_s}")
        end = "\n" if final or not self._tty else ""
        self.stream.write(("\r" if self._tty else "") + line + end)
        self.stream.flush()

    def _loop(self):
        interval = 1.0 if self._tty else 10.0
        while not self._stop.wait(interval):
            self._print()


def _read_statuses(staging: str) -> List[Dict]:
    statuses = []
    for m in FileSystems.match([join(staging, "status", "status*")])[0].metadata_list:
        with FileSystems.open(m.path) as f:
            for line in f.read().decode().splitlines():
                if line.strip():
                    statuses.append(json.loads(line))
    return sorted(statuses, key=lambda s: s["source"])


def _counts(statuses: List[Dict]) -> Dict:
    by = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    by_split = defaultdict(int)
    for st in statuses:
        by_split[st["split"]] += st["pairs"]
        for scale, n in st["pairs_by_scale"].items():
            if n:
                by[st["dataset"]][st["split"]][scale] += n
    return {
        "pairs": sum(st["pairs"] for st in statuses),
        "pairs_by_split": {s: by_split.get(s, 0) for s in SPLITS},
        "pairs_by_dataset_split_scale": {d: {sp: dict(v) for sp, v in sv.items()} for d, sv in sorted(by.items())},
        "sources": {
            "total": len(statuses),
            "ok": sum(st["status"] == "ok" for st in statuses),
            "failed": sum(st["status"] != "ok" for st in statuses),
        },
        "frames": sum(st["frames"] for st in statuses),
        "megapixels": round(sum(st["megapixels"] for st in statuses), 3),
    }


def _write_text(path: str, text: str) -> None:
    with FileSystems.create(path, mime_type="application/json", compression_type="uncompressed") as f:
        f.write(text.encode())


def _delete_tree(path: str) -> None:
    """Remove a folder (local) or every object under a prefix (gs://...; '/*' would not recurse)."""
    try:
        if "://" in path:
            files = [m.path for m in FileSystems.match([path.rstrip("/") + "/**"])[0].metadata_list]
            if files:
                FileSystems.delete(files)
        elif os.path.isdir(path):
            shutil.rmtree(path)
    except Exception:  # noqa: BLE001 - best effort cleanup of the staging area
        log.warning("could not remove %s", path, exc_info=True)


def _finalize(output: str, staging: str, statuses: List[Dict], manifest_base: Dict, overwrite: bool) -> Dict:
    counts = _counts(statuses)
    files = {}
    for split in SPLITS:
        staged = sorted(m.path for m in FileSystems.match([join(staging, f"Split-{split}", "*")])[0].metadata_list)
        final_dir = join(output, f"Split-{split}")
        if overwrite:
            old = FileSystems.match([join(final_dir, "*")])[0].metadata_list
            if old:
                FileSystems.delete([m.path for m in old])
        if "://" not in final_dir:
            os.makedirs(final_dir, exist_ok=True)
        dest = [join(final_dir, p.rsplit("/", 1)[-1]) for p in staged]
        if staged:
            FileSystems.rename(staged, dest)
        files[split] = [d.rsplit("/", 1)[-1] for d in dest]
    dead = [st for st in statuses if st["status"] != "ok"]
    _write_text(join(output, DEAD_LETTER), "".join(
        json.dumps({"source": d["source"], "path": d["path"], "kind": d["kind"], "reason": d["reason"]}) + "\n" for d in dead))
    manifest = dict(manifest_base)
    manifest.update(counts=counts, files=files, dead_letter=DEAD_LETTER, inputs=statuses,
                    finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    _write_text(join(output, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True))
    _delete_tree(staging)
    return manifest


def run(argv: Optional[List[str]] = None, save_main_session: bool = False) -> Dict:
    """Run the job; returns the manifest. Raises PatchJobError with a readable message."""
    args, beam_argv = build_parser().parse_known_args(argv)
    patch_options = _validate(args)
    opts = pipeline_options(args, beam_argv)
    FileSystems.set_options(opts)
    output = args.output.rstrip("/") or args.output
    if FileSystems.exists(join(output, MANIFEST)) and not args.overwrite:
        raise PatchJobError(f"{output} already holds a finished dataset ({MANIFEST}); use another --output or --overwrite")
    fs = BeamFS()
    try:
        sources = discover(args.input, fs=fs, official_lr=args.official_lr, scales=patch_options.scales)
        sources = assign_splits(sources, args.eval_fraction)
    except ValueError as e:
        raise PatchJobError(str(e)) from None
    if not sources:
        raise PatchJobError("no inputs found")
    run_id = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    staging = join(output, f".staging-{run_id}")
    local = args.runner in ("DirectRunner", "direct")
    progress_dir = None
    if local and not args.no_progress:
        import tempfile

        progress_dir = tempfile.mkdtemp(prefix="imagesr-progress-")
    log.info("patch job %s: %d sources, runner %s, staging %s", run_id, len(sources), args.runner, staging)
    manifest_base = {
        "version": 1, "run_id": run_id, "output": output, "inputs_given": args.input,
        "options": dict(patch_options.to_json(), eval_fraction=args.eval_fraction, frame_stride=args.frame_stride,
                        max_frames=args.max_frames, official_lr=args.official_lr, runner=args.runner),
        "record_format": {"files": f"Split-<split>/{RECORD_PREFIX}-*.gz", "compression": "GZIP",
                          "schema": "schemas/schema.pbtxt"},
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    source_json = [s.to_json() for s in sources]
    try:
        p = beam.Pipeline(options=opts)
        build_pipeline(p, source_json, patch_options, staging, args, progress_dir)
        if progress_dir:
            with _Progress(progress_dir, len(sources)):
                p.run().wait_until_finish()
        else:
            result = p.run()
            if opts.view_as(TestOptions).dry_run:  # job description built, nothing submitted
                return {"dry_run": True, "job": getattr(result, "job", None), "pipeline": p}
            result.wait_until_finish()
        statuses = _read_statuses(staging)
        if len(statuses) != len(sources):
            raise PatchJobError(f"internal: {len(sources)} sources but {len(statuses)} statuses")
        if sum(st["pairs"] for st in statuses) == 0:
            reasons = "; ".join(f"{st['source']}: {st['reason']}" for st in statuses[:10])
            more = f" (and {len(statuses) - 10} more)" if len(statuses) > 10 else ""
            raise PatchJobError(f"no valid input: all {len(statuses)} inputs failed: {reasons}{more}")
        manifest = _finalize(output, staging, statuses, manifest_base, args.overwrite)
    except BaseException:
        _delete_tree(staging)
        raise
    finally:
        if progress_dir:
            shutil.rmtree(progress_dir, ignore_errors=True)
    c = manifest["counts"]
    log.info("patch job %s: %d pairs (%s), %d/%d sources ok", run_id, c["pairs"], c["pairs_by_split"],
             c["sources"]["ok"], c["sources"]["total"])
    return manifest


def count_records(output: str) -> Dict:
    """Count the records in a dataset's TFRecords themselves (local or gs://), per split,
    next to what its manifest says."""
    from imagesr.records import iter_tfrecord

    counts = {}
    for split in SPLITS:
        n = 0
        for m in FileSystems.match([join(output, f"Split-{split}", "*")])[0].metadata_list:
            with FileSystems.open(m.path) as f:  # gzip detected from the name
                n += sum(1 for _ in iter_tfrecord(f))
        counts[split] = n
    manifest = None
    if FileSystems.exists(join(output, MANIFEST)):
        with FileSystems.open(join(output, MANIFEST), compression_type="uncompressed") as f:
            manifest = json.loads(f.read().decode())["counts"]["pairs_by_split"]
    return {"output": output, "records": counts, "total": sum(counts.values()), "manifest": manifest,
            "match": manifest == counts if manifest is not None else None}


def quiet_beam_logs() -> None:
    """The multi-process DirectRunner relays every worker's INFO lines; keep warnings only."""
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    # Worker log lines relayed by the local job service (option-parsing chatter at WARN).
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_beam_logs()
    try:
        manifest = run(argv)
    except PatchJobError as e:
        print(f"imagesr patches: error: {e}", file=sys.stderr)
        return 2
    if manifest.get("dry_run"):
        print("dry run: job built, not submitted")
        return 0
    c = manifest["counts"]
    print(f"pairs: {c['pairs']:,} (train {c['pairs_by_split']['train']:,}, eval {c['pairs_by_split']['eval']:,}); "
          f"sources: {c['sources']['ok']} ok, {c['sources']['failed']} failed (see {DEAD_LETTER})")
    print(f"manifest: {join(manifest['output'], MANIFEST)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
