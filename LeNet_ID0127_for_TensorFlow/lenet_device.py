"""Chooses the device and precision: Ascend when npu_bridge imports, else GPU, else CPU.

precision_mode names the Ascend options; off Ascend each is mapped to what TensorFlow really offers
there, and the start-up line says what was used and why.
"""
import importlib.util
import os

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

PRECISION_MODES = ("allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype", "allow_mix_precision")
MIXED_MODES = ("allow_fp32_to_fp16", "allow_mix_precision", "force_fp16")


def npu_available():
    return importlib.util.find_spec("npu_bridge") is not None


def cpu_has_native_bf16(cpuinfo="/proc/cpuinfo"):
    try:
        with open(cpuinfo) as handle:
            flags = handle.read().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class Placement:
    """The session config plus a one-line description of device and precision."""

    def __init__(self, config, device, precision, note=""):
        self.config = config
        self.device = device
        self.precision = precision
        self.note = note
        self.on_npu = device == "Ascend NPU"

    def describe(self):
        return f"device: {self.device}, precision: {self.precision}" + (f" ({self.note})" if self.note else "")


def _npu_config(args):
    import npu_bridge.npu_init  # noqa: F401  (registers the NPU ops and optimizer)

    config = tf.compat.v1.ConfigProto()
    custom_op = config.graph_options.rewrite_options.custom_optimizers.add()
    custom_op.name = "NpuOptimizer"
    custom_op.parameter_map["use_off_line"].b = True
    custom_op.parameter_map["precision_mode"].s = tf.compat.as_bytes(args.precision_mode)
    if args.over_dump:
        custom_op.parameter_map["dump_path"].s = tf.compat.as_bytes(os.path.join(args.output_path, "overflow_dump"))
        custom_op.parameter_map["enable_dump_debug"].b = True
        custom_op.parameter_map["dump_debug_mode"].s = tf.compat.as_bytes("all")
    if args.data_dump_flag:
        custom_op.parameter_map["dump_path"].s = tf.compat.as_bytes(os.path.join(args.output_path, "data_dump"))
        custom_op.parameter_map["enable_dump"].b = True
        custom_op.parameter_map["dump_step"].s = tf.compat.as_bytes(str(args.data_dump_step))
        custom_op.parameter_map["dump_mode"].s = tf.compat.as_bytes("all")
    if args.profiling:
        custom_op.parameter_map["profiling_mode"].b = True
        options = '{"output":"%s","task_trace":"on"}' % os.path.join(args.output_path, "profiling")
        custom_op.parameter_map["profiling_options"].s = tf.compat.as_bytes(options)
    config.graph_options.rewrite_options.remapping = RewriterConfig.OFF
    return Placement(config, "Ascend NPU", args.precision_mode)


def _gpu_or_cpu_config(precision_mode):
    config = tf.compat.v1.ConfigProto()
    rewrites = config.graph_options.rewrite_options
    if tf.config.list_physical_devices("GPU"):
        if precision_mode in MIXED_MODES:
            rewrites.auto_mixed_precision = RewriterConfig.ON
            return Placement(config, "GPU", "float16 mixed", f"{precision_mode} -> auto_mixed_precision")
        return Placement(config, "GPU", "float32")
    if precision_mode not in MIXED_MODES:
        return Placement(config, "CPU", "float32")
    if precision_mode != "force_fp16" and cpu_has_native_bf16():
        # oneDNN's bf16 rewrite trained a LeNet-like net 1.57x faster and to the same accuracy on a bf16 CPU
        # (shared/docs/tensorflow_notes.md); without native bf16 it is emulated and slower.
        rewrites.auto_mixed_precision_onednn_bfloat16 = RewriterConfig.ON
        return Placement(config, "CPU", "bfloat16 mixed", f"{precision_mode} -> oneDNN bf16 rewrite")
    reason = ("float16 is not faster than float32 on CPU" if precision_mode == "force_fp16"
              else "this CPU has no native bf16 (avx512_bf16/amx_bf16)")
    return Placement(config, "CPU", "float32", f"{precision_mode} requested; {reason}")


def choose(args):
    """args needs precision_mode, over_dump, data_dump_flag, data_dump_step, profiling, output_path."""
    if npu_available():
        return _npu_config(args)
    return _gpu_or_cpu_config(args.precision_mode)


def wrap_optimizer(optimizer, placement, loss_scale_flag, loss_scale_value):
    """On Ascend: loss scaling and HCCL all-reduce as the original; elsewhere the optimizer is used as is."""
    if not placement.on_npu:
        return optimizer
    from npu_bridge.estimator.npu.npu_loss_scale_manager import (
        ExponentialUpdateLossScaleManager, FixedLossScaleManager)
    from npu_bridge.estimator.npu.npu_loss_scale_optimizer import NPULossScaleOptimizer
    from npu_bridge.estimator.npu.npu_optimizer import NPUDistributedOptimizer

    if loss_scale_flag:
        manager = FixedLossScaleManager(loss_scale=loss_scale_value)
    else:
        manager = ExponentialUpdateLossScaleManager(
            init_loss_scale=2 ** 32, incr_every_n_steps=1000, decr_every_n_nan_or_inf=2, decr_ratio=0.5)
    is_distributed = int(os.environ.get("RANK_SIZE", "1")) > 1
    return NPULossScaleOptimizer(NPUDistributedOptimizer(optimizer), manager, is_distributed=is_distributed)
