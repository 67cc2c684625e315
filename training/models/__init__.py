"""SR architectures, one file each (BasicSR style), built by name through :func:`build_model`.

Every model maps float images in [0, 255] to float images in [0, 255]:

* ``vdsr``: input is the bicubic-upscaled image at HR size (any scale, one model for all);
* ``subpixel``: input is the LR image; the model upsamples by its fixed ``scale``.

``model_kind(model)`` tells callers which input a loaded model expects.
"""

import keras

from training.models.subpixel import build_subpixel
from training.models.vdsr import build_vdsr

MODELS = ("vdsr", "subpixel")


def build_model(name: str, scale: float = 2, **kwargs) -> keras.Model:
    if name == "vdsr":
        return build_vdsr(**kwargs)
    if name == "subpixel":
        return build_subpixel(scale=scale, **kwargs)
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")


def model_kind(model: keras.Model) -> str:
    """'vdsr' (HR-size bicubic input) or 'subpixel' (LR input), from the model's name."""
    for k in MODELS:
        if model.name.startswith(k):
            return k
    raise ValueError(f"model {model.name!r} is not an imagesr SR model (vdsr*/subpixel*)")


def model_scale(model: keras.Model) -> float:
    """The fixed scale of a subpixel model (None for scale-free VDSR)."""
    if model_kind(model) == "vdsr":
        return None
    for layer in model.layers:
        if hasattr(layer, "scale") and layer.__class__.__name__ == "BicubicResize":
            return layer.scale
    raise ValueError(f"model {model.name!r} has no BicubicResize skip to read its scale from")


__all__ = ["MODELS", "build_model", "model_kind", "model_scale", "build_vdsr", "build_subpixel"]
