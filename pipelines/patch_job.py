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

from imagesr.components.beam.patch_dataset import (
    PatchDatasetError,
    build_pipeline,
    claim_output,
    produce_dataset,
)
from imagesr.components.beam.patch_transform import BeamFS
from imagesr.core.dataset import RECORD_PREFIX, split_name
from imagesr.core.patches import JOB_DESCRIPTION, JobOptions, PatchOptions, add_job_arguments
from imagesr.core.sources import assign_splits, discover, join

log = logging.getLogger(__name__)

PatchJobError = PatchDatasetError  # the CLI's name for it


def build_parser() -> argparse.ArgumentParser:
    """The job's flags as ``imagesr patches`` has them (declared once: :func:`add_job_arguments`)."""
    p = argparse.ArgumentParser(prog="imagesr patches", description=JOB_DESCRIPTION)
    add_job_arguments(p)
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
    """Run the job from its command-line flags (Beam's among them); returns the manifest."""
    args, beam_argv = build_parser().parse_known_args(argv)
    return run_parsed(args, beam_argv)


def run_parsed(args, beam_argv: Sequence[str]) -> Dict:
    """Run the job from parsed flags (``imagesr patches``) and Beam's own; returns the manifest.
    Raises PatchJobError (a UserError) with a readable message."""
    patch_options = _validate(args)
    opts = pipeline_options(args, beam_argv)
    unknown = sorted(set(opts.get_all_options(retain_unknown_options=True)) - set(opts.get_all_options()))
    if unknown:  # Beam would only log that it discards them: a typo would pass unnoticed
        raise PatchJobError("unrecognized arguments (neither flags of imagesr patches nor Beam pipeline options): "
                            + " ".join(f"--{u}" for u in unknown))
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
        "record_format": {"files": f"{split_name('<split>')}/{RECORD_PREFIX}-*.gz", "compression": "GZIP",
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
