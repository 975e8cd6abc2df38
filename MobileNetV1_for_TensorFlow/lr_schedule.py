"""The learning-rate rule: one pure function of the step, evaluated with NumPy or built as a TensorFlow op.

Linear warm-up lr * (step + 1) / warmup_steps while step < warmup_steps, then by decay type:
  fixed             lr
  exponential       lr * decay_factor ** floor(step / decay_steps)
  polynomial        (lr - end_lr) * (1 - min(step, decay_steps) / decay_steps) + end_lr
  cosine_annealing  0.5 * lr * (1 + cos(pi * (epoch - warmup_epochs) / (total_epochs - warmup_epochs))),
                    epoch = floor(step / steps_per_epoch): updated once per epoch, toward 0
"""
import dataclasses
import math
import types

import numpy as np


@dataclasses.dataclass(frozen=True)
class Schedule:
    kind: str
    learning_rate: float
    steps_per_epoch: int
    total_epochs: int
    warmup_epochs: float
    decay_steps: int
    decay_factor: float
    end_learning_rate: float

    @property
    def warmup_steps(self):
        return int(round(self.warmup_epochs * self.steps_per_epoch))


def _fixed(step, s, xp):
    return s.learning_rate + 0.0 * step


def _exponential(step, s, xp):
    return s.learning_rate * s.decay_factor ** xp.floor(step / s.decay_steps)


def _polynomial(step, s, xp):
    fraction = xp.minimum(step, float(s.decay_steps)) / s.decay_steps
    return (s.learning_rate - s.end_learning_rate) * (1.0 - fraction) + s.end_learning_rate


def _cosine_annealing(step, s, xp):
    epoch = xp.floor(step / s.steps_per_epoch)
    span = max(s.total_epochs - s.warmup_epochs, 1.0)
    progress = xp.clip((epoch - s.warmup_epochs) / span, 0.0, 1.0)
    return 0.5 * s.learning_rate * (1.0 + xp.cos(math.pi * progress))


DECAYS = {"fixed": _fixed, "exponential": _exponential, "cosine_annealing": _cosine_annealing,
          "polynomial": _polynomial}


def rate(step, schedule, xp=np):
    """The learning rate at `step`: a float (array) with xp=numpy, a float32 tensor with tensor()'s ops."""
    decayed = DECAYS[schedule.kind](step, schedule, xp)
    warmup = schedule.warmup_steps
    if warmup > 0:
        decayed = xp.where(step < warmup, schedule.learning_rate * (step + 1.0) / warmup, decayed)
    return decayed


def tensor(global_step, schedule):
    """rate() as the graph's `learning_rate` tensor."""
    import tensorflow as tf  # here, not above: train.py's flag parser reads DECAYS before TensorFlow loads

    # The NumPy names the rule uses, as TensorFlow ops: the same code gives the graph's tensor.
    ops = types.SimpleNamespace(floor=tf.floor, minimum=tf.minimum, clip=tf.clip_by_value, cos=tf.cos,
                                where=tf.where)
    return tf.identity(rate(tf.cast(global_step, tf.float32), schedule, ops), name="learning_rate")
