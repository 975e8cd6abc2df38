"""Checkpoints: --restore_path lookup, the network's variables, resume or warm start, timed saving."""
import os
import time

import tensorflow as tf

from datasets.util import UsageError

PREFIX = "model.ckpt"


def resolve(path):
    """--restore_path may name a checkpoint prefix or a folder holding checkpoints."""
    if path is None:
        raise UsageError("--restore_path: required in this mode")
    if os.path.isdir(path):
        found = tf.train.latest_checkpoint(path)
        if found is None:
            raise UsageError(f"--restore_path: no checkpoint in folder {path}")
        return found
    if not tf.io.gfile.exists(path + ".index"):
        raise UsageError(f"--restore_path: {path} is not a checkpoint (no {path}.index)")
    return path


def trunk_variables():
    """Variables of the descriptor network (no classifier, no optimizer slots, no step)."""
    return [v for v in tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES)
            if not v.op.name.startswith("ball/")]


def restore_or_initialise(sess, saver, run_dir, restore_path):
    """Resumes from run_dir's latest checkpoint; else the network starts from --restore_path if given."""
    latest = tf.train.latest_checkpoint(run_dir)
    if latest:
        saver.restore(sess, latest)
        print(f"resuming from {latest}")
    elif restore_path:
        source = resolve(restore_path)
        tf.compat.v1.train.Saver(trunk_variables()).restore(sess, source)
        print(f"initialised the network from {source}")


class TimedSaver:
    """Saves run_dir/model.ckpt-<step> every interval_secs, and on demand at the end."""

    def __init__(self, saver, run_dir, interval_secs, clock=time.time):
        self.saver = saver
        self.prefix = os.path.join(run_dir, PREFIX)
        self.interval_secs = interval_secs
        self.clock = clock
        self.last = clock()

    def maybe_save(self, sess, step):
        if self.clock() - self.last > self.interval_secs:
            self.save(sess, step)

    def save(self, sess, step):
        self.saver.save(sess, self.prefix, global_step=step)
        self.last = self.clock()
