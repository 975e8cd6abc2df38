"""The CPU/GPU stand-in for NPUEstimator: trains an estimator-style model_fn in a monitored session.

tf.estimator is gone from TensorFlow >= 2.16; this keeps the estimator's semantics that the launchers and
users rely on (a checkpoint every save_checkpoints_steps and at the end, keep_checkpoint_max, resume, a stop
at max_steps) and adds what a run needs to survive: a checkpoint right after initialisation, at least two
numbered checkpoints kept, the total loss checked for NaN/Inf after every step before anything is saved, and
SIGTERM/SIGINT turned into a checkpoint and a clean stop. Only the chief (worker 0 of a cluster, or the single
process) checkpoints and restores; every worker initialises its own variables.
"""
import collections
import dataclasses
import os

import tensorflow as tf

import run_safety

# What model_fn returns: the estimator's EstimatorSpec fields the training uses.
ModelSpec = collections.namedtuple("ModelSpec", ["loss", "train_op", "hooks"])
CHECKPOINT_NAME = "model.ckpt"
MIN_KEPT = 2  # a kill during a save damages at most the newest; the one before it must still be there


class SaveFailed(Exception):
    """A checkpoint save's error, raised as this type: the monitored session takes an OutOfRangeError inside its
    block (what TensorFlow raises for a file over the size limit, EFBIG) for the end of the input and would end
    the run as if it were complete, with no checkpoint and exit status 0."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The fields of tf.estimator.RunConfig (NPURunConfig on Ascend) the loop reads, and some of its own."""
    model_dir: str
    save_checkpoints_steps: int
    keep_checkpoint_max: int
    tf_random_seed: int
    session_config: tf.compat.v1.ConfigProto
    check_numerics: bool = False  # stop at the first op that produces inf/NaN, naming it
    is_chief: bool = True
    resume_from: str | None = None  # checkpoint prefix (run_safety.resume_point), None: a fresh run


def saved_variables():
    """{name: shape} of what the loop's Saver writes and restores (model, optimizer slots, EMA, global step)."""
    return {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}


class SessionLoop:
    def __init__(self, model_fn, config, master=""):
        self.model_fn = model_fn  # fn(features, labels) -> ModelSpec, called inside the loop's graph
        self.config = config
        self.master = master

    def train(self, input_fn, max_steps):
        config = self.config
        with tf.Graph().as_default(), run_safety.StopSignals() as stop:
            tf.compat.v1.set_random_seed(config.tf_random_seed)
            features, labels = tf.compat.v1.data.make_one_shot_iterator(input_fn()).get_next()
            spec = self.model_fn(features, labels)
            global_step = tf.compat.v1.train.get_global_step()
            train_op = spec.train_op
            if config.check_numerics:
                train_op = tf.group(train_op, tf.compat.v1.add_check_numerics_ops())
            # A finite loss at step N does not make the weights after step N finite: checked at every save.
            weights_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in tf.compat.v1.global_variables()
                                            if v.dtype.base_dtype.is_floating])
            restore = config.resume_from if config.is_chief else None
            if restore:
                run_safety.check_variables(restore, saved_variables())
            # Relative paths in the `checkpoint` file: a model_dir moved or copied elsewhere still resumes.
            saver = tf.compat.v1.train.Saver(max_to_keep=max(MIN_KEPT, config.keep_checkpoint_max),
                                             save_relative_paths=True)
            # The checkpoints up to the one resumed from take part in the rotation, oldest first, as if this run
            # wrote them; a damaged newer one (skipped by resume_point) must not count as one of the kept.
            resumed_step = int(restore.rsplit("-", 1)[1]) if restore else -1
            saver.recover_last_checkpoints([prefix for number, prefix in reversed(run_safety.numbered_checkpoints(
                config.model_dir)) if number <= resumed_step])
            scaffold = tf.compat.v1.train.Scaffold(saver=saver)
            # The model's hooks first: a broadcast among them must run before the others read the global step.
            hooks = [*spec.hooks, tf.compat.v1.train.StopAtStepHook(last_step=max_steps)]
            # No session recovery (unlike MonitoredTrainingSession): a lost worker ends the run instead of
            # silently re-initialising it.
            with tf.compat.v1.train.SingularMonitoredSession(
                    hooks=hooks, scaffold=scaffold, master=self.master, config=config.session_config,
                    checkpoint_filename_with_path=restore) as session:
                step = int(session.raw_session().run(global_step))
                saved = {"step": step, "path": restore} if restore else {}

                def save():
                    if not config.is_chief:
                        return "on worker 0"
                    if saved.get("step") != step:
                        if not session.raw_session().run(weights_finite):
                            raise run_safety.TrainingDiverged(f"the weights are not finite at step {step}; lower "
                                                              "--learning_rate")
                        try:
                            saved["path"] = saver.save(session.raw_session(), os.path.join(config.model_dir,
                                                                                           CHECKPOINT_NAME), step)
                        except tf.errors.OutOfRangeError as err:
                            raise SaveFailed(err.message) from err
                        saved["step"] = step
                    return saved["path"]

                if restore is None:
                    save()  # a kill at any moment from here on leaves a checkpoint to resume from
                stop.stop_if_requested(step, save)
                while not session.should_stop():
                    _, total_loss = session.run([train_op, spec.loss])
                    step += 1
                    # Before any save: a NaN step must leave the last good checkpoint as the newest.
                    run_safety.check_finite(step, total_loss=total_loss)
                    if step % config.save_checkpoints_steps == 0:
                        save()
                    stop.stop_if_requested(step, save)
                save()
