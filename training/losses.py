"""SR losses on [0, 255] images, measured on the [0, 1] scale (so learning rates transfer).
Registered with Keras so a compiled model saves and loads cleanly."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="imagesr")
def sr_l1(y_true, y_pred):
    return ops.mean(ops.abs((y_pred - y_true) / 255.0))


@keras.saving.register_keras_serializable(package="imagesr")
def sr_l2(y_true, y_pred):
    d = (y_pred - y_true) / 255.0
    return ops.mean(d * d)


LOSSES = {"l1": sr_l1, "l2": sr_l2}
