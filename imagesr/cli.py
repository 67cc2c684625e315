"""The ``imagesr`` command line. Heavy layers (Beam, TensorFlow, TFX) load lazily per command,
so ``imagesr --help`` is instant; each command's implementation lives with its concept."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from typing import List, Optional

from imagesr.core import patches, strict_json
from imagesr.core.errors import Terminated, UserError, disk_full, sigterm_as_interrupt
from imagesr.core.flags import field_defaults, positive_float
from imagesr.core.logs import configure_logging
from imagesr.core.outputs import remove_claimed
from imagesr.core.scale import scale_argument as scale_arg


class UsageError(UserError):
    """Bad flags or inputs: printed as one line, exit status 2."""


def _degradation(text: str):
    """--degradation NAME as the one Degradation type (imagesr.core.degrade)."""
    from imagesr.core import degrade

    return degrade.check_available(degrade.parse(text))


def _max_megapixels_argument(parser, what: str = "an image") -> None:
    from imagesr.core.media.files import MAX_MEGAPIXELS

    parser.add_argument("--max-megapixels", type=positive_float, default=MAX_MEGAPIXELS, metavar="MP",
                        help=f"refuse {what} larger than this many megapixels before decoding it (default "
                             f"{MAX_MEGAPIXELS:g}: 8K UHD fits)")


# --------------------------------------------------------------------------- bench


def _cmd_bench_bicubic(args) -> int:
    from imagesr.core import evaluation

    t0 = time.perf_counter()
    progress = (lambda msg: print(f"  {msg}", file=sys.stderr)) if args.verbose else None
    results = evaluation.evaluate_folder(args.dataset, args.scales, evaluation.bicubic_upscaler, progress,
                                         max_megapixels=args.max_megapixels)
    if args.json:
        print(strict_json.dumps(evaluation.results_json(args.dataset, results, model="bicubic", parameters=0)))
    else:
        print(evaluation.format_table(results, f"bicubic on {args.dataset}"))
        print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


# --------------------------------------------------------------------------- patches


def _cmd_patches(args) -> int:
    from imagesr.core.dataset import DEAD_LETTER, manifest_path
    from imagesr.pipelines.patch_job import quiet_beam_logs, run_parsed

    quiet_beam_logs()
    manifest = run_parsed(args, args.beam_argv)
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
    print(f"manifest: {manifest_path(manifest['output'])}")
    return 0


def _cmd_records_count(args) -> int:
    from imagesr.core.dataset import DatasetError, count_records

    try:
        out = count_records(args.dataset)
    except DatasetError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(strict_json.dumps(out))
    else:
        print(f"{out['dataset'] if 'dataset' in out else args.dataset}: {out['total']:,} records "
              f"(train {out['records']['train']:,}, eval {out['records']['eval']:,}); manifest "
              + ("absent" if out["manifest"] is None else ("matches" if out["match"] else f"says {out['manifest']}")))
    return 0 if out["match"] is not False else 1


# --------------------------------------------------------------------------- train / evaluate


def _cmd_train(args) -> int:
    from imagesr.core import shipped
    from imagesr.core.dataset import record_files, staged_locally
    from imagesr.core.outputs import folder_output
    from imagesr.training.serving import MODEL_FOLDER
    from imagesr.training.trainer import TrainConfig, train

    try:
        model_args = json.loads(args.model_args) if args.model_args else {}
    except ValueError as e:
        raise UsageError(f"--model-args {args.model_args!r} is not JSON ({e})") from None
    config = TrainConfig(
        model=args.model, scales=tuple(args.scales), batch_size=args.batch_size, crop=args.crop, steps=args.steps,
        learning_rate=args.learning_rate, schedule=args.schedule, loss=args.loss, mixed_precision=args.mixed_precision,
        model_args=model_args, log_every=args.log_every, seed=args.seed,
        warm_start=shipped.resolve(args.warm_start) if args.warm_start else None,
        time_budget_s=args.time_budget_s, in_memory=args.in_memory,
    )
    with tempfile.TemporaryDirectory(prefix="imagesr-records-") as records:  # gs:// records read from here
        train_files = staged_locally(record_files(args.examples, "train"), os.path.join(records, "train"))
        eval_files = [] if args.no_eval else _eval_files(args.examples, os.path.join(records, "eval"))
        with folder_output(args.out, args.overwrite, MODEL_FOLDER, "model folder") as staging:
            summary = train(config, train_files, eval_files, staging)
    summary["exported"] = {k: os.path.join(os.path.abspath(args.out), v) for k, v in summary["exported"].items()}
    print(strict_json.dumps({k: summary.get(k) for k in ("parameters", "steps", "steps_per_second", "final_loss",
                                                   "eval_psnr_y", "eval_psnr_y_bicubic", "exported")}, indent=1))
    return 0


def _eval_files(examples: str, folder: str) -> List[str]:
    """The eval split's record files (local, or copied into ``folder`` from gs://), or one line
    that points at --no-eval when there are none."""
    from imagesr.core.dataset import DatasetError, record_files, staged_locally
    from imagesr.training.data import has_records

    try:
        files = staged_locally(record_files(examples, "eval"), folder)
        empty = not has_records(files)
    except DatasetError as e:
        raise UsageError(f"{e}; to train without evaluating on an eval split, pass --no-eval") from None
    if empty:
        raise UsageError(f"{examples}: the eval split holds no records; to train without evaluating on an eval "
                         "split, pass --no-eval")
    return files


def _cmd_evaluate(args) -> int:
    from imagesr.core import evaluation, shipped
    from imagesr.training.serving import load_upscaler

    degradation = _degradation(args.degradation)
    up = load_upscaler(shipped.resolve(args.model))
    scales = args.scales or ([up.scale] if up.scale else [2, 3, 4])
    for s in scales:
        if not up.supports(s):
            raise UsageError(f"{args.model} is a x{up.scale:g} model; it cannot be evaluated at x{s:g}")
    t0 = time.perf_counter()
    results = evaluation.evaluate_folder(args.dataset, scales, up.evaluation_upscaler, degradation=degradation,
                                         max_megapixels=args.max_megapixels)
    if args.json:
        print(strict_json.dumps(evaluation.results_json(args.dataset, results, model=args.model, kind=up.kind,
                                                        parameters=up.parameters, degradation=degradation.name)))
    else:
        print(evaluation.format_table(results, f"{up.kind} ({up.parameters:,} parameters) on {args.dataset}"))
        print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_models(args) -> int:
    from imagesr.core import shipped

    models = shipped.list_models()
    if args.json:
        print(strict_json.dumps([{"name": m.name, "kind": m.kind, "scales": list(m.scales), "parameters": m.parameters,
                           "figures": m.figures, "trained": m.trained, "path": m.path} for m in models]))
    else:
        print(shipped.table(models))
        print(f"(default: {shipped.DEFAULT}; --model NAME picks one; upscale --scale S picks the one trained for S)")
    return 0




# --------------------------------------------------------------------------- upscale


def _cmd_upscale(args) -> int:
    from imagesr.upscale import upscale
    from imagesr.upscale.batch import is_batch, upscale_folder

    options = dict(model=args.model, size=args.size, scale=args.scale, batch=args.batch, tile=args.tile,
                   fps=args.fps, preset=args.preset, codec=args.codec, crf=args.crf, pix_fmt=args.pix_fmt,
                   format=args.format, realtime=args.realtime, resume=args.resume,
                   segment_seconds=args.segment_seconds, max_megapixels=args.max_megapixels, quality=args.quality)
    if is_batch(args.input):
        return upscale_folder(args.input, args.output, **options)
    result = upscale(args.input, args.output, **options)
    # with -o - the video is on standard output: the summary goes to standard error
    print(result.summary(), file=sys.stderr if args.output == "-" else sys.stdout)
    return 0


# --------------------------------------------------------------------------- samples / demo


def _cmd_samples(args) -> int:
    from imagesr.core import samples

    paths = samples.materialize(args.dest)
    print(strict_json.dumps(paths, indent=2))
    return 0


def _cmd_demo(args) -> int:
    """The README's main command: the whole TFX pipeline on built-in sample data, no network."""
    from imagesr.pipelines.commands import demo
    from imagesr.pipelines.patch_job import quiet_beam_logs

    quiet_beam_logs()
    return demo(args.workdir)


# --------------------------------------------------------------------------- parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagesr")
    except PackageNotFoundError:  # a source checkout that was not installed
        return "(not installed)"


def _command_parser(parser: argparse.ArgumentParser, command: Optional[str]) -> argparse.ArgumentParser:
    """The parser of ``command`` (``imagesr runs`` alone prints the actions of runs), or ``parser``."""
    for action in parser._actions:  # argparse keeps its sub-parsers only there
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def build_parser() -> argparse.ArgumentParser:
    from imagesr.training.trainer import TrainConfig

    p = argparse.ArgumentParser(
        prog="imagesr",
        description="Image super-resolution data and model system (patch pairs, training, evaluation, upscaling).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"imagesr {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    bench = sub.add_parser("bench", help="baseline benchmarks on a folder of HR images")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BASELINE")
    bb = bench_sub.add_parser("bicubic", help="MATLAB-bicubic Y-PSNR/SSIM per scale")
    bb.add_argument("--dataset", required=True, help="folder of HR images (e.g. Set5/HR)")
    bb.add_argument("--scales", type=scale_arg, nargs="+", default=[2, 3, 4], help="scales (default 2 3 4)")
    bb.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _max_megapixels_argument(bb)
    bb.set_defaults(func=_cmd_bench_bicubic)

    pa = sub.add_parser("patches", help="Beam job: media -> LR/HR patch-pair TFRecords (flags it does not know are "
                        "Beam pipeline options)", description=patches.JOB_DESCRIPTION)
    patches.add_job_arguments(pa)
    pa.set_defaults(func=_cmd_patches, beam_options=True)

    tc = field_defaults(TrainConfig)
    t = sub.add_parser("train", help="train an SR model on patch-pair TFRecords")
    t.add_argument("--examples", required=True, help="output folder of imagesr patches (Split-train/, Split-eval/)")
    t.add_argument("--model", default=tc.model,
                   help="architecture: vdsr (one model for every scale), subpixel or span (one scale each; span: "
                        f"SPAN's blocks, re-parameterised convolutions folded at export); default {tc.model}")
    t.add_argument("--scales", type=scale_arg, nargs="+", default=list(tc.scales), help="scales to train on (subpixel: one)")
    t.add_argument("--steps", type=int, default=tc.steps)
    t.add_argument("--out", required=True, help="run folder: model.keras, saved_model/, logs/, train_summary.json "
                                                "(a new or empty folder)")
    t.add_argument("--overwrite", action="store_true", help="replace the model folder already in --out (the whole "
                                                            "folder: an old card does not stay beside the new model)")
    t.add_argument("--batch-size", type=int, default=tc.batch_size)
    t.add_argument("--crop", type=int, default=None, help="HR crop of the stored patches")
    t.add_argument("--learning-rate", type=positive_float, default=tc.learning_rate)
    t.add_argument("--schedule", choices=["cosine", "constant"], default=tc.schedule)
    t.add_argument("--loss", choices=["l1", "l2"], default=tc.loss)
    t.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute")
    t.add_argument("--model-args", default=None, help='JSON, e.g. \'{"depth": 20, "width": 64}\'')
    t.add_argument("--log-every", type=int, default=tc.log_every)
    t.add_argument("--seed", type=int, default=tc.seed)
    t.add_argument("--warm-start", default=None, help="a shipped model's name, a model dir or a .keras file to start from")
    t.add_argument("--no-eval", action="store_true", help="skip PSNR on the eval split")
    t.add_argument("--time-budget-s", type=positive_float, default=None,
                   help="train as many steps as fit in this many seconds (--steps caps), the learning rate annealed in time")
    t.add_argument("--in-memory", action="store_true",
                   help="load all pairs into memory first (parsed in parallel; keeps a GPU fed)")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="Y-PSNR/SSIM of a trained model on a folder of HR images")
    e.add_argument("--model", required=True, help="a shipped model's name (imagesr models), model dir, .keras file, or 'bicubic'")
    e.add_argument("--dataset", required=True, help="folder of HR images")
    e.add_argument("--scales", type=scale_arg, nargs="+", default=None, help="default: the model's scale, or 2 3 4")
    e.add_argument("--degradation", default="clean", metavar="NAME",
                   help="make the LR through this degradation instead of the MATLAB bicubic: e.g. "
                        "'h264-crf23+bicubic' (real video: ffmpeg's bicubic, then H.264 CRF 23), 'jpeg-q75+area', "
                        "'h265-crf28+lanczos' (where ffmpeg has libx265)")
    e.add_argument("--json", action="store_true")
    _max_megapixels_argument(e)
    e.set_defaults(func=_cmd_evaluate)

    ms = sub.add_parser("models", help="the models that ship with imagesr: scale, parameters, Set5/Set14 figures")
    ms.add_argument("action", nargs="?", choices=["list"], default="list")
    ms.add_argument("--json", action="store_true")
    ms.set_defaults(func=_cmd_models)

    rec = sub.add_parser("records", help="inspect patch-pair TFRecords")
    rec_sub = rec.add_subparsers(dest="records_command", metavar="ACTION")
    rc = rec_sub.add_parser("count", help="count records per split from the files, check against the manifest")
    rc.add_argument("dataset", help="output folder of imagesr patches (local or gs://)")
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=_cmd_records_count)

    u = sub.add_parser("upscale", help="upscale a video, stream, frame folder or image with a model (decode, inference "
                                       "and encode overlap)")
    u.add_argument("input", help="a video file, '-' (standard input), a URL ffmpeg opens (udp://, srt://, rtmp://, "
                                 "rtsp://, http(s):// incl. HLS), a capture device (/dev/video0), a folder of frames, "
                                 "an image or animated GIF/WebP, or a folder of videos (batch)")
    u.add_argument("-o", "--output", required=True,
                   help="a video (.mp4, .mkv, ...: input frame rate, audio/subtitles/chapters carried), '-' "
                        "(standard output), a URL (udp://, srt://, rtmp://...), a folder (PNG per frame; for a "
                        "folder of videos: the videos) or an image")
    u.add_argument("--model", default=None,
                   help="a shipped model's name (imagesr models), a model folder (model.keras), a .keras file or "
                        "'bicubic' (default: the shipped model trained for --scale, else subpixel_x1.5)")
    u.add_argument("--size", default=None, help="output WIDTHxHEIGHT, e.g. 1920x1080 (default: 1.5x the input)")
    u.add_argument("--scale", type=positive_float, default=None, help="output = SCALE x the input (instead of --size)")
    u.add_argument("--batch", type=int, default=4, help="frames per model call (default 4)")
    u.add_argument("--tile", type=int, default=None,
                   help="run the network on N px tiles with overlap (frames too large for memory)")
    u.add_argument("--fps", type=positive_float, default=None, help="frame rate of a video made from frames (default 25)")
    u.add_argument("--preset", default=None,
                   help="encoder preset: ultrafast ... veryslow for libx264/libx265 (default veryfast; faster ones "
                        "keep up on few cores, files grow), the encoder's own names otherwise")
    u.add_argument("--codec", default="libx264",
                   help="video encoder of your ffmpeg: libx264 (default), libx265, libsvtav1, h264_nvenc, ... "
                        "(ffmpeg -encoders)")
    u.add_argument("--crf", type=int, default=None, help="constant quality (default 18 for libx264/libx265; lower "
                                                         "is better and larger)")
    u.add_argument("--pix-fmt", default=None,
                   help="output pixel format, e.g. yuv420p (8-bit) or yuv420p10le (10-bit; the default for 10-bit "
                        "input)")
    u.add_argument("--format", default=None,
                   help="container (ffmpeg muxer): default by the output's extension; mpegts for '-' and network "
                        "URLs (nut, matroska, flv, ...)")
    u.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                   help="pace to the input's clock and drop frames (counted) rather than fall behind; reports "
                        "latency (default: on for live sources, off for files and pipes)")
    u.add_argument("--resume", action="store_true",
                   help="write a file in keyframe-aligned segments; run the same command again after an "
                        "interruption to continue after the last complete segment")
    u.add_argument("--segment-seconds", type=positive_float, default=10.0,
                   help="length of a --resume segment, at least (default 10; cut at the next keyframe)")
    u.add_argument("--quality", type=int, default=None, metavar="Q",
                   help="quality of a .jpg or .webp image output, 1-100 (default 95)")
    _max_megapixels_argument(u, "an input frame")
    u.set_defaults(func=_cmd_upscale)

    from imagesr.pipelines.commands import (
        add_parsers as add_pipeline_parsers,  # argparse only; TFX loads per command
    )

    add_pipeline_parsers(sub)

    s = sub.add_parser("samples", help="write the built-in sample images and clips")
    s.add_argument("--dest", default=None, help="folder (default $IMAGESR_CACHE/samples or ~/.cache/imagesr/samples)")
    s.set_defaults(func=_cmd_samples)

    d = sub.add_parser("demo", help="run the main job on built-in sample data")
    d.add_argument("--workdir", default=None, help="where outputs go (default ~/.cache/imagesr/demo)")
    d.set_defaults(func=_cmd_demo)
    return p


# The optional dependencies by the extra that installs them (pyproject.toml).
EXTRA_OF_MODULE = {"tensorflow": "tf", "jax": "jax", "apache_beam": "pipeline", "tfx": "pipeline",
                   "tfx_bsl": "pipeline", "ml_metadata": "pipeline", "tensorflow_data_validation": "pipeline",
                   "kfp": "pipeline", "yaml": "pipeline", "google": "gcs"}


def _missing_extra(error: ModuleNotFoundError, command: str) -> int:
    """A command that needs a dependency this install lacks: which extra brings it, one line,
    exit 2. A module imagesr does not know as optional is a bug: re-raised with its traceback."""
    extra = EXTRA_OF_MODULE.get((error.name or "").split(".")[0])
    if extra is None:
        raise error
    print(f"imagesr: error: `imagesr {command}` needs {error.name}, which this install lacks: "
          f"pip install 'imagesr[{extra}]'", file=sys.stderr)
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    # google-api-core warns on every import that Python 3.10 support is ending (TFX 1.16 needs 3.10).
    warnings.filterwarnings("ignore", message=".*non-supported Python version.*", category=FutureWarning)
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, beam_argv = parser.parse_known_args(argv)
    verbose = [a for a in beam_argv if a in ("-v", "--verbose")]
    args.verbose = args.verbose or bool(verbose)
    args.beam_argv = [a for a in beam_argv if a not in verbose]
    if args.beam_argv and not getattr(args, "beam_options", False):  # only the patch job passes flags on (to Beam)
        _command_parser(parser, getattr(args, "command", None)).error(f"unrecognized arguments: {' '.join(args.beam_argv)}")
    configure_logging(args.verbose)
    if not getattr(args, "func", None):  # no command, or a command without its action
        _command_parser(parser, getattr(args, "command", None)).print_help()
        return 2
    try:
        with sigterm_as_interrupt():
            return args.func(args)
    except UserError as e:  # bad input: one line. Anything else is a bug: its traceback, exit 1.
        print(f"imagesr: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        return _missing_extra(e, args.command)
    except OSError as e:
        if not disk_full(e):
            raise
        print(f"imagesr: error: cannot write {e.filename or 'the output'}: {disk_full(e)}", file=sys.stderr)
        return 2
    except Terminated:
        remove_claimed()
        print("imagesr: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        remove_claimed()
        print("imagesr: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The console script and ``python -m imagesr.cli``: :func:`main`, then, after Ctrl-C or
    SIGTERM and main's clean-up, an immediate exit. Beam's local job service runs a job in a
    non-daemon thread that waits for its worker; a worker that the same Ctrl-C stopped before it
    connected would keep that thread, and with it the process, alive at interpreter exit."""
    rc = main()
    if rc in (130, 143):
        import logging
        import os

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    run()
