"""The pipeline side of the ``imagesr`` CLI: run, retrain, compile for Vertex, inspect runs,
and the demo. ``imagesr.cli`` parses the flags and calls these lazily (TFX loads only here)."""

import json
import os
import sys
from typing import Dict, List, Optional

from imagesr.core.errors import UserError

# No TFX import at module level: `imagesr --help` builds these parsers and must stay instant.


def _config(args, importing: bool = False):
    from imagesr.pipelines.config import load_config

    overrides = {}
    if getattr(args, "root", None):
        overrides["root"] = args.root
    cfg = load_config(getattr(args, "config", None), importing=importing, **overrides)
    extra = getattr(args, "input", None)
    if extra:
        cfg.inputs = list(cfg.inputs) + list(extra)
    return cfg


def _stores(args) -> List[str]:
    """Where runs are read from: --metadata; else the store of --root and/or --config (the
    config's sections unchecked: reading runs needs only where they are); else the default
    stores of ``pipeline run`` and ``demo`` that exist."""
    from imagesr.pipelines.config import default_metadata_paths, load_config
    from imagesr.pipelines.runs import RunNotFound

    if args.metadata:
        return [args.metadata]
    if args.config or args.root:
        overrides = {"root": args.root} if args.root else {}
        return [load_config(args.config, check_sections=False, **overrides).metadata_path]
    stores = [p for p in default_metadata_paths() if os.path.exists(p)]
    if not stores:
        raise RunNotFound(f"no pipeline runs yet: no MLMD store at {' or '.join(default_metadata_paths())} "
                          "(run `imagesr demo` or `imagesr pipeline run`; --root DIR or --metadata FILE look elsewhere)")
    return stores


def _print_run(summary: Dict) -> None:
    from imagesr.pipelines.runs import format_show

    print(format_show(summary))
    if summary.get("error"):
        print(f"pipeline stopped: {summary['error'].splitlines()[0]}", file=sys.stderr)
        print(summary["error"], file=sys.stderr)
    print(f"report: {summary.get('report')}")
    print(f"pushed model: {summary.get('pushed_model') or '(not pushed: ' + ('not blessed' if summary.get('blessed') is False else 'run incomplete') + ')'}")
    if "seconds" in summary:
        print(f"wall time: {summary['seconds']:.1f} s")


def run_pipeline(args) -> int:
    from imagesr.core import fs
    from imagesr.pipelines import local_runner

    cfg = _config(args, importing=args.import_model is not None)
    if args.import_model and not fs.exists(args.import_model):
        raise UserError(f"--import-model {args.import_model}: no such model folder or file")
    summary = local_runner.run(cfg, import_model=args.import_model)
    _print_run(summary)
    return 0 if summary["state"] == "COMPLETE" else 1


def latest_pushed_model(metadata_path: str) -> Optional[str]:
    from imagesr.pipelines.runs import list_runs, show

    for r in reversed(list_runs(metadata_path)):
        if r["pushed"]:
            return show(metadata_path, r["run_id"])["pushed_model"]
    return None


def retrain(args) -> int:
    """A new run over the configured (plus any extra) data, warm-starting from the latest pushed model."""
    from imagesr.pipelines import local_runner

    cfg = _config(args)
    pushed = latest_pushed_model(cfg.metadata_path) if os.path.exists(cfg.metadata_path) else None
    if pushed:
        cfg.warm_start = pushed
        print(f"retrain: warm start from {pushed}")
    else:
        print("retrain: no pushed model yet; training from scratch")
    summary = local_runner.run(cfg)
    _print_run(summary)
    return 0 if summary["state"] == "COMPLETE" else 1


def compile_vertex(args) -> int:
    from imagesr.pipelines.vertex_runner import CloudConfig, compile_pipeline

    path = compile_pipeline(_config(args), CloudConfig.load(args.cloud), args.out)
    print(f"Vertex pipeline: {path}")
    return 0


def runs_list(args) -> int:
    from imagesr.pipelines.runs import format_list, list_runs

    stores = _stores(args)
    if args.json:
        print(json.dumps([dict(r, store=s) for s in stores for r in list_runs(s)], indent=1))
    else:
        print("\n\n".join((f"runs in {s}:\n" if len(stores) > 1 else "") + format_list(list_runs(s)) for s in stores))
    return 0


def runs_show(args) -> int:
    from imagesr.pipelines.runs import format_show, show_in

    run = show_in(_stores(args), args.run)
    print(json.dumps(run, indent=1, default=str) if args.json else format_show(run))
    return 0


def report(args) -> int:
    from imagesr.pipelines.runs import show_in

    run = show_in(_stores(args), args.run)
    if not run.get("report") or not os.path.exists(run["report"]):
        print(f"run {run['run_id']} has no report (evaluator state: {run['components'].get('SREvaluator', {}).get('state')})",
              file=sys.stderr)
        return 1
    print(run["report"])
    return 0


def demo_config(workdir: str):
    """The whole pipeline on the built-in sample data, sized for a CPU in a few minutes."""
    from imagesr.core import samples
    from imagesr.pipelines.config import DEMO_NAME, PipelineConfig

    paths = samples.materialize(os.path.join(workdir, "samples"))
    shipped = shipped_model()
    return PipelineConfig(
        name=DEMO_NAME,
        root=os.path.join(workdir, "tfx"),
        inputs=[paths["train"], paths["davis"], os.path.dirname(paths["video"])],
        patch={"scales": [1.5], "patch_size": 48, "stride": 24, "residual": True, "eval_fraction": 0.3, "frame_stride": 3},
        train={"model": "subpixel", "scales": [1.5], "steps": 200, "batch_size": 16, "learning_rate": 2e-4,
               "log_every": 50},
        evaluator={"benchmarks": [paths["bench"]], "scales": [1.5], "timing_repeats": 2, "margin_db": 0.05},
        warm_start=shipped,
    )


def shipped_model() -> Optional[str]:
    """The default shipped model's folder (``imagesr.core.shipped.DEFAULT``), if installed."""
    from imagesr.core import shipped

    model = shipped.get(shipped.DEFAULT)
    return model.path if model is not None else None


def demo(workdir: Optional[str]) -> int:
    from imagesr.pipelines import local_runner
    from imagesr.pipelines.config import demo_workdir

    cfg = demo_config(demo_workdir(workdir))
    print(f"[demo] pipeline root {cfg.root}; inputs {cfg.inputs}; warm start {cfg.warm_start or '(none: from scratch)'}")
    summary = local_runner.run(cfg)
    _print_run(summary)
    return 0 if summary["state"] == "COMPLETE" else 1


def add_parsers(sub) -> None:
    """Register pipeline, retrain, runs and report on the top-level subparsers."""
    def common(p, inputs=False, store=False):
        p.add_argument("--config", default=None, help="pipeline config (JSON or YAML; see infra/vertex/pipeline.json)")
        p.add_argument("--root", default=None, help="pipeline root (overrides the config)")
        if inputs:
            p.add_argument("--input", action="append", default=None, help="extra media to add to the config's inputs")
        if store:
            p.add_argument("--metadata", default=None,
                           help="MLMD sqlite file (default: the store of --root / --config, else those of "
                                "`pipeline run` and `demo` without them)")

    pl = sub.add_parser("pipeline", help="the TFX pipeline: run locally or compile for Vertex")
    pls = pl.add_subparsers(dest="pipeline_command", metavar="ACTION")
    r = pls.add_parser("run", help="run the whole pipeline locally (LocalDagRunner, sqlite MLMD, DirectRunner)")
    common(r, inputs=True)
    r.add_argument("--import-model", default=None, metavar="PATH",
                   help="evaluate and push a model trained elsewhere (a model folder or .keras file, local or "
                        "gs://) instead of making patches and training; its card's provenance is recorded")
    r.set_defaults(func=run_pipeline)
    c = pls.add_parser("compile-vertex", help="write the Vertex AI pipeline JSON (no cloud access needed)")
    common(c)
    c.add_argument("--cloud", default=None, help="cloud config JSON (infra/vertex/cloud.json)")
    c.add_argument("--out", default="imagesr_vertex_pipeline.json")
    c.set_defaults(func=compile_vertex)

    rt = sub.add_parser("retrain", help="a new pipeline run (plus --input data), warm-starting from the latest pushed model")
    common(rt, inputs=True)
    rt.set_defaults(func=retrain)

    rs = sub.add_parser("runs", help="inspect pipeline runs in MLMD")
    rss = rs.add_subparsers(dest="runs_command", metavar="ACTION")
    ls = rss.add_parser("list", help="every run with its state, blessing and push")
    common(ls, store=True)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=runs_list)
    sh = rss.add_parser("show", help="one run: components, artifacts, metrics, blessing, pushed model")
    common(sh, store=True)
    sh.add_argument("run", help="run id (see runs list) or 'latest'")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=runs_show)

    rp = sub.add_parser("report", help="print the path of a run's HTML evaluation report")
    common(rp, store=True)
    rp.add_argument("run", help="run id or 'latest'")
    rp.set_defaults(func=report)
