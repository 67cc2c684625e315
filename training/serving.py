"""Export and loading of trained SR models, and the frame upscaler built from them.

A model directory (what the trainer writes and the Pusher pushes) holds:

* ``model.keras``: the backend-neutral Keras file, loadable with TensorFlow or JAX;
* ``saved_model/``: a TF SavedModel whose ``serve`` signature takes uint8 frames
  ``[N, H, W, 3]`` and the output ``size`` ``[2]`` (height, width) and returns uint8 frames,
  with the MATLAB bicubic inside the graph (TensorFlow Serving, Vertex, TF-only clients).

:func:`load_upscaler` accepts such a directory, a ``.keras`` file, a SavedModel directory or
``"bicubic"``, and returns a :class:`FrameUpscaler` used by ``imagesr evaluate``, the TFX
evaluator and ``imagesr upscale``.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from imagesr.core import fs
from imagesr.core.errors import UserError
from imagesr.core.outputs import temporary_files_in
from imagesr.core.resize import imresize, output_size
from imagesr.core.scale import Scale

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
# What a model folder holds: the exports, the trainer's summary and logs, and a model card
# (``card.json``, ``MODEL_CARD.md`` or ``provenance.json``: what the importer reads as provenance).
MODEL_FOLDER = (KERAS_FILE, SAVED_MODEL_DIR, "logs", "train_summary.json", "card.json", "MODEL_CARD.md",
                "provenance.json")


class ModelLoadError(UserError):
    """A model path that is missing, corrupt or not an imagesr SR model."""


def _finite_weights(model) -> bool:
    import keras

    return all(np.isfinite(np.asarray(keras.ops.convert_to_numpy(w), np.float32)).all() for w in model.weights)


def check_finite(model, path: str) -> None:
    """Refuse a model that cannot make finite frames: weights that are NaN or infinite (a
    training that diverged), or a non-finite output on a test frame (weights so large that the
    network overflows). Such a model would upscale to black frames with exit status 0."""
    from imagesr.training.models import spec_of

    if not _finite_weights(model):
        raise ModelLoadError(f"{path}: its weights are not finite (NaN or infinity: a training that diverged); "
                             "not a usable model")
    spec = spec_of(model)
    side = 12 * spec.input_multiple(spec.scale_of(model))
    probe = np.random.default_rng(0).integers(0, 256, (1, side, side, 3)).astype(np.float32)
    import keras

    out = np.asarray(keras.ops.convert_to_numpy(model(probe, training=False)), np.float32)
    if not np.isfinite(out).all():
        raise ModelLoadError(f"{path}: its output on a test frame is not finite (NaN or infinity); not a usable model")


def export_model(model, out_dir: str) -> dict:
    """Write ``model.keras`` (always) and the SavedModel (when TensorFlow is importable), both
    with any re-parameterisable convolutions folded into one conv each (what serving runs); a
    model whose weights are not finite is never written."""
    if not _finite_weights(model):
        raise ModelLoadError("the model's weights are not finite (NaN or infinity): not exported")
    os.makedirs(out_dir, exist_ok=True)
    import keras

    from imagesr.training.reparam import fold

    model = fold(model)
    keras_path = os.path.join(out_dir, KERAS_FILE)
    tmp = keras_path + ".partial.keras"
    # Weights only, no optimizer state (a third of the size; warm starts need only weights):
    # rebuilt from its config, not clone_model, which compiles the clone like the original.
    clean = model.__class__.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    clean.save(tmp)
    os.replace(tmp, keras_path)
    out = {"keras": keras_path}
    if keras.backend.backend() == "tensorflow":  # the SavedModel needs TF; JAX runs export .keras only
        out["saved_model"] = export_saved_model(model, os.path.join(out_dir, SAVED_MODEL_DIR))
    return out


def export_saved_model(model, path: str) -> str:
    """TF SavedModel with the `serve` signature (uint8 frames, size) -> uint8 frames."""
    import tensorflow as tf

    from imagesr.training.layers import bicubic_upscale_to
    from imagesr.training.models import spec_of

    spec = spec_of(model)

    class Serving(tf.Module):
        def __init__(self, m):
            super().__init__()
            self.model = m

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames"),
                                      tf.TensorSpec([2], tf.int32, name="size")])
        def serve(self, frames, size):
            x = tf.cast(frames, tf.float32)
            tf.debugging.assert_greater_equal(size, tf.shape(frames)[1:3], message="serve upscales only: size >= frame size")
            if spec.input_at_output_size:
                y = self.model(bicubic_upscale_to(x, size[0], size[1]), training=False)
            else:
                y = self.model(x, training=False)
                y = tf.cond(tf.reduce_all(tf.shape(y)[1:3] == size), lambda: y,
                            lambda: bicubic_upscale_to(y, size[0], size[1]))
            y = tf.clip_by_value(tf.floor(tf.cast(y, tf.float32) + 0.5), 0.0, 255.0)
            return {"frames": tf.cast(y, tf.uint8)}

    module = Serving(model)
    tmp = path + ".partial"
    tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve, "serve": module.serve})
    if os.path.exists(path):
        import shutil

        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def _resolve_keras(path: str) -> Optional[str]:
    if os.path.isdir(path):
        cand = os.path.join(path, KERAS_FILE)
        return cand if os.path.isfile(cand) else None
    return path if path.endswith(".keras") else None


def load_keras_model(path: str):
    """Load an imagesr Keras model from a ``.keras`` file or a model directory."""
    import keras

    import imagesr.training.layers  # noqa: F401  (registers the custom layers)
    import imagesr.training.losses  # noqa: F401  (and losses and schedules, for files saved from compiled models)
    import imagesr.training.reparam  # noqa: F401  (and the re-parameterisable conv of unfolded files)
    import imagesr.training.schedules  # noqa: F401
    from imagesr.training.models import spec_of

    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such model file or directory")
    keras_path = _resolve_keras(path)
    if keras_path is None:
        raise ModelLoadError(f"{path}: not a model ({KERAS_FILE} or a .keras file expected)")
    if not zipfile.is_zipfile(keras_path):
        raise ModelLoadError(f"{keras_path}: corrupt or not a Keras file (not a zip archive)")
    # Keras extracts a .keras archive with assets into a temporary folder, and leaves it there
    # when the load fails halfway: this run's own folder, removed whatever happens.
    try:
        with tempfile.TemporaryDirectory(prefix="imagesr-keras-") as tmp, temporary_files_in(tmp):
            model = keras.saving.load_model(keras_path, compile=False, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - Keras raises many types for bad files
        raise ModelLoadError(f"{keras_path}: cannot load Keras model ({type(e).__name__}: {_sentences(e)})") from None
    try:
        spec_of(model)
    except ValueError as e:
        raise ModelLoadError(f"{keras_path}: {e}") from None
    check_finite(model, keras_path)
    return model


def _sentences(error: Exception, limit: int = 400) -> str:
    """A library's error message on one line in whole sentences: its paragraphs without the
    configuration dumps Keras appends (``config={...}``, ``Full object config: {...}``), cut
    after the last sentence that fits in ``limit`` characters, never inside one."""
    parts = [p.strip() for p in str(error).split("\n\n") if p.strip() and not p.strip().startswith("config=")]
    text = re.sub(r"\s*Full object config:.*", "", " ".join(" ".join(p.split()) for p in parts), flags=re.S)
    if len(text) <= limit:
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)", text[:limit + 1])]
    return text[:ends[-1]] if ends else text.split(". ")[0]


@dataclass(frozen=True)
class ServingBackend:
    """How the Keras backend this process runs serves a model, decided once (:func:`serving_backend`).

    ``jit``: JAX, one compiled call per batch shape (uint8 in and out, colour conversions on the
    device: the planar route); callers then pad a short last batch to the shape already compiled
    instead of compiling another. Otherwise TensorFlow, whose predict traces once for all shapes.
    ``accelerator``: JAX on a GPU or TPU, where frames cross a host link (the planar route pays
    there; on a CPU the host is the device and ffmpeg's own conversions are cheaper)."""

    name: str
    jit: bool
    accelerator: bool


@functools.lru_cache(maxsize=None)
def serving_backend() -> ServingBackend:
    import keras

    name = keras.backend.backend()
    accelerator = False
    if name == "jax":
        import jax

        accelerator = jax.default_backend() != "cpu"
    return ServingBackend(name, jit=name == "jax", accelerator=accelerator)


class FrameUpscaler:
    """Upscale uint8 RGB frames to a given size with a model (or bicubic).

    ``__call__(frames, size)`` takes HxWx3 or NxHxWx3 uint8 and returns uint8 of the same rank.
    ``evaluation_upscaler`` adapts it to ``imagesr.core.evaluation``'s Upscaler signature.
    """

    def __init__(self, model=None, name: str = "bicubic"):
        self.model = model
        self.name = name
        self._fn = None
        self._jit = {}
        if model is None:
            self.spec, self.kind, self.scale, self.parameters = None, "bicubic", None, 0
        else:
            from imagesr.training.models import spec_of

            self.spec = spec_of(model)  # what the architecture needs (input, scale, multiples)
            self.kind, self.scale, self.parameters = self.spec.name, self.spec.scale_of(model), int(model.count_params())

    @property
    def backend(self) -> ServingBackend:
        """How this process serves the model (read on first use: it loads Keras's backend)."""
        return serving_backend()

    def supports(self, scale: float) -> bool:
        return self.scale is None or Scale(self.scale) == Scale(scale)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """TensorFlow backend: the network on float frames, rounded to uint8 on the host."""
        if self._fn is None:
            import tensorflow as tf

            # One trace for every batch and frame size (benchmarks mix sizes;
            # predict_on_batch would retrace per shape).
            self._fn = tf.function(lambda t: self.model(t, training=False),
                                   input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        y = np.asarray(self._fn(x.astype(np.float32)), dtype=np.float32)
        if not np.isfinite(y).all():
            raise UserError(f"{self.name}: the model's output is not finite (NaN or infinity) for these frames")
        return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)

    def jax_function(self, shape: Tuple[int, ...], size: Tuple[int, int], planar=None):
        """JAX backend (the GPU route): the jitted function of one input shape and output size,
        uint8 in and uint8 out, all on the device: the MATLAB bicubic (``imagesr.training.layers.
        bicubic_resize``; VDSR's input, or the whole of the bicubic baseline), the network and
        the rounding. Only uint8 crosses the host link, and the host does no per-pixel work,
        which at 1080p would otherwise cost more than the network itself.

        ``planar``: (input, output) :class:`imagesr.core.colour.PlanarFormat` for frames that are
        flat Y'CbCr vectors (the video decoder's and encoder's own layout): the colour
        conversions run on the device too, and 4:2:0 halves the bytes on the host link and in
        the pipes compared with RGB."""
        import jax
        import jax.numpy as jnp
        import keras

        from imagesr.training.layers import bicubic_resize

        key = (tuple(shape), tuple(size), planar)
        if key not in self._jit:
            def fn(x, model=self.model, spec=self.spec, size=tuple(size), planar=planar):
                # The barriers keep each colour conversion a pass of its own: fused into the
                # bicubic's tap gathers (or they into it), XLA would recompute it for every tap.
                barrier = jax.lax.optimization_barrier
                x = barrier(planar[0].to_rgb(x, xp=jnp)) if planar else keras.ops.cast(x, "float32")
                if spec is None:  # the bicubic baseline
                    y = bicubic_resize(x, size=size)
                elif spec.input_at_output_size:
                    y = model(bicubic_resize(x, size=size), training=False)
                else:
                    y = model(x, training=False)
                y = keras.ops.clip(keras.ops.floor(keras.ops.cast(y, "float32") + 0.5), 0.0, 255.0)
                return planar[1].from_rgb(barrier(y), xp=jnp) if planar else keras.ops.cast(y, "uint8")

            self._jit[key] = jax.jit(fn)
        return self._jit[key]

    def _jax_call(self, batch: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        return np.asarray(self.jax_function(batch.shape, size)(batch))

    def planar(self, frames, planar):
        """Flat Y'CbCr frames ``[N, planar[0].frame_bytes]`` -> ``[N, planar[1].frame_bytes]``,
        converted on the device (JAX backend only). Returns the device array without waiting
        for it: the caller hands it on (``np.asarray`` waits), so the next batch is sent while
        this one computes and comes back."""
        if not self.backend.jit:
            raise ValueError("planar frames need the JAX backend")
        frames = np.asarray(frames, dtype=np.uint8)
        natural = planar[1].size
        if self.spec is not None and self.spec.fixed_scale and output_size(planar[0].size, self.scale) != natural:
            raise ValueError(f"a x{self.scale:g} model cannot make {natural[1]}x{natural[0]} from "
                             f"{planar[0].width}x{planar[0].height} in one call")
        return self.jax_function(frames.shape, natural, planar)(frames)

    def __call__(self, frames: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.uint8)
        single = frames.ndim == 3
        batch = frames[None] if single else frames
        size = (int(size[0]), int(size[1]))
        natural = size
        if self.spec is not None and self.spec.fixed_scale:
            natural = output_size(batch.shape[1:3], self.scale)
        if self.backend.jit:
            out = self._jax_call(batch, natural)
        elif self.spec is None:  # the bicubic baseline
            out = np.stack([imresize(f, size=size) for f in batch])
        elif self.spec.input_at_output_size:
            out = self._predict(np.stack([imresize(f, size=size) for f in batch]))
        else:
            out = self._predict(batch)
        if natural != size:  # a subpixel model asked for another size: bicubic makes up the rest
            out = np.stack([imresize(f, size=size) for f in out])
        return out[0] if single else out

    def evaluation_upscaler(self, lr: np.ndarray, size: tuple, scale: float) -> np.ndarray:
        if not self.supports(scale):
            raise UserError(f"{self.name} is a x{self.scale:g} model; it cannot be evaluated at x{scale:g}")
        return self(lr, size)


def load_upscaler(path: str) -> FrameUpscaler:
    """``"bicubic"``, a model directory, a ``.keras`` file (local or gs://, staged through a
    temporary folder) -> FrameUpscaler (clear errors otherwise)."""
    if path == "bicubic":
        return FrameUpscaler(None)
    with fs.local_tree(path) as local:
        model = load_keras_model(local)
    return FrameUpscaler(model, name=os.path.basename(os.path.normpath(path)))
