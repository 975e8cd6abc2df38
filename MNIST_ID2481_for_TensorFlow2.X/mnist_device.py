"""Where MNIST trains and in which precision. The only module that knows the Ascend TF2 adapter (npu_device):
every function here is the CPU/GPU equivalent or a no-op off Ascend, so the training code has no Ascend
branches.

Precision: the zoo's one table (zoo_precision.resolve) turns --precision_mode into a Keras dtype policy:
mixed modes train in mixed_float16 on a GPU, mixed_bfloat16 on a CPU only where a benchmark measured this
model faster in bf16 on that CPU kind (AVX-512 bf16: 1.76x; ZOO_CPU_BF16=1 forces bf16), float32
otherwise; on Ascend the NPU applies the mode itself and Keras stays float32.
"""
import importlib.util
import os

import keras
import tensorflow as tf

import zoo_precision
from errors import UsageError

ADAPTER = "npu_device"
MODEL = "MNIST_ID2481_for_TensorFlow2.X"  # its key in zoo_precision.MEASURED_BF16
# The original names --mixlist_file and --fusion_off_file relative to ../configs/ from the folder its launchers
# run it in, the model folder; resolved from here so that the caller's working directory does not matter.
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
ASCEND_ONLY_FLAGS = ("over_dump", "data_dump_flag", "profiling", "use_mixlist", "fusion_off_flag")


def is_ascend():
    return importlib.util.find_spec(ADAPTER) is not None


def gpu_count(num_gpus):
    """--num_gpus, or 1 when it is unset and a GPU is visible."""
    if num_gpus is not None:
        return num_gpus
    return 1 if tf.config.list_physical_devices("GPU") else 0


def precision(precision_mode, num_gpus, cpu_flags=None):
    """The zoo_precision.Precision for this machine; num_gpus=0 trains on the CPU even where a GPU is visible.
    A bad ZOO_CPU_BF16 is a UsageError (one line)."""
    device = "Ascend" if is_ascend() else "GPU" if num_gpus else "CPU"
    try:
        return zoo_precision.resolve(precision_mode, device, MODEL, flags=cpu_flags)
    except ValueError as err:
        raise UsageError(str(err)) from None


def set_up(values, num_gpus):
    """Prints the device and precision line, opens the NPU with the flags' options on Ascend (elsewhere warns
    that they have no effect) and sets the Keras dtype policy. Returns the Precision."""
    chosen = precision(values.precision_mode, num_gpus)
    print(chosen.describe(), flush=True)
    if chosen.device == "Ascend":
        _open_npu(values)
    else:
        asked = [f"--{name}" for name in ASCEND_ONLY_FLAGS if getattr(values, name)]
        if asked:
            print(f"[Warning] {', '.join(asked)}: Ascend-only options, no effect without {ADAPTER}", flush=True)
    keras.mixed_precision.set_dtype_policy(chosen.keras_policy)
    return chosen


def _open_npu(values):
    import npu_device

    options = npu_device.global_options()
    options.precision_mode = values.precision_mode
    if values.over_dump:
        options.dump_config.enable_dump_debug = True
        options.dump_config.dump_path = values.over_dump_path
        options.dump_config.dump_debug_mode = "all"
    if values.data_dump_flag:
        options.dump_config.enable_dump = True
        options.dump_config.dump_path = values.data_dump_path
        options.dump_config.dump_step = values.data_dump_step
        options.dump_config.dump_mode = "all"
    if values.profiling:
        options.profiling_config.enable_profiling = True
        options.profiling_config.profiling_options = (
            '{"output":"%s","training_trace":"on","task_trace":"on","aicpu":"on",'
            '"aic_metrics":"PipeUtilization","fp_point":"","bp_point":""}'
            % values.profiling_dump_path)
    if values.use_mixlist and values.precision_mode == "allow_mix_precision":
        options.modify_mixlist = os.path.join(CONFIGS_DIR, values.mixlist_file)
    if values.fusion_off_flag:
        options.fusion_switch_file = os.path.join(CONFIGS_DIR, values.fusion_off_file)
    npu_device.open().as_default()


def wrap_optimizer(optimizer, rank_size, chosen):
    """Ascend with several ranks: the adapter's wrapper all-reduces the gradients over HCCL (on one rank the
    NPU applies precision_mode and its loss scaling itself). Elsewhere a tf.distribute strategy all-reduces
    them; float16 (GPU) adds Keras' dynamic loss scaling, bfloat16 and float32 need none."""
    if chosen.dtype == "float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    if rank_size == 1 or not is_ascend():
        return optimizer
    import npu_device

    return npu_device.distribute.npu_distributed_keras_optimizer_wrapper(optimizer)


def broadcast(variables, rank_size):
    """Ascend with several ranks: rank 0's initialised (or restored) values to every rank, before the first
    step. Elsewhere a no-op: a multi-worker strategy creates the variables on rank 0 and broadcasts them."""
    if rank_size == 1 or not is_ascend():
        return
    import npu_device

    npu_device.distribute.broadcast(variables, root_rank=0)
