"""The CPU/GPU stand-in for NPUEstimator: trains an estimator-style model_fn in a monitored session.

tf.estimator is gone from TensorFlow >= 2.16; this keeps the estimator's semantics that the launchers and
users rely on: checkpoints every save_checkpoints_steps and at the end, keep_checkpoint_max, resume from the
newest checkpoint in model_dir, a StopAtStepHook on max_steps and a NaN guard. Only the chief (worker 0 of a
cluster, or the single process) checkpoints and restores; every worker initialises its own variables.
"""
import collections
import dataclasses

import tensorflow as tf

# What model_fn returns: the estimator's EstimatorSpec fields the training uses.
ModelSpec = collections.namedtuple("ModelSpec", ["loss", "train_op", "hooks"])


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The fields of tf.estimator.RunConfig (NPURunConfig on Ascend) the loop reads, and two of its own."""
    model_dir: str
    save_checkpoints_steps: int
    keep_checkpoint_max: int
    tf_random_seed: int
    session_config: tf.compat.v1.ConfigProto
    check_numerics: bool = False  # stop at the first op that produces inf/NaN, naming it
    is_chief: bool = True


class SessionLoop:
    def __init__(self, model_fn, config, master=""):
        self.model_fn = model_fn  # fn(features, labels) -> ModelSpec, called inside the loop's graph
        self.config = config
        self.master = master

    def train(self, input_fn, max_steps):
        config = self.config
        with tf.Graph().as_default():
            tf.compat.v1.set_random_seed(config.tf_random_seed)
            features, labels = tf.compat.v1.data.make_one_shot_iterator(input_fn()).get_next()
            spec = self.model_fn(features, labels)
            train_op = spec.train_op
            if config.check_numerics:
                train_op = tf.group(train_op, tf.compat.v1.add_check_numerics_ops())
            # Relative paths in the `checkpoint` file: a model_dir moved or copied elsewhere still resumes.
            saver = tf.compat.v1.train.Saver(max_to_keep=config.keep_checkpoint_max, save_relative_paths=True)
            scaffold = tf.compat.v1.train.Scaffold(saver=saver)
            # The model's hooks first: a broadcast among them must run before the others read the global step.
            hooks = [*spec.hooks, tf.compat.v1.train.StopAtStepHook(last_step=max_steps),
                     tf.compat.v1.train.NanTensorHook(spec.loss)]
            if config.is_chief:
                hooks.append(tf.compat.v1.train.CheckpointSaverHook(
                    config.model_dir, save_steps=config.save_checkpoints_steps, scaffold=scaffold))
            # No session recovery (unlike MonitoredTrainingSession): a lost worker ends the run instead of
            # silently re-initialising it.
            with tf.compat.v1.train.SingularMonitoredSession(
                    hooks=hooks, scaffold=scaffold, master=self.master, config=config.session_config,
                    checkpoint_dir=config.model_dir if config.is_chief else None) as session:
                while not session.should_stop():
                    session.run(train_op)
