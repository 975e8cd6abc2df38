"""The training run's parameters, built once from the train.py flags and the rank environment.

Ranks come from RANK_ID / RANK_SIZE; the global batch is batch_size x RANK_SIZE and one epoch is
num_train_samples (1,281,167 for ImageNet) / global batch steps.
"""
import dataclasses
import math
import os
import random

import numpy as np

import lr_schedule

DEFAULT_EPOCHS = 300  # the original README's --max_epoch default, used when no length is given


@dataclasses.dataclass(frozen=True)
class TrainParams:
    model_name: str
    num_classes: int
    weight_decay: float
    batch_norm_decay: float
    label_smoothing: float
    moving_average_decay: float | None  # None: no exponential moving average of the weights
    optimizer: str
    momentum: float
    schedule: lr_schedule.Schedule
    restore_path: str | None
    restore_exclude: tuple[str, ...]
    rank_id: int
    rank_size: int
    batch_size: int  # per rank
    max_train_steps: int
    iterations_per_loop: int
    keep_checkpoint_max: int
    over_dump: bool
    seed: int
    model_dir: str  # this rank's folder, <--model_dir>/<RANK_ID>

    @property
    def global_batch_size(self):
        return self.batch_size * self.rank_size

    @property
    def steps_per_epoch(self):
        return self.schedule.steps_per_epoch


def from_args(args, environ):
    """TrainParams of the parsed train.py flags; ValueError names RANK_ID/RANK_SIZE when they do not fit."""
    rank_id = int(environ.get("RANK_ID", "0"))
    rank_size = int(environ.get("RANK_SIZE", "1"))
    if not 0 <= rank_id < rank_size:
        raise ValueError(f"RANK_ID {rank_id} is not in 0..RANK_SIZE-1 (RANK_SIZE {rank_size})")
    steps_per_epoch = max(1, args.num_train_samples // (args.batch_size * rank_size))
    max_train_steps = args.max_train_steps or (args.max_epoch or DEFAULT_EPOCHS) * steps_per_epoch
    schedule = lr_schedule.Schedule(
        kind=args.learning_rate_decay_type, learning_rate=args.learning_rate, steps_per_epoch=steps_per_epoch,
        total_epochs=max(1, math.ceil(max_train_steps / steps_per_epoch)), warmup_epochs=args.warmup_epochs,
        decay_steps=max(1, int(steps_per_epoch * args.num_epochs_per_decay)),
        decay_factor=args.learning_rate_decay_factor, end_learning_rate=args.end_learning_rate)
    return TrainParams(
        model_name=args.model_name, num_classes=args.num_classes, weight_decay=args.weight_decay,
        batch_norm_decay=args.batch_norm_decay, label_smoothing=args.label_smoothing,
        moving_average_decay=args.moving_average_decay, optimizer=args.optimizer, momentum=args.momentum,
        schedule=schedule, restore_path=args.restore_path,
        restore_exclude=tuple(s.strip() for s in (args.restore_exclude or "").split(",") if s.strip()),
        rank_id=rank_id, rank_size=rank_size, batch_size=args.batch_size, max_train_steps=max_train_steps,
        iterations_per_loop=args.iterations_per_loop or steps_per_epoch, keep_checkpoint_max=args.keep_checkpoint_max,
        over_dump=args.over_dump, seed=args.seed, model_dir=os.path.join(args.model_dir, str(rank_id)))


def set_seeds(seed):
    """Same seed on every rank, so that all ranks start from the same weights."""
    import tensorflow as tf  # here, not above: train.py's flag parser reads DEFAULT_EPOCHS before TensorFlow loads

    random.seed(seed)
    np.random.seed(seed)
    tf.compat.v1.set_random_seed(seed)
