"""The device boundary: everything that differs between Ascend (npu_bridge importable), GPU and CPU.

The rest of the code asks this module for a precision, a session config and a wrapped optimizer and never
branches on the device itself. --precision_mode takes the Ascend names; off Ascend the zoo's one table
(zoo_precision.resolve) maps them: float16 mixed on a GPU, bfloat16 mixed on a CPU only where a benchmark
measured this model faster in bf16 on that CPU kind (none yet: float32; ZOO_CPU_BF16=1 forces bf16),
float32 otherwise. Inference (eval, export, evaluate_test) stays float32 off Ascend: exported .mat
features and the evaluate_test scores must be those of the frozen .pb, which is always float32, so a
user comparing them with deep_sort's features sees the same numbers whatever CPU trained the checkpoint.
"""
import os
from dataclasses import dataclass

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import zoo_precision
from datasets.util import UsageError

ADAPTER = "npu_bridge"
MODEL = "cosine_metric_learning"  # its key in zoo_precision.MEASURED_BF16
PRECISION_MODES = zoo_precision.PRECISION_MODES
INFERENCE_REASON = "inference: the features of the checkpoint's float32 network, as in the frozen graph"


@dataclass(frozen=True)
class AscendOptions:
    """The launchers' Ascend-only switches; dumps and profiles are written under dump_dir."""
    dump_dir: str
    over_dump: bool = False
    data_dump_flag: bool = False
    data_dump_step: int = 10
    profiling: bool = False
    autotune: bool = False


def device():
    return zoo_precision.detect_device(ADAPTER)


def is_ascend():
    return device() == "Ascend"


def precision(precision_mode, training=True):
    """The zoo_precision.Precision used for training (the table) or inference (float32 off Ascend). A bad
    ZOO_CPU_BF16 is a UsageError (one line), in every mode."""
    where = device()
    try:
        chosen = zoo_precision.resolve(precision_mode, where, MODEL)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return chosen if training or where == "Ascend" else zoo_precision.Precision(where, "float32", INFERENCE_REASON)


def session_config(chosen, ascend):
    """ConfigProto for `chosen` (a Precision); on Ascend the NpuOptimizer with the AscendOptions."""
    if chosen.device == "Ascend":
        return _npu_config(chosen.dtype, ascend)
    config = tf.compat.v1.ConfigProto()
    config.gpu_options.allow_growth = True
    return chosen.apply_to_session_config(config)


def variables_config():
    """finalize and freeze only read and write variables: any device, no rewrites."""
    config = tf.compat.v1.ConfigProto()
    config.gpu_options.allow_growth = True
    return config


def _npu_config(precision_mode, ascend):
    import npu_bridge.npu_init  # noqa: F401  registers NpuOptimizer and the NPU ops

    config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    npu = config.graph_options.rewrite_options.custom_optimizers.add()
    npu.name = "NpuOptimizer"
    params = npu.parameter_map
    params["use_off_line"].b = True
    params["precision_mode"].s = tf.compat.as_bytes(precision_mode)
    if ascend.over_dump:
        params["enable_dump_debug"].b = True
        params["dump_debug_mode"].s = b"all"
        params["dump_path"].s = tf.compat.as_bytes(os.path.join(ascend.dump_dir, "overflow_dump"))
    if ascend.data_dump_flag:
        params["enable_dump"].b = True
        params["dump_mode"].s = b"all"
        params["dump_step"].s = tf.compat.as_bytes(str(ascend.data_dump_step))
        params["dump_path"].s = tf.compat.as_bytes(os.path.join(ascend.dump_dir, "data_dump"))
    if ascend.profiling:
        params["profiling_mode"].b = True
        params["profiling_options"].s = tf.compat.as_bytes(
            '{"output":"%s","task_trace":"on"}' % os.path.join(ascend.dump_dir, "profiling"))
    if ascend.autotune:
        params["auto_tune_mode"].s = b"RL,GA"
    config.graph_options.rewrite_options.remapping = RewriterConfig.OFF
    return config


def wrap_optimizer(optimizer, chosen):
    """Loss scaling wherever float16 gradients are computed: the 1e-3 initial weights give gradients that
    underflow float16 without it. Ascend mixed modes: NPULossScaleOptimizer; GPU float16: TF's dynamic loss
    scale; bfloat16 (float32's exponent range) and float32: the optimizer unchanged."""
    if chosen.device == "Ascend" and chosen.dtype != "must_keep_origin_dtype":
        from npu_bridge.estimator.npu.npu_loss_scale_manager import ExponentialUpdateLossScaleManager
        from npu_bridge.estimator.npu.npu_loss_scale_optimizer import NPULossScaleOptimizer

        manager = ExponentialUpdateLossScaleManager(init_loss_scale=2 ** 32, incr_every_n_steps=1000,
                                                    decr_every_n_nan_or_inf=2, decr_ratio=0.5)
        return NPULossScaleOptimizer(optimizer, manager)
    if chosen.dtype == "float16":
        return tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, "dynamic")
    return optimizer
