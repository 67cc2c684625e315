"""SR architectures, one file each (BasicSR style), built by name through :func:`build_model`.

Every model maps float images in [0, 255] to float images in [0, 255]:

* ``vdsr``: input is the bicubic-upscaled image at HR size (any scale, one model for all);
* ``subpixel``, ``span``: input is the LR image; the model upsamples by its fixed ``scale``.

Each architecture's file defines its builder and its :class:`ArchitectureSpec` (what serving,
tiling, data and evaluation ask of it); ``spec_of(model)`` finds a loaded model's.
"""

from typing import Dict, Optional

import keras

from imagesr.core.errors import UserError
from imagesr.core.scale import Scale
from imagesr.training.models.span import SPEC as SPAN_SPEC
from imagesr.training.models.span import build_span
from imagesr.training.models.spec import ArchitectureSpec
from imagesr.training.models.subpixel import SPEC as SUBPIXEL_SPEC
from imagesr.training.models.subpixel import build_subpixel
from imagesr.training.models.vdsr import SPEC as VDSR_SPEC
from imagesr.training.models.vdsr import build_vdsr
from imagesr.training.reparam import RepConv3x3

SPECS: Dict[str, ArchitectureSpec] = {spec.name: spec for spec in (VDSR_SPEC, SUBPIXEL_SPEC, SPAN_SPEC)}
MODELS = tuple(SPECS)


def spec(name: str) -> ArchitectureSpec:
    if name not in SPECS:
        raise UserError(f"unknown model {name!r}; choose one of {MODELS}")
    return SPECS[name]


def build_model(name: str, scale: float = 2, **kwargs) -> keras.Model:
    return spec(name).build(scale=scale, **kwargs)


def spec_of(model: keras.Model) -> ArchitectureSpec:
    """The architecture of a model, from the Keras name its builder saved with it: the spec's
    name, alone (``vdsr``) or with the scale (``subpixel_x1.5``, ``span_x2``); matched whole, so
    no architecture's name can be taken for another's that it begins with."""
    kind = model.name if model.name in SPECS else model.name.rsplit("_x", 1)[0]
    if kind in SPECS:
        return SPECS[kind]
    raise ValueError(f"model {model.name!r} is not an imagesr SR model ({'*/'.join(MODELS)}*)")


def model_kind(model: keras.Model) -> str:
    return spec_of(model).name


def model_scale(model: keras.Model) -> Optional[Scale]:
    """The fixed scale of a sub-pixel model (None for scale-free VDSR)."""
    return spec_of(model).scale_of(model)


def architecture(model: keras.Model) -> dict:
    """The :func:`build_model` arguments that rebuild ``model``'s architecture (kind, scale and
    the model's own size arguments): a warm start takes the shape of the model it starts from."""
    s = spec_of(model)
    return {"name": s.name, "scale": s.scale_of(model), "model_args": s.arguments(model)}


def multiply_adds(model: keras.Model, in_size, out_size) -> int:
    """Multiply-adds of the model's convolutions for one frame of ``in_size`` (h, w) upscaled to
    ``out_size`` (the bicubic all architectures use is not counted). A re-parameterisable
    convolution counts as the one convolution it folds into, which is what serving runs."""
    s = spec_of(model)
    per_position = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, RepConv3x3)):
            kh, kw = layer.kernel_size
            cin = layer.input_channels if isinstance(layer, RepConv3x3) else int(layer.kernel.shape[2])
            per_position += kh * kw * cin * layer.filters
    return per_position * s.conv_positions(in_size, out_size, s.scale_of(model))


__all__ = ["MODELS", "SPECS", "ArchitectureSpec", "architecture", "build_model", "build_span", "build_subpixel", "build_vdsr",
           "model_kind", "model_scale", "multiply_adds", "spec", "spec_of"]
