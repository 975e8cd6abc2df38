"""Where AlexNet runs and in which precision: Ascend (npu_bridge importable), else GPU, else CPU.

--precision_mode takes the Ascend names. Off Ascend the mixed modes become fp16 auto mixed precision on a
GPU, oneDNN's bf16 rewrite on a CPU with native bf16 (avx512_bf16 / amx_bf16), and float32 otherwise;
the log line says which and why.
"""
import importlib.util
import os

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

PRECISION_MODES = ("allow_mix_precision", "allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype")


def on_ascend():
    return importlib.util.find_spec("npu_bridge") is not None


def native_bf16(cpuinfo="/proc/cpuinfo"):
    try:
        with open(cpuinfo) as handle:
            flags = set(handle.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def session_config(args):
    """(ConfigProto, description) for this machine and args.precision_mode."""
    config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    rewrites = config.graph_options.rewrite_options
    mixed = args.precision_mode != "must_keep_origin_dtype"
    if on_ascend():
        import npu_bridge.npu_init  # noqa: F401  registers NpuOptimizer and the NPU ops
        npu = rewrites.custom_optimizers.add()
        npu.name = "NpuOptimizer"
        npu.parameter_map["use_off_line"].b = True
        npu.parameter_map["precision_mode"].s = tf.compat.as_bytes(args.precision_mode)
        npu.parameter_map["hcom_parallel"].b = True
        for flag, key, sub in ((args.over_dump, "enable_dump_debug", "overflow_dump"),
                               (args.data_dump_flag, "enable_dump", "data_dump")):
            if flag:
                npu.parameter_map[key].b = True
                npu.parameter_map["dump_path"].s = tf.compat.as_bytes(os.path.join(args.output_path, sub))
                npu.parameter_map["dump_step"].s = tf.compat.as_bytes(str(args.data_dump_step))
        if args.profiling:
            npu.parameter_map["profiling_mode"].b = True
            npu.parameter_map["profiling_options"].s = tf.compat.as_bytes(
                '{"output":"%s","task_trace":"on"}' % os.path.join(args.output_path, "profiling"))
        rewrites.remapping = RewriterConfig.OFF
        return config, f"Ascend NPU, precision_mode {args.precision_mode}"
    if tf.config.list_physical_devices("GPU"):
        if mixed:
            rewrites.auto_mixed_precision = RewriterConfig.ON
            return config, f"GPU, float16 auto mixed precision ({args.precision_mode})"
        return config, "GPU, float32"
    if not mixed:
        return config, "CPU, float32"
    if args.precision_mode == "force_fp16":
        return config, "CPU, float32 (force_fp16 requested; float16 is not faster than float32 on a CPU)"
    if native_bf16():
        rewrites.auto_mixed_precision_onednn_bfloat16 = RewriterConfig.ON
        return config, f"CPU, bfloat16 mixed via oneDNN rewrite ({args.precision_mode})"
    return config, (f"CPU, float32 ({args.precision_mode} requested; this CPU has no native bf16 "
                    "(avx512_bf16/amx_bf16 absent), where emulated bf16 would be slower)")


def dropout_op():
    """The NPU's dropout on Ascend (as the original), None (tf.nn.dropout) elsewhere."""
    if not on_ascend():
        return None
    from npu_bridge.estimator import npu_ops
    return lambda x, keep: npu_ops.dropout(x, keep)

