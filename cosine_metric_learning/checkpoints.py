"""Checkpoints: --restore_path lookup, the network's variables, resume or warm start, timed saving, the
checks that keep a checkpoint of another model or NaN weights from being used or written."""
import os
import time
from dataclasses import dataclass

import tensorflow as tf

import run_safety
from datasets.util import UsageError

PREFIX = "model.ckpt"


def resolve(path, flag="--restore_path"):
    """A checkpoint flag may name a checkpoint prefix or a folder holding checkpoints (its newest that loads)."""
    if path is None:
        raise UsageError(f"{flag}: required in this mode")
    if os.path.isdir(path):
        # Numbered checkpoints by listing (a moved folder); else the state file's (finalize's <name>.ckpt).
        found = run_safety.resume_point(path) or tf.train.latest_checkpoint(path)
        if found is None:
            raise UsageError(f"{flag}: no checkpoint in folder {path}")
        return found
    if not tf.io.gfile.exists(path + ".index"):
        raise UsageError(f"{flag}: {path} is not a checkpoint (no {path}.index)")
    return path


def trunk_variables():
    """Variables of the descriptor network (no classifier, no optimizer slots, no step)."""
    return [v for v in tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES)
            if not v.op.name.startswith("ball/")]


def restore(sess, checkpoint, variables, what):
    """Restores variables from checkpoint after check_variables: another model's checkpoint is one line."""
    run_safety.check_variables(checkpoint, {v.op.name: v.shape.as_list() for v in variables}, what)
    tf.compat.v1.train.Saver(variables).restore(sess, checkpoint)


def restore_trunk(sess, checkpoint):
    """The network's variables (warm start, eval, export, finalize, freeze); NaN/Inf weights are refused,
    so nothing is exported or frozen from them."""
    variables = trunk_variables()
    checks = finite_checks(variables)
    restore(sess, checkpoint, variables, "this network")
    refuse_non_finite(sess, checks, checkpoint)


@dataclass(frozen=True)
class Start:
    """Where a new training run's variables come from (resolved checkpoint prefixes, or None)."""
    restore_path: str = None  # --restore_path: every variable, step included: that run goes on
    warm_start_path: str = None  # --warm_start_path: the network only; step 1, new classifier and optimizer


def resume_or_initialise(sess, saver, run_dir, start=Start()):
    """Resumes from run_dir's newest loadable checkpoint (found by listing, so a moved folder resumes); else
    restores start.restore_path whole, or the network from start.warm_start_path.

    Returns (the checkpoint resumed or restored, or None; that checkpoint when it is run_dir's own)."""
    latest = run_safety.resume_point(run_dir)
    if latest:
        restore(sess, latest, tf.compat.v1.global_variables(), "this training run")
        # The saver deletes only checkpoints it knows of: hand it those of the earlier runs, oldest first.
        saver.recover_last_checkpoints([p for _, p in reversed(run_safety.numbered_checkpoints(run_dir))])
        if start.restore_path or start.warm_start_path:
            print(f"{run_dir} holds checkpoints of this run: they win over --restore_path / --warm_start_path")
        return latest, latest
    if start.restore_path:
        try:
            restore(sess, start.restore_path, tf.compat.v1.global_variables(), "this training run")
        except run_safety.RunSafetyError as err:
            raise run_safety.RunSafetyError(f"{err} (--warm_start_path takes its network only)") from None
        return start.restore_path, None
    if start.warm_start_path:
        restore_trunk(sess, start.warm_start_path)
        print(f"initialised the network from {start.warm_start_path}")
    return None, None


def finite_checks(variables):
    """{name: op that is True when every value of the variable is finite}, for the floating variables."""
    return {v.op.name: tf.reduce_all(tf.math.is_finite(v)) for v in variables if v.dtype.base_dtype.is_floating}


def first_non_finite(sess, checks):
    """The first (by name) variable holding NaN or Inf, or None."""
    finite = sess.run(checks)
    return next((name for name in sorted(finite) if not finite[name]), None)


def refuse_non_finite(sess, checks, source):
    """RunSafetyError before anything is written from weights that hold NaN or Inf."""
    bad = first_non_finite(sess, checks)
    if bad is not None:
        raise run_safety.RunSafetyError(f"{source}: {bad} holds NaN or Inf values; nothing written")


class TimedSaver:
    """Saves run_dir/model.ckpt-<step> every interval_secs and on demand (step 0, a stop, the end), never
    from weights that hold NaN or Inf (weights_ok(step) raises first)."""

    def __init__(self, saver, run_dir, interval_secs, clock=time.time, weights_ok=lambda step: None):
        self.saver = saver
        self.prefix = os.path.join(run_dir, PREFIX)
        self.interval_secs = interval_secs
        self.clock = clock
        self.weights_ok = weights_ok
        self.last = clock()
        self.saved = None  # (step, path) of the newest checkpoint on disk

    def maybe_save(self, sess, step):
        if self.clock() - self.last > self.interval_secs:
            self.save(sess, step)

    def save(self, sess, step):
        """Returns the checkpoint's path; a step already on disk is not written again (a kill while
        overwriting it could damage a good checkpoint)."""
        if self.saved is None or self.saved[0] != step:
            self.weights_ok(step)
            self.saved = (step, self.saver.save(sess, self.prefix, global_step=step))
        self.last = self.clock()
        return self.saved[1]

    def already_saved(self, step, path):
        self.saved = (step, path)
