"""The Beam patch-pair job: media (folders, DAVIS, videos; local or gs://) -> TFRecords.

    imagesr patches --input DIR_OR_GLOB [--input ...] --output DIR_OR_GS [--scales 2 3 4]
        [--patch-size 48] [--stride 24] [--residual] [--eval-fraction 0.05] [--runner ...]
        [any Beam pipeline option: --project, --region, --temp_location, ...]

The output layout, staging and manifest are those of ``imagesr.components.beam.patch_dataset`` (shared
with the TFX patch ExampleGen); this module parses the command line, configures the runner
(multi-process DirectRunner by default, Dataflow when asked) and discovers the sources.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import uuid
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

from imagesr.components.beam.patch_dataset import (  # noqa: F401  (re-exported for callers of the job)
    DEAD_LETTER,
    MANIFEST,
    RECORD_PREFIX,
    PatchDatasetError,
    build_pipeline,
    claim_output,
    count_records,
    produce_dataset,
)
from imagesr.components.beam.patch_transform import BeamFS
from imagesr.core.errors import sigterm_as_interrupt
from imagesr.core.media import MAX_MEGAPIXELS
from imagesr.core.patches import DIHEDRAL_MODES, JobOptions, PatchOptions
from imagesr.core.scale import scale_argument as scale_arg
from imagesr.core.sources import assign_splits, discover, join

log = logging.getLogger(__name__)

PatchJobError = PatchDatasetError  # the CLI's name for it


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imagesr patches",
        description="Turn images, DAVIS frame folders and videos into LR/HR patch-pair TFRecords with Apache Beam. "
        "Unrecognised flags are Beam pipeline options (e.g. --project, --region, --temp_location, "
        "--max_num_workers, --machine_type for --runner DataflowRunner).",
    )
    p.add_argument("--input", action="append", required=True, help="file, folder or glob; local or gs://; repeatable")
    p.add_argument("--output", required=True, help="output folder, local or gs://")
    p.add_argument("--scales", type=scale_arg, nargs="+", default=[2, 3, 4], help="SR scales (default 2 3 4; 1.5 allowed)")
    p.add_argument("--patch-size", type=int, default=48, help="HR patch side in pixels (default 48)")
    p.add_argument("--stride", type=int, default=24, help="HR patch grid step (default 24)")
    p.add_argument("--min-std", type=float, default=4.0, help="drop patches whose HR luma std is below this (default 4)")
    p.add_argument("--max-patches-per-frame", type=int, default=0, help="cap per frame and scale, 0 = none")
    p.add_argument("--dihedral", choices=DIHEDRAL_MODES, default="none", help="dihedral augmentation (default none)")
    p.add_argument("--residual", action="store_true", help="also store HR - bicubic_up(LR) (int16)")
    p.add_argument("--degradation", choices=["clean", "realistic", "mixed"], default="clean",
                   help="how LR is made: clean (MATLAB bicubic, default), realistic (per source, seeded: ffmpeg or "
                        "MATLAB kernel, slight blur/noise, JPEG or H.264 over the frames as a sequence), or "
                        "mixed (half of the sources each)")
    p.add_argument("--eval-fraction", type=float, default=0.05, help="share of sources in the eval split (default 0.05)")
    p.add_argument("--frame-stride", type=int, default=5, help="use every k-th frame of videos and sequences (default 5)")
    p.add_argument("--max-frames", type=int, default=None, help="at most this many frames per video/sequence")
    p.add_argument("--official-lr", action="store_true", help="use DIV2K's LR_bicubic images when present")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS, metavar="MP",
                   help=f"pixel budget of a source's frames: a source whose frames are larger is dead-lettered before "
                        f"it is decoded (default {MAX_MEGAPIXELS:g}: 8K UHD fits)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished dataset already in --output")
    p.add_argument("--runner", default="DirectRunner", help="DirectRunner (default) or DataflowRunner, ...")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="local worker processes (default and at most: the CPU cores, and no more than the sources)")
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
            setup.setup_file = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "setup.py")
        gco = opts.view_as(GoogleCloudOptions)
        if not gco.job_name:
            gco.job_name = "imagesr-patches-" + datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")
    return opts


def cap_workers(opts: PipelineOptions, sources: int) -> Optional[str]:
    """Local runs: at most one worker process per CPU core and per source (more only cost
    start-up time and memory: 16 workers for 3 images were 6x slower than 1, and 1000 hung).
    Returns the note to print when the number asked for (``--workers`` or Beam's
    ``--direct_num_workers``) was lowered."""
    direct = opts.view_as(DirectOptions)
    cores = os.cpu_count() or 1
    asked = direct.direct_num_workers or cores  # Beam's 0: as many as cores
    useful = max(1, min(asked, cores, sources))
    direct.direct_num_workers = useful
    if asked > useful:
        return (f"{asked} worker processes asked for, {useful} used (at most one per CPU core: {cores}, and per "
                f"source: {sources})")
    return None


def _validate(args) -> PatchOptions:
    try:
        JobOptions(eval_fraction=args.eval_fraction, frame_stride=args.frame_stride, max_frames=args.max_frames,
                   official_lr=args.official_lr)
        return PatchOptions(
            scales=tuple(args.scales), patch_size=args.patch_size, stride=args.stride, min_std=args.min_std,
            max_patches_per_frame=args.max_patches_per_frame, dihedral=args.dihedral, residual=args.residual,
            seed=args.seed, degradation=args.degradation, max_megapixels=args.max_megapixels,
        )
    except ValueError as e:
        raise PatchJobError(str(e)) from None


def run(argv: Optional[List[str]] = None) -> Dict:
    """Run the job; returns the manifest. Raises PatchJobError with a readable message."""
    args, beam_argv = build_parser().parse_known_args(argv)
    patch_options = _validate(args)
    opts = pipeline_options(args, beam_argv)
    FileSystems.set_options(opts)
    output = args.output.rstrip("/") or args.output
    fs = BeamFS()
    duplicates: List[str] = []
    try:
        sources = discover(args.input, fs=fs, official_lr=args.official_lr, scales=patch_options.scales,
                           duplicates=duplicates)
        sources = assign_splits(sources, args.eval_fraction)
    except ValueError as e:
        raise PatchJobError(str(e)) from None
    if not sources:
        raise PatchJobError("no inputs found")
    if duplicates:
        log.warning("%d input files given more than once were taken once (e.g. %s)", len(duplicates), duplicates[0])
    run_id = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    local = args.runner in ("DirectRunner", "direct")
    workers = None
    if local:
        note = cap_workers(opts, sum(s.kind != "invalid" for s in sources))
        if note:
            log.warning("%s", note)
        workers = opts.view_as(DirectOptions).direct_num_workers
    log.info("patch job %s: %d sources, runner %s, output %s", run_id, len(sources), args.runner, output)
    manifest_base = {
        "version": 1, "run_id": run_id, "output": output, "inputs_given": args.input,
        "inputs_given_twice": len(duplicates),
        "options": dict(patch_options.to_json(), eval_fraction=args.eval_fraction, frame_stride=args.frame_stride,
                        max_frames=args.max_frames, official_lr=args.official_lr, runner=args.runner,
                        workers=workers),
        "record_format": {"files": f"Split-<split>/{RECORD_PREFIX}-*.gz", "compression": "GZIP",
                          "schema": "schemas/schema.pbtxt"},
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    source_json = [s.to_json() for s in sources]
    if opts.view_as(TestOptions).dry_run:  # build the job description, submit nothing
        p = beam.Pipeline(options=opts)
        build_pipeline(p, source_json, patch_options, join(output, f".staging-{run_id}"), args.frame_stride, args.max_frames)
        return {"dry_run": True, "job": getattr(p.run(), "job", None), "pipeline": p}
    with claim_output(output, args.overwrite):
        manifest = produce_dataset(lambda: beam.Pipeline(options=opts), source_json, patch_options, output, manifest_base, args.frame_stride,
                                   args.max_frames, args.overwrite, progress=local and not args.no_progress,
                                   require_eval=args.eval_fraction > 0)
    c = manifest["counts"]
    log.info("patch job %s: %d pairs (%s), %d/%d sources ok", run_id, c["pairs"], c["pairs_by_split"],
             c["sources"]["ok"], c["sources"]["total"])
    return manifest


def quiet_beam_logs() -> None:
    """The multi-process DirectRunner relays every worker's INFO lines; keep warnings only."""
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    # Worker log lines relayed by the local job service (option-parsing chatter at WARN; a failed
    # bundle at ERROR, which the driver's own error reports again: see quiet_worker_stderr).
    from imagesr.core.logs import QUIET_WORKERS

    level = logging.CRITICAL if os.environ.get(QUIET_WORKERS) else logging.ERROR
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(level)


def main(argv: Optional[List[str]] = None) -> int:
    from imagesr.core.logs import configure_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in argv)
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    configure_logging(verbose=verbose)
    quiet_beam_logs()
    try:
        with sigterm_as_interrupt():  # like Ctrl-C: the staged records are removed
            manifest = run(argv)
    except PatchJobError as e:
        print(f"imagesr patches: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imagesr patches: interrupted (nothing written; the staged records were removed)", file=sys.stderr)
        return 130
    if manifest.get("dry_run"):
        print("dry run: job built, not submitted")
        return 0
    c = manifest["counts"]
    print(f"pairs: {c['pairs']:,} (train {c['pairs_by_split']['train']:,}, eval {c['pairs_by_split']['eval']:,}); "
          f"sources: {c['sources']['ok']} ok, {c['sources']['partial']} partial, {c['sources']['failed']} failed "
          f"(see {DEAD_LETTER})")
    families = c.get("pairs_by_degradation_family", {})
    if set(families) - {"clean"}:
        print("degradations: " + ", ".join(f"{k} {n:,}" for k, n in families.items()))
    print(f"manifest: {join(manifest['output'], MANIFEST)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
