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


def architecture(model: keras.Model) -> dict:
    """The :func:`build_model` arguments that rebuild ``model``'s architecture (kind, scale and
    the model's own size arguments), read from its layers: a warm start takes the shape of the
    model it starts from."""
    kind = model_kind(model)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    args = {"channels": int(model.input_shape[-1])}
    if kind == "vdsr":
        args.update(depth=len(convs), width=int(convs[0].filters))
        return {"name": kind, "scale": None, "model_args": args}
    blocks = sum(1 for layer in model.layers if layer.name.startswith("block") and layer.name.endswith("_conv1"))
    head = next(layer for layer in convs if layer.name == "head")
    args.update(width=int(head.filters), blocks=blocks)
    return {"name": kind, "scale": model_scale(model), "model_args": args}


def multiply_adds(model: keras.Model, in_size, out_size) -> int:
    """Multiply-adds of the model's convolutions for one frame of ``in_size`` (h, w) upscaled to
    ``out_size``: VDSR's run at the output size, a sub-pixel model's at the input size divided
    by its pixel-unshuffle factor (the bicubic skip is not counted: both models have it)."""
    kind = model_kind(model)
    if kind == "vdsr":
        positions = out_size[0] * out_size[1]
    else:
        from training.models.subpixel import shuffle_factors

        r_in, _ = shuffle_factors(model_scale(model))
        positions = (in_size[0] // r_in) * (in_size[1] // r_in)
    per_position = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            per_position += kh * kw * int(layer.kernel.shape[2]) * layer.filters
    return per_position * positions


__all__ = ["MODELS", "architecture", "multiply_adds", "build_model", "model_kind", "model_scale", "build_vdsr", "build_subpixel"]
