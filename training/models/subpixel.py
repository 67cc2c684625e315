"""SubPixel-SR: the project's efficient network for live upscaling, all work at low resolution.

ESPCN's idea (compute at LR, sub-pixel convolution to upscale) with a stronger body: the LR
image is pixel-unshuffled when the scale is fractional (x1.5 = unshuffle 2, shuffle 3, so
convolutions run at half the LR resolution), a few 3x3 conv blocks with local residuals and
a global one, a convolution to C*r*r channels and a pixel shuffle; the output is added to
the MATLAB-bicubic upscale of the input (the network learns the residual, as VDSR does).
At 720p -> 1080p the convolutions see 360x640 positions instead of VDSR's 1080x1920 and the
default width/depth has about 1/5 of VDSR's parameters.
"""

import keras
from keras import layers

from imagesr.core.scale import Scale
from imagesr.training.layers import BicubicResize, PixelShuffle, PixelUnshuffle
from imagesr.training.models.spec import ArchitectureSpec


def shuffle_factors(scale) -> tuple:
    """(unshuffle r_in, shuffle r_out) with r_out / r_in == scale, both integers."""
    s = Scale(scale)
    return s.unshuffle, s.shuffle


def low_resolution_input(scale, channels: int):
    """The LR input in [0, 255] and what a sub-pixel body convolves: it in [0, 1], pixel-unshuffled
    by the scale's denominator (x1.5: by 2)."""
    r_in, _ = shuffle_factors(scale)
    inp = keras.Input((None, None, channels), name="lr")
    x = layers.Rescaling(1.0 / 255.0)(inp)
    if r_in > 1:
        x = PixelUnshuffle(r_in, name="unshuffle")(x)
    return inp, x


def subpixel_output(inp, features, scale, channels: int, name: str) -> keras.Model:
    """The model from a sub-pixel body's features: a 3x3 conv to C*r*r channels, zero at the
    start (the untrained model is bicubic), pixel-shuffled and added to the MATLAB-bicubic
    upscale of the input."""
    _, r_out = shuffle_factors(scale)
    h = layers.Conv2D(channels * r_out * r_out, 3, padding="same", kernel_initializer="zeros", name="to_subpixel")(features)
    residual = PixelShuffle(r_out, name="shuffle")(h)
    residual = layers.Rescaling(255.0, dtype="float32", name="to_255")(residual)
    upsampled = BicubicResize(scale, quantize=True, dtype="float32", name="bicubic_skip")(inp)
    out = layers.Add(name="global_residual", dtype="float32")([upsampled, residual])
    return keras.Model(inp, out, name=name)


def size_arguments(model: keras.Model) -> dict:
    """Channels, width (the head conv's) and blocks (the ``block<i>_conv1`` layers) of a model."""
    head = model.get_layer("head")
    blocks = sum(1 for layer in model.layers if layer.name.startswith("block") and layer.name.endswith("_conv1"))
    return {"channels": int(model.input_shape[-1]), "width": int(head.filters), "blocks": blocks}


def build_subpixel(scale: float = 2, width: int = 48, blocks: int = 4, channels: int = 3,
                   name: str = None) -> keras.Model:
    """SubPixel-SR for one scale; input LR in [0, 255], output HR in [0, 255]."""
    inp, x = low_resolution_input(scale, channels)
    head = layers.Conv2D(width, 3, padding="same", name="head")(x)
    h = head
    for b in range(blocks):
        y = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block{b}_conv1")(h)
        y = layers.Conv2D(width, 3, padding="same", name=f"block{b}_conv2")(y)
        h = layers.Add(name=f"block{b}_add")([h, y])
    h = layers.Add(name="body_skip")([h, layers.Conv2D(width, 3, padding="same", name="body_tail")(h)])
    return subpixel_output(inp, h, scale, channels, name or f"subpixel_x{float(scale):g}")


SPEC = ArchitectureSpec(name="subpixel", input_at_output_size=False, build=build_subpixel, arguments=size_arguments)
