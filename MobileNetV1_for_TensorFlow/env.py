"""Hyper-parameter environment: ranks, seeds, epoch arithmetic, learning-rate schedule and optimizer.

Ranks come from RANK_ID / RANK_SIZE; the global batch is batch_size x RANK_SIZE and one epoch is
num_train_samples (1,281,167 for ImageNet) / global batch steps.
"""
import math
import os
import random

import numpy as np
import tensorflow as tf

IMAGENET_TRAIN_SAMPLES = 1281167
DECAY_TYPES = ("fixed", "exponential", "cosine_annealing", "polynomial")
OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adagrad", "adadelta", "ftrl")


class HyperParams:
    """Derived run settings. `args` is the parsed train.py namespace (or any object with those fields)."""

    def __init__(self, args, environ=None):
        environ = os.environ if environ is None else environ
        self.args = args
        self.rank_id = int(environ.get("RANK_ID", "0"))
        self.rank_size = int(environ.get("RANK_SIZE", "1"))
        if not 0 <= self.rank_id < self.rank_size:
            raise ValueError(f"RANK_ID {self.rank_id} is not in 0..RANK_SIZE-1 (RANK_SIZE {self.rank_size})")
        self.global_batch_size = args.batch_size * self.rank_size
        self.steps_per_epoch = max(1, args.num_train_samples // self.global_batch_size)
        if args.max_epoch:
            self.max_train_steps = args.max_epoch * self.steps_per_epoch
        else:
            self.max_train_steps = args.max_train_steps
        self.total_epochs = max(1, math.ceil(self.max_train_steps / self.steps_per_epoch))
        self.warmup_steps = int(round(args.warmup_epochs * self.steps_per_epoch))
        self.decay_steps = max(1, int(self.steps_per_epoch * args.num_epochs_per_decay))
        self.model_dir = os.path.join(args.model_dir, str(self.rank_id))
        self.on_npu = False  # train.py sets these two: the Ascend adapter, or a distributed.Cluster off Ascend
        self.cluster = None

    def __getattr__(self, name):  # the flags themselves (batch_size, learning_rate, ...)
        return getattr(self.__dict__["args"], name)


def set_seeds(seed):
    """Same seed on every rank, so that all ranks start from the same weights."""
    random.seed(seed)
    np.random.seed(seed)
    tf.compat.v1.set_random_seed(seed)


def learning_rate(global_step, hp):
    """The schedule as a tensor of global_step (see README "Learning rate" for the formulas).

    Linear warm-up lr * (step + 1) / warmup_steps for step < warmup_steps, then:
      fixed             lr
      exponential       lr * decay_factor ** floor(step / decay_steps)
      polynomial        (lr - end_lr) * (1 - min(step, decay_steps) / decay_steps) + end_lr
      cosine_annealing  0.5 * lr * (1 + cos(pi * (epoch - warmup_epochs) / (total_epochs - warmup_epochs))),
                        epoch = floor(step / steps_per_epoch): updated once per epoch, toward 0
    """
    base = tf.constant(hp.learning_rate, tf.float32)
    step = tf.cast(global_step, tf.float32)
    kind = hp.learning_rate_decay_type
    if kind == "fixed":
        decayed = base
    elif kind == "exponential":
        decayed = base * tf.pow(tf.constant(hp.learning_rate_decay_factor, tf.float32),
                                tf.floor(step / hp.decay_steps))
    elif kind == "polynomial":
        fraction = tf.minimum(step, float(hp.decay_steps)) / hp.decay_steps
        decayed = (base - hp.end_learning_rate) * (1.0 - fraction) + hp.end_learning_rate
    elif kind == "cosine_annealing":
        epoch = tf.floor(step / hp.steps_per_epoch)
        warmup_epochs = float(hp.warmup_epochs)
        span = max(hp.total_epochs - warmup_epochs, 1.0)
        progress = tf.clip_by_value((epoch - warmup_epochs) / span, 0.0, 1.0)
        decayed = 0.5 * base * (1.0 + tf.cos(math.pi * progress))
    else:
        raise ValueError(f"unknown learning_rate_decay_type {kind!r}")
    if hp.warmup_steps > 0:
        warm = base * (step + 1.0) / hp.warmup_steps
        decayed = tf.where(step < hp.warmup_steps, warm, decayed)
    return tf.identity(decayed, name="learning_rate")


def optimizer(lr, hp):
    """slim's optimizer choices with slim's default settings."""
    kind = hp.optimizer
    v1 = tf.compat.v1.train
    if kind == "sgd":
        return v1.GradientDescentOptimizer(lr)
    if kind == "momentum":
        return v1.MomentumOptimizer(lr, momentum=hp.momentum, name="Momentum")
    if kind == "adam":
        return v1.AdamOptimizer(lr, beta1=0.9, beta2=0.999, epsilon=1.0)
    if kind == "rmsprop":
        return v1.RMSPropOptimizer(lr, decay=0.9, momentum=hp.momentum, epsilon=1.0)
    if kind == "adagrad":
        return v1.AdagradOptimizer(lr, initial_accumulator_value=0.1)
    if kind == "adadelta":
        return v1.AdadeltaOptimizer(lr, rho=0.95, epsilon=1.0)
    if kind == "ftrl":
        return v1.FtrlOptimizer(lr, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                                l1_regularization_strength=0.0, l2_regularization_strength=0.0)
    raise ValueError(f"unknown optimizer {kind!r}")
