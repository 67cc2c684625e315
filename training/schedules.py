"""Learning-rate schedules, registered with Keras so a compiled model saves and loads cleanly."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="imagesr")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup`` steps, then a cosine down to
    ``peak * alpha`` over ``decay`` steps, then flat (the trainer's fixed-steps schedule; a
    time-budget run sets the rate per short epoch instead, see ``imagesr.training.trainer``).
    """

    def __init__(self, peak: float, warmup: int, decay: int, alpha: float = 0.01):
        self.peak, self.warmup, self.decay, self.alpha = float(peak), int(warmup), max(int(decay), 1), float(alpha)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup, 1)
        t = ops.clip((step - self.warmup) / self.decay, 0.0, 1.0)
        cos = self.peak * (self.alpha + (1 - self.alpha) * 0.5 * (1 + ops.cos(math.pi * t)))
        return ops.where(step < self.warmup, warm, cos)

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup, "decay": self.decay, "alpha": self.alpha}
