"""The model_fn and the run loop.

model_fn(features, labels, mode, params) builds the same graph for every runner. With the Ascend adapter
(npu_bridge) the run goes through NPUEstimator as the original; tf.estimator is gone from current
TensorFlow, so elsewhere SessionLoop runs the same model_fn in a tf.compat.v1 monitored session
with the estimator's semantics: checkpoints every save_checkpoints_steps (one epoch) and at the end,
keep_checkpoint_max, resume from the newest checkpoint in model_dir, a StopAtStepHook on max_steps,
a NaN guard, and the step logger every iterations_per_loop steps. With params.cluster (several workers,
see distributed.py) gradients are all-reduced, batch-norm statistics averaged, variables broadcast from
worker 0 after initialisation, and only worker 0 checkpoints.
"""
import collections
import importlib.util
import os

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import distributed
from nets import nets_factory
from nets.slim_compat import slim

TRAIN, EVAL, PREDICT = "train", "eval", "infer"
ModelSpec = collections.namedtuple("ModelSpec", ["mode", "loss", "train_op", "predictions", "tensors"])
MIXED_MODES = ("allow_mix_precision", "allow_fp32_to_fp16", "force_fp16")


def npu_available():
    return importlib.util.find_spec("npu_bridge") is not None


def session_config(precision_mode):
    """(ConfigProto, description). Off Ascend: float16 mixed on GPU; float32 on CPU (see README)."""
    config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    if tf.config.list_physical_devices("GPU"):
        config.gpu_options.allow_growth = True
        if precision_mode in MIXED_MODES:
            config.graph_options.rewrite_options.auto_mixed_precision = RewriterConfig.ON
            return config, f"GPU, float16 mixed ({precision_mode})"
        return config, "GPU, float32"
    # oneDNN's bf16 rewrite made this depthwise network slower even on CPUs with native bf16
    # (0.83x measured), and emulated bf16 is slower still, so CPU training stays float32.
    return config, f"CPU, float32 ({precision_mode} requested; bf16 is slower for depthwise convolutions)"


def _restore_from(params):
    """Warm start from --restore_path minus --restore_exclude scopes (only when model_dir has no checkpoint)."""
    path = params.restore_path
    if os.path.isdir(path):
        path = tf.train.latest_checkpoint(path)
        if path is None:
            raise ValueError(f"--restore_path {params.restore_path}: no checkpoint in this folder")
    available = dict(tf.train.list_variables(path))
    exclude = [s.strip() for s in (params.restore_exclude or "").split(",") if s.strip()]
    assignment = {}
    for var in slim.get_variables_to_restore(exclude=exclude):
        name = var.op.name
        if name in available and available[name] == var.shape.as_list():
            assignment[name] = var
    tf.compat.v1.train.init_from_checkpoint(path, assignment)
    print(f"warm start from {path}: {len(assignment)} variables (excluded scopes: {exclude or 'none'})", flush=True)


def model_fn(features, labels, mode, params):
    """features: images [b, s, s, 3] in [-1, 1]; labels: int32 [b] in [0, num_classes)."""
    is_training = mode == TRAIN
    network_fn = nets_factory.get_network_fn(params.model_name, params.num_classes, params.weight_decay,
                                             is_training=is_training, batch_norm_decay=params.batch_norm_decay)
    logits, end_points = network_fn(features)
    predictions = {"classes": tf.argmax(logits, axis=1, output_type=tf.int32),
                   "probabilities": end_points["Predictions"], "logits": logits}
    if mode == PREDICT:
        return ModelSpec(mode, None, None, predictions, {})

    onehot = tf.one_hot(labels, params.num_classes)
    xent = tf.compat.v1.losses.softmax_cross_entropy(onehot, logits, label_smoothing=params.label_smoothing)
    loss = tf.identity(xent, name="loss")
    regularization = tf.compat.v1.losses.get_regularization_losses()
    total_loss = tf.identity(tf.add_n([loss] + regularization), name="total_loss")
    accuracy = tf.reduce_mean(tf.cast(tf.equal(predictions["classes"], labels), tf.float32), name="train_accuracy")
    tensors = {"loss": loss, "total_loss": total_loss, "accuracy": accuracy}
    if mode != TRAIN:
        return ModelSpec(mode, total_loss, None, predictions, tensors)

    import env  # the optimizer and schedule live with the other hyper-parameters

    global_step = tf.compat.v1.train.get_or_create_global_step()
    if params.restore_path and not tf.train.latest_checkpoint(params.model_dir):
        _restore_from(params)
    lr = env.learning_rate(global_step, params)
    opt = env.optimizer(lr, params)
    if params.cluster:
        opt = distributed.AllReduceOptimizer(opt, params.cluster)
    elif params.on_npu:
        from npu_bridge.estimator.npu.npu_loss_scale_manager import FixedLossScaleManager
        from npu_bridge.estimator.npu.npu_loss_scale_optimizer import NPULossScaleOptimizer
        from npu_bridge.estimator.npu.npu_optimizer import NPUDistributedOptimizer

        opt = NPULossScaleOptimizer(NPUDistributedOptimizer(opt), FixedLossScaleManager(loss_scale=4096),
                                    is_distributed=params.rank_size > 1)
    # Batch-norm moving statistics update before the step, as slim's train op does.
    with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
        step_op = opt.minimize(total_loss, global_step=global_step)
    if params.cluster:
        # Each worker updated the moving statistics from its own batch; their mean keeps the workers identical.
        trainable = set(tf.compat.v1.trainable_variables())
        with tf.control_dependencies([step_op]):
            step_op = distributed.average_in_place(
                params.cluster, [v for v in slim.get_model_variables() if v not in trainable])
    if params.moving_average_decay:
        ema = tf.compat.v1.train.ExponentialMovingAverage(params.moving_average_decay, num_updates=global_step)
        with tf.control_dependencies([step_op]):
            train_op = ema.apply(slim.get_model_variables())
    else:
        train_op = step_op
    tensors.update(lr=lr, global_step=global_step)
    return ModelSpec(mode, total_loss, train_op, predictions, tensors)


def make_logger(spec, params, steps_per_run):
    import logger

    return logger.StepLogger(spec.tensors, params.iterations_per_loop, params.global_batch_size,
                             params.steps_per_epoch, os.path.join(params.model_dir, "train_log.log"),
                             steps_per_run=steps_per_run)


class SessionLoop:
    """Trains model_fn on input_fn() up to params.max_train_steps in a monitored session on `master`."""

    def __init__(self, params, input_fn, config=None, master=""):
        self.params = params
        self.input_fn = input_fn
        self.config = config
        self.master = master

    def train(self, extra_hooks=()):
        params = self.params
        cluster = params.cluster
        chief = cluster is None or cluster.is_chief
        with tf.Graph().as_default():
            tf.compat.v1.set_random_seed(params.seed)
            dataset = self.input_fn()
            images, labels = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
            spec = model_fn(images, labels, TRAIN, params)
            if params.over_dump:
                # Off Ascend, the overflow dump becomes a check on every float tensor: the first op that
                # produces inf/NaN stops the run and is named in the error.
                spec = spec._replace(train_op=tf.group(spec.train_op, tf.compat.v1.add_check_numerics_ops()))
            saver = tf.compat.v1.train.Saver(max_to_keep=params.keep_checkpoint_max)
            scaffold = tf.compat.v1.train.Scaffold(saver=saver)
            hooks = [tf.compat.v1.train.StopAtStepHook(last_step=params.max_train_steps),
                     tf.compat.v1.train.NanTensorHook(spec.loss),
                     make_logger(spec, params, steps_per_run=1), *extra_hooks]
            if cluster:  # first, so that the other hooks see worker 0's global step
                hooks.insert(0, distributed.BroadcastHook(cluster))
            if chief:
                hooks.append(tf.compat.v1.train.CheckpointSaverHook(
                    params.model_dir, save_steps=params.steps_per_epoch, scaffold=scaffold))
            # Every worker initialises (or, worker 0, restores) its own variables; no session recovery, so a
            # lost worker ends the run instead of re-initialising it.
            with tf.compat.v1.train.SingularMonitoredSession(
                    hooks=hooks, scaffold=scaffold, master=self.master, config=self.config,
                    checkpoint_dir=params.model_dir if chief else None) as session:
                while not session.should_stop():
                    session.run(spec.train_op)
        return tf.train.latest_checkpoint(params.model_dir)


def train_on_npu(params, input_fn, precision_mode):
    """The original's runner: NPUEstimator with NPURunConfig (Ascend only)."""
    from npu_bridge.estimator.npu.npu_config import NPURunConfig
    from npu_bridge.estimator.npu.npu_estimator import NPUEstimator

    def estimator_model_fn(features, labels, mode, params_):
        spec = model_fn(features, labels, TRAIN if mode == tf.estimator.ModeKeys.TRAIN else EVAL, params)
        hooks = [make_logger(spec, params, steps_per_run=params.iterations_per_loop)]
        if params.rank_size > 1:
            from npu_bridge.estimator.npu.npu_hook import NPUBroadcastGlobalVariablesHook

            # Its op runs once the session exists, i.e. after initialisation or restore: rank 0's values win.
            hooks.insert(0, NPUBroadcastGlobalVariablesHook(root_rank=0, index=params.rank_id))
        return tf.estimator.EstimatorSpec(mode, loss=spec.loss, train_op=spec.train_op, training_hooks=hooks)

    run_config = NPURunConfig(hcom_parallel=True, precision_mode=precision_mode, enable_data_pre_proc=True,
                              iterations_per_loop=params.iterations_per_loop, model_dir=params.model_dir,
                              save_checkpoints_steps=params.steps_per_epoch,
                              keep_checkpoint_max=params.keep_checkpoint_max, log_step_count_steps=None,
                              save_summary_steps=0)
    estimator = NPUEstimator(model_fn=estimator_model_fn, config=run_config)
    estimator.train(input_fn=input_fn, max_steps=params.max_train_steps)
    return tf.train.latest_checkpoint(params.model_dir)
