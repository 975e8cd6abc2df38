"""Where the network runs and in which precision: Ascend (npu_bridge importable), else GPU, else CPU.

--precision_mode takes the Ascend names. Off Ascend, training maps the mixed modes to float16 auto mixed
precision with dynamic loss scaling on a GPU, to oneDNN's bfloat16 rewrite on a CPU with native bf16
(avx512_bf16 / amx_bf16), and to float32 otherwise. Inference (eval, export, evaluate_test) runs float32
off Ascend, so exported and frozen features are those of the checkpoint's float32 network.
"""
import importlib.util
import os

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

PRECISION_MODES = ("allow_mix_precision", "allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype")
DEFAULT_PRECISION = "allow_mix_precision"


def on_ascend():
    return importlib.util.find_spec("npu_bridge") is not None


def native_bf16(cpuinfo="/proc/cpuinfo"):
    try:
        with open(cpuinfo) as handle:
            flags = set(handle.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def is_mixed(precision_mode):
    return precision_mode != "must_keep_origin_dtype"


def _npu_config(args, dump_dir):
    import npu_bridge.npu_init  # noqa: F401  registers NpuOptimizer and the NPU ops

    config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    npu = config.graph_options.rewrite_options.custom_optimizers.add()
    npu.name = "NpuOptimizer"
    npu.parameter_map["use_off_line"].b = True
    npu.parameter_map["precision_mode"].s = tf.compat.as_bytes(args.precision_mode)
    if args.over_dump:
        npu.parameter_map["enable_dump_debug"].b = True
        npu.parameter_map["dump_debug_mode"].s = tf.compat.as_bytes("all")
        npu.parameter_map["dump_path"].s = tf.compat.as_bytes(os.path.join(dump_dir, "overflow_dump"))
    if args.data_dump_flag:
        npu.parameter_map["enable_dump"].b = True
        npu.parameter_map["dump_mode"].s = tf.compat.as_bytes("all")
        npu.parameter_map["dump_step"].s = tf.compat.as_bytes(str(args.data_dump_step))
        npu.parameter_map["dump_path"].s = tf.compat.as_bytes(os.path.join(dump_dir, "data_dump"))
    if args.profiling:
        npu.parameter_map["profiling_mode"].b = True
        npu.parameter_map["profiling_options"].s = tf.compat.as_bytes(
            '{"output":"%s","task_trace":"on"}' % os.path.join(dump_dir, "profiling"))
    if args.autotune:
        npu.parameter_map["auto_tune_mode"].s = tf.compat.as_bytes("RL,GA")
    config.graph_options.rewrite_options.remapping = RewriterConfig.OFF
    return config, f"Ascend NPU, precision_mode {args.precision_mode}"


def session_config(args, training, dump_dir):
    """(ConfigProto, one-line description) for this machine. args needs precision_mode, over_dump,
    data_dump_flag, data_dump_step, profiling, autotune; dumps and profiles go under dump_dir."""
    if on_ascend():
        return _npu_config(args, dump_dir)
    config = tf.compat.v1.ConfigProto()
    config.gpu_options.allow_growth = True
    rewrites = config.graph_options.rewrite_options
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    if not training:
        return config, f"{device}, float32 (inference)"
    if not is_mixed(args.precision_mode):
        return config, f"{device}, float32"
    if device == "GPU":
        rewrites.auto_mixed_precision = RewriterConfig.ON
        return config, f"GPU, float16 auto mixed precision with dynamic loss scaling ({args.precision_mode})"
    if args.precision_mode == "force_fp16":
        return config, "CPU, float32 (force_fp16 requested; float16 is not faster than float32 on a CPU)"
    if native_bf16():
        rewrites.auto_mixed_precision_onednn_bfloat16 = RewriterConfig.ON
        return config, f"CPU, bfloat16 mixed via oneDNN rewrite ({args.precision_mode})"
    return config, (f"CPU, float32 ({args.precision_mode} requested; this CPU has no native bf16 "
                    "(avx512_bf16/amx_bf16), where emulated bf16 would be slower)")


def wrap_optimizer(optimizer, config, precision_mode):
    """Loss scaling wherever float16 gradients are computed: the 1e-3 initial weights give gradients
    that underflow float16 without it. Ascend: NPULossScaleOptimizer; GPU: TF's dynamic loss scale."""
    if not is_mixed(precision_mode):
        return optimizer
    if on_ascend():
        from npu_bridge.estimator.npu.npu_loss_scale_manager import ExponentialUpdateLossScaleManager
        from npu_bridge.estimator.npu.npu_loss_scale_optimizer import NPULossScaleOptimizer

        manager = ExponentialUpdateLossScaleManager(init_loss_scale=2 ** 32, incr_every_n_steps=1000,
                                                    decr_every_n_nan_or_inf=2, decr_ratio=0.5)
        return NPULossScaleOptimizer(optimizer, manager)
    if config.graph_options.rewrite_options.auto_mixed_precision == RewriterConfig.ON:
        return tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, "dynamic")
    return optimizer
