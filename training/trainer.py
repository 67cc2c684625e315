"""Training of the SR models on patch-pair TFRecords: one trainer for the CLI, the TFX Trainer
(:func:`run_fn`) and the GPU machine (JAX backend, no TensorFlow).

``imagesr train --examples DIR --model vdsr|subpixel|span --steps N --out DIR`` and the TFX
Trainer both call :func:`train`. Outputs in ``out``::

    out/model.keras          backend-neutral Keras file (loads on TF and JAX)
    out/saved_model/         TF SavedModel with a `serve` signature (uint8 frames + size -> uint8 frames)
    out/train_summary.json   config, steps/s, losses, eval PSNR of model and bicubic on eval patches
    out/logs/                TensorBoard logs (TensorFlow backend)
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from imagesr.core import dataset, strict_json
from imagesr.core.errors import UserError, check_keys, check_types
from imagesr.core.scale import Scale
from imagesr.core.scale import scales as scales_of

log = logging.getLogger(__name__)

BUDGET_EPOCH_STEPS = 50  # time-budget runs set the learning rate every this many steps


@dataclass
class TrainConfig:
    """Every knob of a training run (TFX passes these as ``custom_config``)."""

    model: str = "vdsr"  # an architecture of imagesr.training.models (vdsr, subpixel, span)
    scales: Sequence[float] = (2, 3, 4)  # subpixel: exactly one
    batch_size: int = 64
    crop: Optional[int] = None  # HR crop of the stored patches (None: whole patch)
    steps: int = 1000
    learning_rate: float = 5e-4
    schedule: str = "cosine"  # cosine | constant
    warmup_steps: int = 0
    loss: str = "l1"  # l1 | l2
    mixed_precision: bool = False  # bfloat16 compute, float32 weights
    model_args: Dict = field(default_factory=dict)  # e.g. {"depth": 20, "width": 64}
    shuffle_buffer: int = 20000
    eval_batches: int = 16
    log_every: int = 50
    seed: int = 0
    warm_start: Optional[str] = None  # a .keras file or serving dir to initialise from
    in_memory: bool = False  # load all records into arrays first (GPU: keeps the device fed)
    time_budget_s: Optional[float] = None  # train as many steps as fit (a cosine in time; `steps` caps)
    steps_per_execution: int = 1  # steps per compiled call (fewer host round trips for small models)

    def __post_init__(self):
        from imagesr.training.models import spec

        self.scales = tuple(s.to_json() for s in scales_of(self.scales))  # checked; plain numbers in JSON
        check_types(self, "training option")
        spec(self.model).check_arguments(self.model_args)
        if spec(self.model).fixed_scale and len(self.scales) != 1:
            raise UserError(f"a {self.model} model serves one scale; got scales {self.scales}")
        for s in self.scales:
            if self.crop is not None and (self.crop <= 0 or self.crop % Scale(s).modulus):
                raise UserError(f"crop {self.crop} must be a positive multiple of {Scale(s).modulus} at x{Scale(s)} "
                                "(so that the LR crop is whole pixels and stays aligned with the HR crop)")
        if self.steps < 0 or self.batch_size < 1:
            raise UserError("steps must be >= 0 and batch_size >= 1")
        if self.learning_rate <= 0 or (self.time_budget_s is not None and self.time_budget_s <= 0):
            raise UserError(f"learning_rate and time_budget_s must be positive, got {self.learning_rate} and "
                            f"{self.time_budget_s}")
        small = {k: getattr(self, k) for k in ("warmup_steps", "shuffle_buffer", "eval_batches") if getattr(self, k) < 0}
        small.update({k: getattr(self, k) for k in ("log_every", "steps_per_execution") if getattr(self, k) < 1})
        if small:
            raise UserError("out of range: " + ", ".join(f"{k} {v}" for k, v in small.items())
                            + " (warmup_steps, shuffle_buffer, eval_batches >= 0; log_every, steps_per_execution >= 1)")
        if self.schedule not in ("cosine", "constant") or self.loss not in ("l1", "l2"):
            raise UserError("schedule must be cosine|constant and loss l1|l2")

    @classmethod
    def from_dict(cls, d: Dict) -> "TrainConfig":
        check_keys(d, cls, "training options")
        return cls(**d)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _y_psnr_batch(pred: np.ndarray, target: np.ndarray) -> float:
    from imagesr.core.metrics import psnr

    vals = [psnr(np.clip(np.floor(p + 0.5), 0, 255), t) for p, t in zip(pred, target)]
    finite = [v for v in vals if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("inf")


class _Progress:
    """A progress line every ``every`` steps: steps, steps/s, ETA, loss (stderr).

    Keras reports the running mean of the loss since the fit began; the line shows the mean
    over the last ``every`` steps instead, recovered from that running mean, so a late
    improvement is visible. Steps count across epochs (a time-budget run has many short ones).
    """

    def __init__(self, total: int, every: int):
        import keras

        from imagesr.core.progress import ProgressLine

        self.line = line = ProgressLine("train", total, "steps")
        self.offset = 0
        progress = self

        class CB(keras.callbacks.Callback):
            def __init__(cb):
                super().__init__()
                cb.losses: List = []  # (step, mean loss over the window)
                cb.prev = (0, 0.0)  # (step in this fit, running mean) at the last line

            def on_train_begin(cb, logs=None):
                line.t0 = time.perf_counter()

            def on_epoch_begin(cb, epoch, logs=None):
                cb.prev = (0, 0.0)  # Keras restarts the running mean and the batch index every epoch
                progress.offset = epoch * (cb.params.get("steps") or 0)

            def on_train_batch_end(cb, batch, logs=None):
                step = batch + 1  # with several steps per call, the last of them
                g = step + progress.offset
                if g // every > (g - step + cb.prev[0]) // every or g == line.total:
                    mean = float((logs or {}).get("loss", float("nan")))
                    p_step, p_mean = cb.prev
                    window = (step * mean - p_step * p_mean) / max(step - p_step, 1)
                    cb.prev = (step, mean)
                    cb.losses.append((g, window))
                    line.update(g, extra=f"loss {window:.5f}", force=True)

        self.callback = CB()


def budget_learning_rate(peak: float, frac: float, step: int, warmup: int, alpha: float = 0.01) -> float:
    """The learning rate of a time-budget run at ``frac`` of its budget (clamped to [0, 1]) and
    its ``step``-th step: a linear warm-up over ``warmup`` steps (or the first 5% of the time,
    if sooner) times a cosine from ``peak`` down to ``alpha * peak`` at the end of the budget."""
    frac = min(1.0, max(0.0, frac))
    warm = min(1.0, max(step / max(warmup, 1), frac / 0.05))
    return peak * warm * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * frac)))


def _fit_to_budget(model, data, config: "TrainConfig", steps: int, compile_args: Dict, progress: "_Progress",
                   callbacks: List) -> None:
    """Train for as many steps as fit in ``config.time_budget_s``, annealed by the end.

    A cosine sized in steps would still be at its peak when a time budget stops the run, and
    the steps/s are not known before the step is compiled (nor steady on a shared machine).
    Instead the learning rate is a variable set before every step from the clock: a linear
    warm-up over the first ``warmup`` steps (or 5% of the time, if sooner) times a cosine over
    the fraction of the budget used so far (the compilation not counted), so whenever the
    budget ends, and however the machine's speed varied, the last steps ran at the annealed
    rate. One compilation; ``steps`` stays the upper bound.
    """
    import keras

    budget, peak, alpha = float(config.time_budget_s), config.learning_rate, 0.01
    warmup = config.warmup_steps or min(1000, max(1, steps // 20))
    spe = max(1, config.steps_per_execution)
    epoch_steps = max(spe, BUDGET_EPOCH_STEPS // spe * spe)
    model.compile(optimizer=keras.optimizers.Adam(peak * min(1.0, spe / warmup), clipnorm=1.0), **compile_args)
    clock: Dict = {"steps": 0}

    class TimeCosine(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            clock["t0"] = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            if "first" not in clock:
                return  # the first step: compiled now, at the warm-up rate set at compile time
            frac = (time.perf_counter() - clock["first"]) / max(budget - (clock["first"] - clock["t0"]), 1e-6)
            self.model.optimizer.learning_rate = budget_learning_rate(peak, frac, clock["steps"] + spe, warmup, alpha)

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            clock["steps"] += spe
            clock.setdefault("first", now)  # the first step has been compiled and run
            if now - clock["t0"] > budget:
                self.model.stop_training = True

    progress.line.total = None  # the number of steps is what the budget allows
    model.fit(data, steps_per_epoch=epoch_steps, epochs=-(-steps // epoch_steps), verbose=0,
              callbacks=[TimeCosine(), progress.callback] + callbacks)
    log.info("time budget %.0f s: %d steps after %.1f s of compilation", budget,
             int(keras.ops.convert_to_numpy(model.optimizer.iterations)), clock.get("first", 0) - clock.get("t0", 0))


class Diverged(UserError):
    """The loss became NaN or infinite: the run stops, and nothing is exported."""


def _FiniteLoss(progress: "_Progress"):
    """A callback that stops training at the first step whose loss is not finite (a learning
    rate too high, bad records): the weights are garbage from then on, and every further step
    and the export would only hide it. :func:`train` then raises :class:`Diverged`."""
    import keras

    class CB(keras.callbacks.Callback):
        step = None  # where it diverged
        loss = None

        def on_train_batch_end(self, batch, logs=None):
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss) and self.step is None:
                self.step, self.loss = batch + 1 + progress.offset, loss
                self.model.stop_training = True

    return CB()


def _TimeBudget(seconds: float):
    """A callback that stops training once ``seconds`` of training have passed."""
    import keras

    class CB(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() - self.t0 > seconds:
                self.model.stop_training = True

    return CB()


def _data(config: TrainConfig, files: Sequence[str], repeat: bool, shuffle: bool, seed: int):
    from imagesr.training.data import numpy_batches, tf_dataset

    kind = config.model
    if config.in_memory:
        from imagesr.training.data import array_batches, load_arrays

        x, y = load_arrays(files, kind, config.scales, config.crop, workers=min(len(files), os.cpu_count() or 1))
        log.info("loaded %d training pairs into memory (%.1f GB)", len(x), (x.nbytes + y.nbytes) / 1e9)
        return array_batches(x, y, config.batch_size, seed, prefetch=8)
    args = dict(kind=kind, batch_size=config.batch_size, scales=config.scales, crop=config.crop,
                shuffle_buffer=config.shuffle_buffer if shuffle else 0, repeat=repeat, seed=seed)
    if _backend() == "tensorflow":
        return tf_dataset(files, **args)
    return numpy_batches(files, **args)


def build_or_load(config: TrainConfig):
    """A new model, or with ``warm_start`` one of that model's architecture (its width and depth,
    whatever the defaults are) holding its weights, built under this run's precision policy."""
    from imagesr.training.models import architecture, build_model
    from imagesr.training.reparam import load_weights

    if not config.warm_start:
        return build_model(config.model, scale=config.scales[0], **config.model_args)
    from imagesr.core import fs
    from imagesr.training.serving import load_keras_model

    with fs.local_tree(config.warm_start) as local:  # a pushed model may be on gs://
        src = load_keras_model(local)
    arch = architecture(src)
    if arch["name"] != config.model:
        raise UserError(f"warm start {config.warm_start} is a {arch['name']} model, not {config.model}")
    if arch["scale"] is not None and Scale(arch["scale"]) != Scale(config.scales[0]):
        raise UserError(f"warm start {config.warm_start} is a x{arch['scale']:g} model; this run trains "
                         f"x{config.scales[0]:g}")
    # A training-only argument an exported model no longer shows (a folded model's branch
    # width) comes from this run's model_args; every argument the model shows must agree.
    clash = {k: (v, arch["model_args"][k]) for k, v in config.model_args.items()
             if k in arch["model_args"] and arch["model_args"][k] != v}
    if clash:
        raise UserError(f"warm start {config.warm_start}: its architecture differs from model_args "
                         + ", ".join(f"{k}={want} (the model has {have})" for k, (want, have) in clash.items()))
    model = build_model(config.model, scale=config.scales[0], **{**config.model_args, **arch["model_args"]})
    load_weights(model, src)
    log.info("warm start from %s (%s)", config.warm_start,
             ", ".join(f"{k} {v}" for k, v in arch["model_args"].items()))
    return model


def train(config: TrainConfig, train_files: Sequence[str], eval_files: Sequence[str], out_dir: str,
          serving_dir: Optional[str] = None) -> Dict:
    """Train ``config.model`` for ``config.steps`` steps and export it; returns the summary."""
    import keras

    from imagesr.training.data import check_records
    from imagesr.training.schedules import WarmupCosine
    from imagesr.training.serving import export_model

    check_records(train_files, config.scales)
    if eval_files:
        check_records(eval_files, config.scales)
    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_or_load(config)
    finally:
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("float32")
    steps = max(config.steps, 0)
    if config.schedule == "cosine" and steps > 0:
        lr = WarmupCosine(config.learning_rate, config.warmup_steps, steps - config.warmup_steps)
    else:
        lr = config.learning_rate

    from imagesr.training.losses import LOSSES

    compile_args = dict(loss=LOSSES[config.loss], jit_compile="auto", steps_per_execution=config.steps_per_execution)
    model.compile(optimizer=keras.optimizers.Adam(lr, clipnorm=1.0), **compile_args)
    progress = _Progress(steps, max(1, config.log_every))
    finite = _FiniteLoss(progress)
    callbacks = [finite]
    if _backend() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(out_dir, "logs"), update_freq=max(1, config.log_every)))
    t0 = time.perf_counter()
    if steps > 0:
        data = _data(config, train_files, repeat=True, shuffle=True, seed=config.seed)
        t0 = time.perf_counter()  # training time, not data loading
        if config.time_budget_s and config.schedule == "cosine":
            _fit_to_budget(model, data, config, steps, compile_args, progress, callbacks)
        else:
            if config.time_budget_s:
                callbacks.append(_TimeBudget(config.time_budget_s))
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[progress.callback] + callbacks)
        steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))  # fewer if the time budget hit
    if finite.step is not None:
        raise Diverged(f"training diverged: the loss became {finite.loss} at step {finite.step} (learning rate "
                       f"{config.learning_rate:g}); nothing was exported; try a lower learning rate")
    train_seconds = time.perf_counter() - t0
    summary = {
        "config": asdict(config),
        "backend": _backend(),
        "parameters": int(model.count_params()),
        "steps": steps,
        "train_seconds": round(train_seconds, 2),
        "steps_per_second": round(steps / train_seconds, 2) if steps and train_seconds > 0 else None,
        "loss_log": progress.callback.losses,
        "final_loss": progress.callback.losses[-1][1] if progress.callback.losses else None,
        "final_learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
    }
    if eval_files:
        summary.update(evaluate_patches(model, config, eval_files))
    export_dir = serving_dir or out_dir
    # names in the export folder (the CLI writes into a temporary folder renamed at the end)
    summary["exported"] = {k: os.path.relpath(v, export_dir) for k, v in export_model(model, export_dir).items()}
    with open(os.path.join(out_dir, "train_summary.json"), "w") as f:
        f.write(strict_json.dumps(summary, indent=1))
    return summary


def evaluate_patches(model, config: TrainConfig, files: Sequence[str]) -> Dict:
    """Y-PSNR of the model and of bicubic on the first ``eval_batches`` batches of ``files``."""
    from imagesr.core.resize import imresize
    from imagesr.training.data import numpy_batches
    from imagesr.training.models import spec as build_spec

    ps_model, ps_bicubic, n = [], [], 0
    for i, (x, y) in enumerate(numpy_batches(files, config.model, config.batch_size, config.scales, config.crop)):
        if i >= config.eval_batches:
            break
        pred = np.asarray(model.predict_on_batch(x))
        ps_model.append(_y_psnr_batch(pred, y) * len(x))
        if build_spec(config.model).input_at_output_size:
            bic = x
        else:
            bic = np.stack([imresize(a.astype(np.uint8), size=y.shape[1:3]) for a in x]).astype(np.float32)
        ps_bicubic.append(_y_psnr_batch(bic, y) * len(x))
        n += len(x)
    if not n:
        return {"eval_patches": 0}
    return {"eval_patches": n, "eval_psnr_y": sum(ps_model) / n, "eval_psnr_y_bicubic": sum(ps_bicubic) / n}


# --------------------------------------------------------------------------- TFX


def _expand(patterns: Sequence[str]) -> List[str]:
    """TFX's file patterns (``<uri>/Split-train/*``, or a folder), local or gs://; an empty split is
    no files here (the trainer decides what an empty eval split means)."""
    from imagesr.core import fs

    return [f for p in patterns for f in fs.glob(p if any(c in p for c in "*?[") else fs.join(p, "*"))]


TRAINER_CONFIG_KEY = "imagesr_train"


def trainer_custom_config(train: Dict) -> Dict:
    """The TFX Trainer's ``custom_config`` for a TrainConfig dict: the training options under
    their own key, because the dict is shared: the Vertex launcher adds its ``ai_platform_*``
    keys beside them and TFX hands the whole of it to :func:`run_fn` in the training container."""
    return {TRAINER_CONFIG_KEY: dict(train)}


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor): ``custom_config[TRAINER_CONFIG_KEY]`` holds a
    TrainConfig dict (other keys belong to the launcher); ``train_steps`` from the Trainer's
    TrainArgs wins over its ``steps``. Records, the run folder and the serving folder may be on
    gs:// (records staged locally for training; the model exported locally, then uploaded)."""
    import tempfile

    from imagesr.core import fs

    custom = fn_args.custom_config or {}
    if not isinstance(custom.get(TRAINER_CONFIG_KEY), dict):
        raise UserError(f"the Trainer's custom_config has no training options under {TRAINER_CONFIG_KEY!r} "
                        f"(keys: {sorted(custom)}); build it with trainer_custom_config()")
    cfg = dict(custom[TRAINER_CONFIG_KEY])
    if fn_args.train_steps is not None:
        cfg["steps"] = int(fn_args.train_steps)
    config = TrainConfig.from_dict(cfg)
    with tempfile.TemporaryDirectory(prefix="imagesr-records-") as tmp, \
            fs.staged_folder(fn_args.model_run_dir) as run_dir, \
            fs.staged_folder(fn_args.serving_model_dir) as serving_dir:
        train_files = dataset.staged_locally(_expand(fn_args.train_files), os.path.join(tmp, "train"))
        eval_files = dataset.staged_locally(_expand(fn_args.eval_files), os.path.join(tmp, "eval"))
        summary = train(config, train_files, eval_files, run_dir, serving_dir=serving_dir)
    log.info("trained %s: %s", config.model, {k: summary.get(k) for k in ("final_loss", "eval_psnr_y", "steps_per_second")})
