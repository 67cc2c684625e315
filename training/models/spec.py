"""What the rest of imagesr asks of an SR architecture, in one place per architecture.

Serving, tiling, the input pipelines, training, evaluation and the multiply-add count read
these properties instead of comparing model names: adding an architecture is one new file
that defines its builder and its :class:`ArchitectureSpec`, plus one line in the registry
(``imagesr.training.models``). A saved model names its architecture by its Keras name
(``vdsr``, ``subpixel_x1.5``), so ``.keras`` files written before specs existed still load.
"""

import inspect
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import keras

from imagesr.core.scale import Scale


@dataclass(frozen=True)
class ArchitectureSpec:
    name: str  # the Keras model's name starts with it
    # The network's input: the MATLAB-bicubic upscale at the output size (VDSR: any scale, the
    # same network), or the LR frame itself (a sub-pixel network: its scale is built in).
    input_at_output_size: bool
    build: Callable[..., keras.Model]  # build(scale=..., **arguments) -> model
    arguments: Callable[[keras.Model], Dict]  # the build arguments that rebuild a loaded model
    builder: Optional[Callable[..., keras.Model]] = None  # the function whose keyword arguments model_args are (default: build)

    def check_arguments(self, args) -> None:
        """Refuse model_args the builder does not take, or of another type than its default
        (a config's ``{"width": "64"}`` fails here, not when the Trainer builds the model)."""
        from imagesr.core.errors import UserError

        if not isinstance(args, dict):
            raise UserError(f"{self.name} model_args must be a mapping, got {args!r}")
        params = {n: p for n, p in inspect.signature(self.builder or self.build).parameters.items()
                  if n != "scale" and p.kind == p.POSITIONAL_OR_KEYWORD}
        for key, value in args.items():
            if key not in params:
                raise UserError(f"{self.name} model_args: unknown {key!r} (known: {', '.join(sorted(params))})")
            default = params[key].default
            kind = type(default) if default not in (None, inspect.Parameter.empty) else str
            if kind is float:  # a whole number is a number too; never a bool or NaN
                ok = type(value) in (int, float) and math.isfinite(value)
            else:
                ok = type(value) is kind and not (kind is int and value < 1)
            if not ok:
                what = {int: "a positive whole number", float: "a finite number"}.get(kind, kind.__name__)
                raise UserError(f"{self.name} model_args {key}: expected {what}, got {value!r}")

    @property
    def fixed_scale(self) -> bool:
        return not self.input_at_output_size

    def scale_of(self, model: keras.Model) -> Optional[Scale]:
        """The scale a fixed-scale model was built for (its bicubic skip's), None otherwise."""
        if not self.fixed_scale:
            return None
        from imagesr.training.layers import BicubicResize

        for layer in model.layers:
            if isinstance(layer, BicubicResize):
                return Scale(layer.scale)
        raise ValueError(f"model {model.name!r} has no BicubicResize skip to read its scale from")

    def input_multiple(self, scale: Optional[Scale]) -> int:
        """Input sides must be multiples of this (a sub-pixel network pixel-unshuffles by the
        scale's denominator: 2 at x1.5); other frames are padded, upscaled and cropped."""
        return Scale(scale).unshuffle if self.fixed_scale and scale is not None else 1

    def convolution_grid(self, scale: Optional[Scale]) -> int:
        """Input pixels per position the convolutions see (the unshuffle factor, else 1)."""
        return self.input_multiple(scale)

    @staticmethod
    def receptive_radius(model: keras.Model) -> int:
        """Receptive-field radius of the model's chain of convolutions, in the positions they
        see (times :meth:`convolution_grid` for input pixels)."""
        radius = 0
        stack = list(getattr(model, "layers", []))
        while stack:
            layer = stack.pop()
            stack.extend(getattr(layer, "layers", []))
            ks, dil = getattr(layer, "kernel_size", None), getattr(layer, "dilation_rate", (1, 1))
            if ks is not None:
                radius += (max(ks) - 1) // 2 * max(dil)
        return radius

    def conv_positions(self, in_size, out_size, scale: Optional[Scale]) -> int:
        """Positions each convolution runs at for one frame (for the multiply-add count)."""
        if self.input_at_output_size:
            return out_size[0] * out_size[1]
        g = self.convolution_grid(scale)
        return (in_size[0] // g) * (in_size[1] // g)
