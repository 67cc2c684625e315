"""Read pipeline runs back from the MLMD store: each component's state, its artifacts and
URIs, the evaluator's metrics and blessing, and the pushed model (``imagesr runs ...``)."""

import json
import os
from typing import Dict, List, Sequence

from imagesr.components.tfx.evaluator_config import describe_timing, row_label
from imagesr.core import fs
from imagesr.core.errors import UserError

COMPONENT_ORDER = ["PatchExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "ValidationGate",
                   "Trainer", "latest_blessed_model_resolver", "SREvaluator", "Pusher"]
IMPORT_ORDER = ["ModelImporter", "latest_blessed_model_resolver", "SREvaluator", "Pusher"]  # a model trained elsewhere


class RunNotFound(UserError):
    """An unknown run id (or an empty / missing store)."""


def _store(metadata_path: str):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    if not os.path.exists(metadata_path):
        raise RunNotFound(f"{metadata_path}: no MLMD store (run `imagesr pipeline run` first)")
    try:
        with open(metadata_path, "rb") as f:
            sqlite = f.read(16) == b"SQLite format 3\x00"
    except OSError as e:
        raise RunNotFound(f"{metadata_path}: cannot read: {e.strerror or e}") from None
    if not sqlite:
        raise RunNotFound(f"{metadata_path}: not an MLMD store (not a SQLite database)")
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = metadata_path
    cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(cfg)


def _props(obj) -> Dict:
    out = {}
    for k, v in list(obj.custom_properties.items()) + list(obj.properties.items()):
        kind = v.WhichOneof("value")
        val = getattr(v, kind) if kind else None
        if kind == "struct_value" or kind == "proto_value":
            continue
        out[k] = val
    return out


def _state_name(execution) -> str:
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2.Execution.State.Name(execution.last_known_state)


def _component_id(store, execution) -> str:
    for ctx in store.get_contexts_by_execution(execution.id):
        if store.get_context_types_by_id([ctx.type_id])[0].name == "node":
            return ctx.name.split(".", 1)[-1]
    return f"execution-{execution.id}"


def list_runs(metadata_path: str) -> List[Dict]:
    """Runs oldest first: run id, start time, per-component state, blessed, pushed."""
    store = _store(metadata_path)
    out = []
    for ctx in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.create_time_since_epoch):
        summary = _summarize(store, ctx)
        out.append({k: summary[k] for k in ("run_id", "pipeline", "started", "state", "components", "blessed",
                                              "pushed", "report")})
    return out


def show(metadata_path: str, run_id: str) -> Dict:
    """One run in full: components with state and output artifacts, metrics, blessing, push."""
    store = _store(metadata_path)
    runs = {c.name: c for c in store.get_contexts_by_type("pipeline_run")}
    if run_id == "latest" and runs:
        run_id = max(runs.values(), key=lambda c: c.create_time_since_epoch).name
    if run_id not in runs:
        raise RunNotFound(f"no run {run_id!r} in {metadata_path}; known: {sorted(runs)[-5:]}")
    return _summarize(store, runs[run_id], full=True)


def show_in(metadata_paths: Sequence[str], run_id: str) -> Dict:
    """:func:`show` over several stores: the run with that id, or the latest of them all."""
    if run_id == "latest":
        started = [(r["started"], p) for p in metadata_paths for r in list_runs(p)]
        if started:
            return show(max(started)[1], "latest")
    if len(metadata_paths) == 1:
        return show(metadata_paths[0], run_id)
    for p in metadata_paths:
        try:
            return show(p, run_id)
        except RunNotFound:
            continue
    raise RunNotFound(f"no run {run_id!r} in {' or '.join(metadata_paths)}")


def _summarize(store, run_ctx, full: bool = False) -> Dict:
    from ml_metadata.proto import metadata_store_pb2

    executions = store.get_executions_by_context(run_ctx.id)
    comps: Dict[str, Dict] = {}
    for ex in executions:
        cid = _component_id(store, ex)
        comps[cid] = {"state": _state_name(ex), "execution_id": ex.id, "outputs": {}}
        if full or cid in ("SREvaluator", "Pusher"):
            events = store.get_events_by_execution_ids([ex.id])
            outs = [e for e in events if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
            arts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in outs])} if outs else {}
            for e in outs:
                a = arts.get(e.artifact_id)
                if a is None:
                    continue
                key = e.path.steps[0].key if e.path.steps else "output"
                comps[cid]["outputs"][key] = {"uri": a.uri, "type": store.get_artifact_types_by_id([a.type_id])[0].name,
                                              "properties": _props(a)}
    order = IMPORT_ORDER if "ModelImporter" in comps else COMPONENT_ORDER
    ordered = {c: comps[c] for c in order if c in comps}
    ordered.update({c: v for c, v in comps.items() if c not in ordered})
    for c in order:
        ordered.setdefault(c, {"state": "NOT_RUN", "outputs": {}})
    states = {c: v["state"] for c, v in ordered.items()}
    failed = [c for c, s in states.items() if s == "FAILED"]
    if failed:
        state = "FAILED"
    elif all(s in ("COMPLETE", "CACHED") for s in states.values()):
        state = "COMPLETE"
    elif any(s == "RUNNING" for s in states.values()):
        state = "RUNNING"
    else:
        state = "INCOMPLETE"
    ev = ordered.get("SREvaluator", {}).get("outputs", {})
    blessing = ev.get("blessing", {}).get("properties", {})
    evaluation = ev.get("evaluation", {})
    push = ordered.get("Pusher", {}).get("outputs", {}).get("pushed_model", {})
    pushed = push.get("properties", {}).get("pushed")
    pipeline = [store.get_contexts_by_type("pipeline")]
    out = {
        "run_id": run_ctx.name,
        "pipeline": pipeline[0][0].name if pipeline and pipeline[0] else None,
        "started": run_ctx.create_time_since_epoch,
        "state": state,
        "failed_components": failed,
        "components": states if not full else ordered,
        "blessed": None if "blessed" not in blessing else bool(blessing["blessed"]),
        "pushed": None if pushed is None else bool(pushed),
        "pushed_model": push.get("properties", {}).get("pushed_destination") if pushed else None,
        "report": fs.join(evaluation["uri"], "report.html") if evaluation.get("uri") else None,
    }
    imported = ordered.get("ModelImporter", {}).get("outputs", {}).get("model")
    if imported is not None:  # the provenance of a model trained elsewhere
        out["imported_model"] = {k: v for k, v in imported["properties"].items()
                                 if k not in ("state", "tfx_version", "producer_component", "name", "is_external")}
    if full and evaluation.get("uri"):
        path = fs.join(evaluation["uri"], "metrics.json")
        if fs.isfile(path):
            m = json.loads(fs.read_text(path))
            out["metrics"] = {
                "psnr": [r for r in m["psnr"]],
                "timing_seconds": {k: v["seconds"] for k, v in m["timing"].items()},
                "timing_frames": m["timing_setup"]["frames"],
                "timing": describe_timing(m["timing_setup"]),
                "parameters": {k: v["parameters"] for k, v in m["models"].items()},
                "reasons": m["reasons"],
            }
    return out


def format_list(runs: List[Dict]) -> str:
    lines = [f"{'run':<28} {'state':<10} {'blessed':<8} {'pushed':<7} components"]
    for r in runs:
        short = " ".join(f"{c}:{s[:4]}" for c, s in r["components"].items())
        lines.append(f"{r['run_id']:<28} {r['state']:<10} {str(r['blessed']):<8} {str(r['pushed']):<7} {short}")
    return "\n".join(lines)


def format_show(run: Dict) -> str:
    lines = [f"run {run['run_id']} ({run['pipeline']}): {run['state']}",
             f"  blessed: {run['blessed']}   pushed: {run['pushed']}   pushed model: {run['pushed_model']}",
             f"  report: {run['report']}"]
    if run.get("imported_model"):
        lines.append("  imported model: " + ", ".join(f"{k} {v}" for k, v in sorted(run["imported_model"].items())))
    for c, v in run["components"].items():
        lines.append(f"  {c:<32} {v['state']}")
        for key, a in v.get("outputs", {}).items():
            props = {k: val for k, val in a["properties"].items() if k not in ("state", "tfx_version", "producer_component", "name", "is_external")}
            lines.append(f"      {key}: {a['uri']}  {json.dumps(props, default=str)[:300]}")
    m = run.get("metrics")
    if m:
        lines.append("  metrics:")
        for r in m["psnr"]:
            lines.append(f"      {row_label(r)} x{r['scale']:g} {r['model']:<9} {r['psnr_y']:.2f} dB  SSIM {r['ssim_y']:.4f}")
        for k, s in m["timing_seconds"].items():
            lines.append(f"      {k:<9} {m['timing']}: {s:.3f} s   parameters {m['parameters'][k]:,}")
        for reason in m["reasons"]:
            lines.append(f"      - {reason}")
    return "\n".join(lines)
