"""The training graph (model_fn) and the run: the same model_fn for NPUEstimator on Ascend and the session
loop elsewhere (mobilenet_device chooses).

The graph: tf-slim MobileNet v1, softmax cross-entropy with label smoothing (tensor `loss`) + L2 = `total_loss`,
the lr schedule (lr_schedule.py), the optimizer wrapped by the device, batch-norm updates before the step,
an optional exponential moving average of the model variables after it, and the step logger (logger.py).
"""
import os

import tensorflow as tf

import logger
import lr_schedule
import optimizers
import run_safety
import session_loop
from nets import nets_factory
from nets.slim_compat import slim


def _warm_start_point(restore_path):
    """The checkpoint --restore_path names: a prefix, or the newest one in a folder that loads."""
    if os.path.isdir(restore_path):
        prefix = run_safety.resume_point(restore_path)
        if prefix is None:
            raise run_safety.RunSafetyError(f"--restore_path={restore_path}: no checkpoint in this folder")
        return prefix
    problem = run_safety.load_problem(restore_path)
    if problem:
        raise run_safety.RunSafetyError(f"--restore_path={restore_path}: not a readable checkpoint: {problem}")
    return restore_path


def _warm_start(params):
    """Model variables from --restore_path, minus the --restore_exclude scopes, as slim's warm start: every
    variable not excluded must be there with its shape (a checkpoint of another model is an error, not a
    silent random start); the global step and optimizer slots start afresh."""
    path = _warm_start_point(params.restore_path)
    variables = slim.get_model_variables()
    wanted = {v.op.name: v for v in variables if not v.op.name.startswith(params.restore_exclude)}
    if not wanted:
        raise run_safety.RunSafetyError(f"--restore_exclude={','.join(params.restore_exclude)}: excludes every "
                                        "model variable, nothing would be warm-started")
    run_safety.check_variables(path, {name: v.shape.as_list() for name, v in wanted.items()})
    tf.compat.v1.train.init_from_checkpoint(path, wanted)
    print(f"warm start from {path}: loaded {len(wanted)} of the model's {len(variables)} variables "
          f"(excluded scopes: {list(params.restore_exclude) or 'none'})", flush=True)


def model_fn_for(params, device, step_logger, warm_start=False):
    """fn(features, labels) -> session_loop.ModelSpec: features are images [b, s, s, 3] in [-1, 1], labels
    int32 [b] in [0, num_classes). step_logger: a logger.StepLogger, given the graph's tensors here.
    warm_start: initialise from --restore_path (a fresh run only)."""

    def model_fn(features, labels):
        network_fn = nets_factory.get_network_fn(params.model_name, params.num_classes, params.weight_decay,
                                                 is_training=True, batch_norm_decay=params.batch_norm_decay)
        logits, _ = network_fn(features)
        onehot = tf.one_hot(labels, params.num_classes)
        xent = tf.compat.v1.losses.softmax_cross_entropy(onehot, logits, label_smoothing=params.label_smoothing)
        loss = tf.identity(xent, name="loss")
        regularization = tf.compat.v1.losses.get_regularization_losses()
        total_loss = tf.identity(tf.add_n([loss] + regularization), name="total_loss")

        global_step = tf.compat.v1.train.get_or_create_global_step()
        if warm_start:
            _warm_start(params)
        lr = lr_schedule.tensor(global_step, params.schedule)
        opt = device.wrap_optimizer(optimizers.build(params.optimizer, lr, params.momentum))
        # Batch-norm moving statistics update before the step, as slim's train op does.
        with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
            step_op = opt.minimize(total_loss, global_step=global_step)
        trainable = set(tf.compat.v1.trainable_variables())
        step_op = device.synchronize(step_op, [v for v in slim.get_model_variables() if v not in trainable])
        if params.moving_average_decay:
            ema = tf.compat.v1.train.ExponentialMovingAverage(params.moving_average_decay, num_updates=global_step)
            with tf.control_dependencies([step_op]):
                step_op = ema.apply(slim.get_model_variables())
        # The batch's top-1, fetched at logging steps only (TensorBoard's train_top1).
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=labels.dtype), labels), tf.float32))
        step_logger.watch({"loss": loss, "total_loss": total_loss, "lr": lr, "accuracy": accuracy,
                           "global_step": global_step})
        return session_loop.ModelSpec(total_loss, step_op, [*device.broadcast_hooks(), step_logger])

    return model_fn


def train(params, input_fn, device, summary_dir):
    """Trains up to params.max_train_steps, resuming from the newest checkpoint in model_dir that loads (damaged
    ones skipped with a warning). Returns the newest checkpoint and the step logger (the steps' times, the last
    loss); the logged values go to summary_dir as TensorBoard scalars."""
    resume = run_safety.resume_point(params.model_dir)
    if resume:
        print(f"resuming from {resume} at step {resume.rsplit('-', 1)[1]}", flush=True)
    run_config = device.run_config(
        model_dir=params.model_dir, save_checkpoints_steps=params.steps_per_epoch,
        keep_checkpoint_max=params.keep_checkpoint_max, iterations_per_loop=params.iterations_per_loop,
        seed=params.seed, over_dump=params.over_dump, resume_from=resume)
    step_logger = logger.StepLogger(
        params.iterations_per_loop, params.global_batch_size, params.steps_per_epoch, params.max_train_steps,
        os.path.join(params.model_dir, "train_log.log"), summary_dir,
        steps_per_run=device.steps_per_run(params.iterations_per_loop))
    model_fn = model_fn_for(params, device, step_logger, warm_start=bool(params.restore_path) and resume is None)
    device.estimator(model_fn, run_config).train(input_fn=input_fn, max_steps=params.max_train_steps)
    newest = run_safety.numbered_checkpoints(params.model_dir)
    return (newest[0][1] if newest else None), step_logger
