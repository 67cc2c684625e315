"""The SR evaluator: PSNR/SSIM on benchmarks (clean and through the real-video degradation) and
on eval-split frames, the time to upscale the timing frames (30 frames 720p -> 1080p by
default), the parameter count, a blessing decision and a report.

:func:`evaluate_model` holds the logic (usable without TFX); :func:`SREvaluator` is the TFX
component around it. Every PSNR comes from ``imagesr.core.evaluation.evaluate_folder``, the same
protocol as ``imagesr bench bicubic`` and ``imagesr evaluate``.

Blessing: the candidate must beat bicubic by ``margin_db`` on every benchmark and scale, be
no worse than the blessed baseline (when there is one) by more than ``tolerance_db`` on the
benchmark/scale pairs both can be evaluated on, and, if ``time_budget_s`` is set, upscale the
timing frames within it.
"""


import csv
import json
import logging
import os
import statistics
import tempfile
import time
from dataclasses import asdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from imagesr.components.tfx.evaluator_config import EvaluatorConfig, describe_timing, row_label
from imagesr.core import dataset, evaluation, fs, media, strict_json
from imagesr.core.degrade import CLEAN, Degradation
from imagesr.core.errors import UserError
from imagesr.core.media import write_image

log = logging.getLogger(__name__)


def _scales_for(up, scales: Sequence[float]) -> List[float]:
    return [float(s) for s in scales if up.supports(float(s))] or ([up.scale] if up.scale else [])


def _eval_split_frames(examples_uri: str, limit: int, dest: str) -> int:
    """First frame of each eval-split source listed in the dataset manifest, as PNGs in ``dest``."""
    manifest = dataset.read_manifest(examples_uri)
    if manifest is None:
        return 0
    inputs = manifest["inputs"]
    n = 0
    for st in inputs:
        if n >= limit:
            break
        if st["split"] != "eval" or st["status"] != "ok":
            continue
        try:
            source = os.path.dirname(st["path"]) if st["kind"] == "frames" else st["path"]
            with fs.local_tree(source) as local:
                frame = next(media.iter_frames(local, limit=1))
        except (UserError, StopIteration, OSError):
            continue
        write_image(os.path.join(dest, f"{n:03d}.png"), frame)
        n += 1
    return n


def _timing_frames(config: EvaluatorConfig) -> np.ndarray:
    from imagesr.core import samples
    from imagesr.core.resize import imresize

    path = config.timing_video or samples.materialize()["video"]
    frames = list(media.iter_frames(path, limit=config.timing_frames))
    size = tuple(config.timing_input)
    frames = [f if f.shape[:2] == size else imresize(f, size=size) for f in frames]
    while len(frames) < config.timing_frames:
        frames.append(frames[len(frames) % max(1, len(frames))])
    return np.stack(frames[: config.timing_frames])


def time_upscaler(up, frames: np.ndarray, out_size, batch: int, repeats: int) -> Dict:
    """Seconds to upscale all ``frames`` to ``out_size`` (after a warm-up batch; median of repeats)."""
    up(frames[:batch], out_size)  # warm-up: graph tracing, weight caches
    times = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        for i in range(0, len(frames), batch):
            up(frames[i : i + batch], out_size)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"seconds": med, "fps": len(frames) / med, "repeats": times, "frames": len(frames)}


def evaluate_model(model_dir: str, out_dir: str, config: EvaluatorConfig = None, baseline_dir: Optional[str] = None,
                   examples_uri: Optional[str] = None) -> Dict:
    """Evaluate the model in ``model_dir`` (against bicubic and a baseline); write metrics.json,
    per_image.csv and report.html into ``out_dir``; return the metrics with the blessing. Any of
    the paths may be on gs:// (models staged locally, outputs uploaded when complete)."""
    config = config or EvaluatorConfig()
    with fs.staged_folder(out_dir) as local_out:  # uploaded at the end when out_dir is gs://
        return _evaluate_into(model_dir, local_out, config, baseline_dir, examples_uri)


def _evaluate_into(model_dir: str, out_dir: str, config: EvaluatorConfig, baseline_dir: Optional[str],
                   examples_uri: Optional[str]) -> Dict:
    from imagesr.components.tfx.report import write_report
    from imagesr.training.serving import load_upscaler

    models = {"candidate": load_upscaler(model_dir), "bicubic": load_upscaler("bicubic")}
    if baseline_dir:
        models["baseline"] = load_upscaler(baseline_dir)
    benchmarks = list(config.benchmarks)
    if not benchmarks:
        from imagesr.core import samples

        benchmarks = [samples.materialize()["bench"]]
    scales = _scales_for(models["candidate"], config.scales)
    rows, per_image = [], []

    def run(folder: str, name: str, s_list: Sequence[float], degradation: Degradation = CLEAN):
        """Every model on the same LR (one encoder round trip per image for real-video input)."""
        todo = {role: (up.evaluation_upscaler, [s for s in s_list if up.supports(s)]) for role, up in models.items()}
        todo = {role: job for role, job in todo.items() if job[1]}
        if not todo:
            return
        for role, results in evaluation.evaluate_models(folder, todo, degradation=degradation).items():
            for r in results:
                rows.append({"benchmark": name, "degradation": degradation.name, "scale": r.scale, "model": role,
                             "psnr_y": r.psnr_y, "ssim_y": r.ssim_y, "images": r.images})
                per_image.extend({"benchmark": name, "degradation": degradation.name, "scale": i.scale,
                                  "model": role, "image": i.image, "psnr_y": i.psnr_y, "ssim_y": i.ssim_y}
                                 for i in r.per_image)

    for folder in benchmarks:
        run(folder, os.path.basename(os.path.normpath(folder)), scales)
        if config.real_video_degradation:  # the same images through the real-video path (codec, another kernel)
            run(folder, os.path.basename(os.path.normpath(folder)), scales, config.real_video_degradation)
    notes = []
    with tempfile.TemporaryDirectory(prefix="imagesr-evalsplit-") as tmp:
        n = _eval_split_frames(examples_uri, config.max_eval_frames, tmp) if examples_uri else 0
        if n and models["candidate"].supports(config.eval_split_scale):
            run(tmp, "eval-split", [config.eval_split_scale])
        elif n:
            notes.append(f"eval-split frames not measured: the candidate is a x{models['candidate'].scale:g} model")
        else:
            notes.append("no eval-split frames (no manifest or no eval sources)")

    frames = _timing_frames(config)
    out_size = tuple(config.timing_output)
    timing = {role: time_upscaler(up, frames, out_size, config.timing_batch, config.timing_repeats)
              for role, up in models.items()}

    setup = {"frames": len(frames), "input": list(frames.shape[1:3]), "output": list(out_size),
             "batch": config.timing_batch, "repeats": config.timing_repeats}
    blessed, reasons = decide(rows, timing, setup, config)
    metrics = {
        "blessed": blessed,
        "reasons": reasons,
        "notes": notes,
        "models": {role: {"path": (model_dir if role == "candidate" else baseline_dir if role == "baseline" else "bicubic"),
                          "kind": up.kind, "scale": up.scale, "parameters": up.parameters}
                   for role, up in models.items()},
        "psnr": rows,
        "timing": {role: {k: v for k, v in t.items()} for role, t in timing.items()},
        "timing_setup": setup,
        "config": asdict(config),
    }
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        f.write(strict_json.dumps(metrics, indent=1, default=float))
    with open(os.path.join(out_dir, "per_image.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["benchmark", "degradation", "scale", "model", "image", "psnr_y", "ssim_y"])
        w.writeheader()
        w.writerows(per_image)
    write_report(os.path.join(out_dir, "report.html"), metrics, models, benchmarks[0], scales[0] if scales else None,
                 real_video=config.real_video_degradation)
    return metrics


def decide(rows: List[Dict], timing: Dict, setup: Dict, config: EvaluatorConfig):
    """(blessed, reasons): every rule checked, each reason a readable sentence."""
    table = {(r["benchmark"], r.get("degradation", "clean"), r["scale"], r["model"]): r["psnr_y"] for r in rows}
    reasons: List[str] = []
    ok = True
    keys = sorted({(b, d, s) for b, d, s, m in table if m == "candidate"})
    if not keys:
        return False, ["the candidate could not be evaluated on any benchmark"]
    for b, d, s in keys:
        label = row_label({"benchmark": b, "degradation": d})
        cand, bic = table[(b, d, s, "candidate")], table.get((b, d, s, "bicubic"))
        margin = config.margin_db if d == "clean" else config.real_video_margin_db
        if bic is not None:
            good = cand >= bic + margin
            ok &= good
            reasons.append(f"{label} x{s:g}: {cand:.2f} dB vs bicubic {bic:.2f} dB "
                           f"({'beats' if good else 'does not beat'} it by the margin {margin} dB)")
        base = table.get((b, d, s, "baseline"))
        if base is not None:
            good = cand >= base - config.tolerance_db
            ok &= good
            reasons.append(f"{label} x{s:g}: {cand:.2f} dB vs blessed baseline {base:.2f} dB "
                           f"({'within' if good else 'worse than'} the tolerance {config.tolerance_db} dB)")
    if config.time_budget_s is not None:
        t = timing["candidate"]["seconds"]
        good = t <= config.time_budget_s
        ok &= good
        reasons.append(f"{describe_timing(setup)} in {t:.3f} s ({'within' if good else 'over'} the budget "
                       f"{config.time_budget_s} s)")
    return bool(ok), reasons


# --------------------------------------------------------------------------- TFX component


InputArtifact = tfx.dsl.components.InputArtifact
OutputArtifact = tfx.dsl.components.OutputArtifact
Parameter = tfx.dsl.components.Parameter


@tfx.dsl.components.component
def SREvaluator(
    model: InputArtifact[standard_artifacts.Model],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    config: Parameter[str] = "{}",
    examples: InputArtifact[standard_artifacts.Examples] = None,
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
) -> None:
    """Evaluate the Trainer's (or an imported) model against bicubic and the latest blessed
    model; bless or not. ``examples``: the run's patch dataset, for its eval-split frames."""
    cfg = EvaluatorConfig.from_dict(json.loads(config))
    model_dir = path_utils.serving_model_dir(model.uri)
    baseline_dir = path_utils.serving_model_dir(baseline_model.uri) if baseline_model is not None else None
    metrics = evaluate_model(model_dir, evaluation.uri, cfg, baseline_dir, examples.uri if examples else None)
    blessed = metrics["blessed"]
    blessing.set_int_custom_property("blessed", 1 if blessed else 0)
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
    if baseline_model is not None:
        blessing.set_string_custom_property("baseline_model", baseline_model.uri)
        blessing.set_int_custom_property("baseline_model_id", baseline_model.id)
    os.makedirs(blessing.uri, exist_ok=True)
    with open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
        f.write("\n".join(metrics["reasons"]) + "\n")
    cand = [r for r in metrics["psnr"] if r["model"] == "candidate"]
    for r in cand:
        deg = "" if r["degradation"] == "clean" else f"_{r['degradation']}"
        evaluation.set_float_custom_property(f"psnr_{r['benchmark']}{deg}_x{r['scale']:g}", r["psnr_y"])
    evaluation.set_float_custom_property("timing_seconds", metrics["timing"]["candidate"]["seconds"])
    evaluation.set_int_custom_property("timing_frames", metrics["timing_setup"]["frames"])
    evaluation.set_int_custom_property("parameters", metrics["models"]["candidate"]["parameters"])
    evaluation.set_int_custom_property("blessed", 1 if blessed else 0)
    evaluation.set_string_custom_property("report", os.path.join(evaluation.uri, "report.html"))
    log.info("SREvaluator: %s\n  %s", "BLESSED" if blessed else "NOT BLESSED", "\n  ".join(metrics["reasons"]))

