"""VDSR (Kim et al., CVPR 2016): 20 3x3 conv layers of 64 channels with ReLU on the
bicubic-upscaled image and a global residual connection; scale-free (one model serves x2,
x3, x4, x1.5 ...). 665k parameters with one channel; with RGB in/out 667k."""

import keras
from keras import layers

from imagesr.core.errors import UserError
from imagesr.training.models.spec import ArchitectureSpec


def build_vdsr(depth: int = 20, width: int = 64, channels: int = 3, name: str = "vdsr") -> keras.Model:
    """VDSR on [0, 255] images at HR size (input = bicubic upscale of the LR image)."""
    if depth < 2:
        raise UserError("depth must be >= 2")
    inp = keras.Input((None, None, channels), name="bicubic")
    x = layers.Rescaling(1.0 / 255.0)(inp)
    # He initialisation as in the paper, ReLU after every layer but the last.
    init = keras.initializers.HeNormal()
    h = x
    for i in range(depth - 1):
        h = layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init, name=f"conv{i + 1}")(h)
    # Zero-initialised last layer: the untrained model is exactly bicubic, training only improves on it.
    residual = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros",
                             name=f"conv{depth}")(h)
    out = layers.Add(name="global_residual")([x, layers.Activation("linear", dtype="float32")(residual)])
    out = layers.Rescaling(255.0, dtype="float32", name="to_255")(out)
    return keras.Model(inp, out, name=name)


def _arguments(model: keras.Model) -> dict:
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    return {"channels": int(model.input_shape[-1]), "depth": len(convs), "width": int(convs[0].filters)}


SPEC = ArchitectureSpec(name="vdsr", input_at_output_size=True, build=lambda scale=None, **kw: build_vdsr(**kw),
                        arguments=_arguments, builder=build_vdsr)
