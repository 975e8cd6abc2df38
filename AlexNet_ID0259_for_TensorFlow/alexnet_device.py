"""AlexNet's device boundary: everything that differs between Ascend (npu_bridge importable), GPU and CPU.

The training code calls these and never asks which device it is on:
    is_ascend()                        the Ascend adapter imports
    precision(precision_mode)          the zoo's table (zoo_precision.resolve): what the mode means here
    session_config(precision, dumps)   the ConfigProto: NpuOptimizer on Ascend, the precision rewrite elsewhere
    dropout_op()                       the NPU's dropout on Ascend (as the original), None = tf.nn.dropout
    wrap_optimizer(optimizer, ranks)   the workers' mean gradient when there are several, else as given
    broadcast(variables, ranks)        worker 0's values on every worker, a no-op for one
"""
import importlib.util
import os
from typing import NamedTuple

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import run_safety
import zoo_precision

ADAPTER = "npu_bridge"
MODEL = "AlexNet_ID0259_for_TensorFlow"  # its key in zoo_precision.MEASURED_BF16


class Dumps(NamedTuple):
    """The original's Ascend debugging options; they have no effect elsewhere."""
    output_path: str
    over_dump: bool = False
    data_dump_flag: bool = False
    data_dump_step: int = 10
    profiling: bool = False


def is_ascend():
    return importlib.util.find_spec(ADAPTER) is not None


def precision(precision_mode, cpu_flags=None):
    """The zoo_precision.Precision this machine gives precision_mode (cpu_flags: read when None): on a CPU
    bfloat16 where a benchmark measured AlexNet faster in it (AMX: 1.84x). A bad ZOO_CPU_BF16 is a
    RunSafetyError, which main.py reports in one line."""
    try:
        return zoo_precision.resolve(precision_mode, zoo_precision.detect_device(ADAPTER), MODEL, cpu_flags)
    except ValueError as err:
        raise run_safety.RunSafetyError(str(err)) from None


def session_config(chosen, dumps):
    """ConfigProto for the zoo_precision.Precision `chosen`; dumps (Dumps) apply on Ascend only."""
    config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    if chosen.device != "Ascend":
        return chosen.apply_to_session_config(config)
    import npu_bridge.npu_init  # noqa: F401  registers NpuOptimizer and the NPU ops

    npu = config.graph_options.rewrite_options.custom_optimizers.add()
    npu.name = "NpuOptimizer"
    npu.parameter_map["use_off_line"].b = True
    npu.parameter_map["precision_mode"].s = tf.compat.as_bytes(chosen.dtype)
    npu.parameter_map["hcom_parallel"].b = True
    for wanted, key, sub in ((dumps.over_dump, "enable_dump_debug", "overflow_dump"),
                             (dumps.data_dump_flag, "enable_dump", "data_dump")):
        if wanted:
            npu.parameter_map[key].b = True
            npu.parameter_map["dump_path"].s = tf.compat.as_bytes(os.path.join(dumps.output_path, sub))
            npu.parameter_map["dump_step"].s = tf.compat.as_bytes(str(dumps.data_dump_step))
    if dumps.profiling:
        npu.parameter_map["profiling_mode"].b = True
        npu.parameter_map["profiling_options"].s = tf.compat.as_bytes(
            '{"output":"%s","task_trace":"on"}' % os.path.join(dumps.output_path, "profiling"))
    config.graph_options.rewrite_options.remapping = RewriterConfig.OFF
    return config


def dropout_op():
    """The NPU's dropout on Ascend (as the original), None (model.inference's tf.nn.dropout) elsewhere."""
    if not is_ascend():
        return None
    from npu_bridge.estimator import npu_ops

    return lambda x, keep: npu_ops.dropout(x, keep)


def wrap_optimizer(optimizer, ranks=None):
    """ranks (distributed.ranks): NPUDistributedOptimizer on Ascend, the collective all-reduce elsewhere."""
    return ranks.optimizer(optimizer) if ranks else optimizer


def broadcast(variables, ranks=None):
    """An op that gives every worker worker 0's values (HCCL on Ascend, collective ops elsewhere)."""
    return ranks.broadcast(variables) if ranks else tf.no_op()
