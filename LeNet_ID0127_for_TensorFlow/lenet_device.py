"""LeNet's device boundary: everything that differs between Ascend, GPU and CPU.

Ascend is used when its TensorFlow adapter (npu_bridge) imports, else a GPU TensorFlow sees, else the CPU.
The training, freezing and inference scripts call these functions and never ask which device they are on;
off Ascend each Ascend-only step is a no-op or its CPU/GPU equivalent. LeNet trains on one device only, so
there is no broadcast step.
"""
import os
import sys

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import zoo_precision
from lenet_cli import UsageError

ADAPTER = "npu_bridge"
MODEL = "LeNet_ID0127_for_TensorFlow"  # its key in zoo_precision.MEASURED_BF16
PRECISION_MODES = zoo_precision.PRECISION_MODES


def device():
    """'Ascend', 'GPU' or 'CPU'."""
    return zoo_precision.detect_device(ADAPTER)


def is_ascend():
    return device() == "Ascend"


def precision(precision_mode):
    """The zoo's one table (zoo_precision.resolve): on a CPU the mixed modes train in bfloat16 only where a
    benchmark measured LeNet faster in it on that CPU kind (AMX: 1.06x; AVX-512 bf16: 0.95x, so float32). A bad
    ZOO_CPU_BF16 is a UsageError (one line)."""
    try:
        return zoo_precision.resolve(precision_mode, device(), MODEL)
    except ValueError as err:
        raise UsageError(str(err)) from None


def session_config(chosen, output_path, over_dump=False, data_dump=False, data_dump_step="10", profiling=False):
    """The session config for precision `chosen` (from precision()). The dump and profiling options are the
    Ascend adapter's; they write under output_path and are warned about and ignored elsewhere."""
    if chosen.device != "Ascend":
        if over_dump or data_dump or profiling:
            print("[Warning] --over_dump/--data_dump_flag/--profiling take effect on Ascend only", file=sys.stderr)
        return chosen.apply_to_session_config(tf.compat.v1.ConfigProto())
    import npu_bridge.npu_init  # noqa: F401  (registers the NPU ops and the NpuOptimizer pass)

    config = tf.compat.v1.ConfigProto()
    npu = config.graph_options.rewrite_options.custom_optimizers.add()
    npu.name = "NpuOptimizer"
    options = npu.parameter_map
    options["use_off_line"].b = True
    options["precision_mode"].s = tf.compat.as_bytes(chosen.dtype)
    if over_dump:
        options["dump_path"].s = tf.compat.as_bytes(os.path.join(output_path, "overflow_dump"))
        options["enable_dump_debug"].b = True
        options["dump_debug_mode"].s = b"all"
    if data_dump:
        options["dump_path"].s = tf.compat.as_bytes(os.path.join(output_path, "data_dump"))
        options["enable_dump"].b = True
        options["dump_step"].s = tf.compat.as_bytes(str(data_dump_step))
        options["dump_mode"].s = b"all"
    if profiling:
        options["profiling_mode"].b = True
        trace = '{"output":"%s","task_trace":"on"}' % os.path.join(output_path, "profiling")
        options["profiling_options"].s = tf.compat.as_bytes(trace)
    # The adapter's own graph passes replace grappler's op fusion, as in the original.
    config.graph_options.rewrite_options.remapping = RewriterConfig.OFF
    return config


def wrap_optimizer(optimizer, loss_scale_flag=0, loss_scale_value=0.0):
    """On Ascend, as the original: the HCCL all-reduce optimizer, with loss scaling only when loss_scale_flag
    is 1 (dynamic for loss_scale_value 0, else fixed at that value). Elsewhere the optimizer is returned
    unchanged."""
    if not is_ascend():
        return optimizer
    from npu_bridge.estimator.npu.npu_loss_scale_manager import (
        ExponentialUpdateLossScaleManager, FixedLossScaleManager)
    from npu_bridge.estimator.npu.npu_loss_scale_optimizer import NPULossScaleOptimizer
    from npu_bridge.estimator.npu.npu_optimizer import NPUDistributedOptimizer

    distributed = NPUDistributedOptimizer(optimizer)
    if not loss_scale_flag:
        return distributed
    if loss_scale_value:
        manager = FixedLossScaleManager(loss_scale=loss_scale_value)
    else:
        manager = ExponentialUpdateLossScaleManager(
            init_loss_scale=2 ** 32, incr_every_n_steps=1000, decr_every_n_nan_or_inf=2, decr_ratio=0.5)
    is_distributed = int(os.environ.get("RANK_SIZE", "1")) > 1
    return NPULossScaleOptimizer(distributed, manager, is_distributed=is_distributed)
