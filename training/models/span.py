"""SPAN-SR: SPAN's blocks (Wan et al., "Swift Parameter-free Attention Network for Efficient
Super-Resolution", NTIRE 2024 efficient SR) in the project's sub-pixel frame.

Each block is three re-parameterisable 3x3 convolutions (``imagesr.training.reparam``: trained
as SPAN's Conv3XC branches, served as one conv each) with SiLU between them, and SPAN's
parameter-free attention (``(conv3 + input) * (sigmoid(conv3) - 0.5)``). The head's features,
the first block's output, the last block's first convolution and the body's tail are
concatenated and fused by a 1x1 conv, as in SPAN; then a 3x3 conv to C*r*r channels and a pixel
shuffle. As in ``subpixel``: all work at low resolution (x1.5: unshuffle 2, shuffle 3) and the
output is a residual over the MATLAB-bicubic upscale, its last conv zero at the start.
Every layer is local (no pooling), so tiles of a frame match the whole frame.
"""

import keras
from keras import layers

from imagesr.core.errors import UserError
from imagesr.training.layers import SymmetricAttention
from imagesr.training.models.spec import ArchitectureSpec
from imagesr.training.models.subpixel import low_resolution_input, size_arguments, subpixel_output
from imagesr.training.reparam import RepConv3x3


def build_span(scale: float = 2, width: int = 52, blocks: int = 6, gain: int = 2, channels: int = 3,
               name: str = None) -> keras.Model:
    """SPAN-SR for one scale; input LR in [0, 255], output HR in [0, 255]. ``gain``: the width
    multiplier of the re-parameterisable convolutions' inner branch (training only)."""
    if blocks < 1:
        raise UserError("span: blocks must be >= 1")
    inp, x = low_resolution_input(scale, channels)
    # Centred on zero. SPAN feeds (x - mean) * 255, where its attention starts saturated; in
    # short runs at equal steps that range trained worse here (BENCHMARKS.md).
    x = layers.Rescaling(1.0, offset=-0.5, name="centre")(x)
    head = RepConv3x3(width, gain, name="head")(x)
    h, first, inner = head, None, None
    for b in range(blocks):
        inner = RepConv3x3(width, gain, name=f"block{b}_conv1")(h)
        y = layers.Activation("silu", name=f"block{b}_act1")(inner)
        y = RepConv3x3(width, gain, name=f"block{b}_conv2")(y)
        y = layers.Activation("silu", name=f"block{b}_act2")(y)
        y = RepConv3x3(width, gain, name=f"block{b}_conv3")(y)
        h = SymmetricAttention(name=f"block{b}_attention")([y, h])
        first = h if first is None else first
    tail = RepConv3x3(width, gain, name="body_tail")(h)
    h = layers.Concatenate(name="gather")([head, tail, first, inner])
    h = layers.Conv2D(width, 1, name="fuse")(h)
    return subpixel_output(inp, h, scale, channels, name or f"span_x{float(scale):g}")


def _arguments(model: keras.Model) -> dict:
    """Width and depth from the layers (a trained or an exported, folded model alike); the
    training-only ``gain`` where the branches are still there."""
    out = size_arguments(model)
    head = model.get_layer("head")
    if isinstance(head, RepConv3x3):
        out["gain"] = head.gain
    return out


SPEC = ArchitectureSpec(name="span", input_at_output_size=False, build=build_span, arguments=_arguments)
