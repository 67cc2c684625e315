"""Re-parameterisable convolutions: trained as several linear branches, served as one conv.

:class:`RepConv3x3` is SPAN's Conv3XC (Wan et al., NTIRE 2024 efficient SR): a 1x1 convolution
to ``gain`` x the input channels, a 3x3 one to ``gain`` x the output channels, a 1x1 one back,
and a 1x1 skip, with no non-linearity between them. Their sum is one 3x3 convolution, and
that is what the layer runs, in training too: the branches' weights are composed into the one
kernel and bias at every call (:meth:`RepConv3x3.folded`, a few small matrix products), so
training has the branches' optimisation and pays for one convolution, and the function is the
same as running the branches (:meth:`RepConv3x3.branches`, which pads the input first so that
the biases reach the borders as they do through the folded kernel).

:func:`fold` turns every such layer of a model into a plain ``Conv2D`` with the composed
weights (what export writes, what serving runs); :func:`load_weights` fills a model from one
of the same architecture, folded or not (a warm start from an exported model).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def _branch_initializer():
    """LeCun normal for every branch: the composed 3x3 conv then starts at about He's variance
    (with the skip, an output variance about twice the input's), as a plain conv would. With
    PyTorch's default, which SPAN used, each composed conv starts by shrinking its input
    several times (short runs of both: BENCHMARKS.md)."""
    return keras.initializers.VarianceScaling(scale=1.0, mode="fan_in", distribution="truncated_normal")


def _one_by_one(w):
    """A (cin, cout) matrix as a 1x1 convolution kernel."""
    return ops.reshape(w, (1, 1) + tuple(w.shape))


@keras.saving.register_keras_serializable(package="imagesr")
class RepConv3x3(keras.layers.Layer):
    """A 3x3 "same" convolution with bias, trained over-parameterised (see the module doc)."""

    kernel_size = (3, 3)  # what serving runs (read by the receptive-field and multiply-add counts)
    dilation_rate = (1, 1)

    def __init__(self, filters: int, gain: int = 2, **kwargs):
        kwargs.setdefault("autocast", False)  # compose the kernel from float32 weights, then cast
        super().__init__(**kwargs)
        if int(gain) < 1:
            raise ValueError(f"gain must be >= 1, got {gain}")
        self.filters, self.gain = int(filters), int(gain)

    def build(self, input_shape):
        cin, cout, g = int(input_shape[-1]), self.filters, self.gain
        self.input_channels = cin
        init = _branch_initializer()
        self.expand = self.add_weight(shape=(cin, cin * g), initializer=init, name="expand")
        self.expand_bias = self.add_weight(shape=(cin * g,), initializer="zeros", name="expand_bias")
        self.conv = self.add_weight(shape=(3, 3, cin * g, cout * g), initializer=init, name="conv")
        self.conv_bias = self.add_weight(shape=(cout * g,), initializer="zeros", name="conv_bias")
        self.reduce = self.add_weight(shape=(cout * g, cout), initializer=init, name="reduce")
        self.reduce_bias = self.add_weight(shape=(cout,), initializer="zeros", name="reduce_bias")
        self.skip = self.add_weight(shape=(cin, cout), initializer=init, name="skip")
        self.skip_bias = self.add_weight(shape=(cout,), initializer="zeros", name="skip_bias")

    def folded(self):
        """(kernel (3, 3, cin, cout), bias (cout,)) of the one convolution the branches make."""
        k = ops.einsum("hwib,bo->hwio", ops.einsum("ia,hwab->hwib", self.expand, self.conv), self.reduce)
        k = k + ops.pad(ops.reshape(self.skip, (1, 1, self.input_channels, self.filters)),
                        [[1, 1], [1, 1], [0, 0], [0, 0]])
        through = ops.einsum("a,hwab->b", self.expand_bias, self.conv) + self.conv_bias
        b = ops.matmul(through, self.reduce) + self.reduce_bias + self.skip_bias
        return k, b

    def call(self, x):
        k, b = self.folded()
        return ops.conv(x, ops.cast(k, x.dtype), padding="same") + ops.cast(b, x.dtype)

    def branches(self, x):
        """The same function computed branch by branch, as the paper trains it (for checks)."""
        h = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        h = ops.conv(h, _one_by_one(self.expand)) + self.expand_bias
        h = ops.conv(h, self.conv, padding="valid") + self.conv_bias
        h = ops.conv(h, _one_by_one(self.reduce)) + self.reduce_bias
        return h + ops.conv(x, _one_by_one(self.skip)) + self.skip_bias

    def set_folded(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        """Set the branches so that they fold into ``kernel`` and ``bias`` (a warm start from an
        exported model): the 1x1 branches keep their weights and the 3x3 branch takes the rest,
        through the pseudo-inverses of the 1x1 maps (exact: ``expand`` widens and ``reduce``
        narrows, so both have full rank)."""
        e, r = (np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in (self.expand, self.reduce))
        s = np.asarray(keras.ops.convert_to_numpy(self.skip), np.float64)
        rest = np.asarray(kernel, np.float64).copy()
        rest[1, 1] -= s
        conv = np.einsum("ai,hwio,ob->hwab", np.linalg.pinv(e), rest, np.linalg.pinv(r))
        be = np.asarray(keras.ops.convert_to_numpy(self.expand_bias), np.float64)
        tail = np.asarray(bias, np.float64) - keras.ops.convert_to_numpy(self.reduce_bias) - keras.ops.convert_to_numpy(self.skip_bias)
        conv_bias = tail @ np.linalg.pinv(r) - np.einsum("a,hwab->b", be, conv)
        self.conv.assign(conv.astype(np.float32))
        self.conv_bias.assign(conv_bias.astype(np.float32))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "gain": self.gain}


def _as_conv(layer: RepConv3x3) -> dict:
    """The serialised ``Conv2D`` a :class:`RepConv3x3` folds into (same name and dtype policy)."""
    conv = keras.layers.Conv2D(layer.filters, 3, padding="same", name=layer.name, dtype=layer.dtype_policy)
    return keras.saving.serialize_keras_object(conv)


def fold(model: keras.Model) -> keras.Model:
    """``model`` with every :class:`RepConv3x3` replaced by the ``Conv2D`` it folds into (the
    model itself when it has none). Same outputs up to float rounding; a functional model's
    top-level layers only."""
    reps = {layer.name: layer for layer in model.layers if isinstance(layer, RepConv3x3)}
    if not reps:
        return model
    config = model.get_config()
    for entry in config["layers"]:
        if entry["name"] in reps:
            entry.update({k: v for k, v in _as_conv(reps[entry["name"]]).items() if k != "build_config"})
    folded = model.__class__.from_config(config)
    for layer in folded.layers:
        src = model.get_layer(layer.name)
        if layer.name in reps:
            layer.set_weights([np.asarray(keras.ops.convert_to_numpy(w), np.float32) for w in src.folded()])
        else:
            layer.set_weights(src.get_weights())
    return folded


def load_weights(model: keras.Model, src: keras.Model) -> None:
    """Give ``model`` the weights of ``src``, a model of the same architecture that may have been
    folded (:func:`fold`): each layer takes its namesake's weights, a re-parameterisable one
    from the ``Conv2D`` it was folded into through :meth:`RepConv3x3.set_folded`."""
    if not any(isinstance(layer, RepConv3x3) for layer in model.layers):
        model.set_weights(src.get_weights())
        return
    for layer in model.layers:
        if not layer.weights:
            continue
        other = src.get_layer(layer.name)
        if isinstance(layer, RepConv3x3) and not isinstance(other, RepConv3x3):
            layer.set_folded(*other.get_weights())
        else:
            layer.set_weights(other.get_weights())
