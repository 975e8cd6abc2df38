"""Shared pieces of mnist_main.py: base flags, device/precision set-up, logging and checkpoint callbacks."""
import glob
import math
import os
import re
import time

from absl import flags
import tensorflow as tf
import keras

STRATEGIES = ("off", "one_device", "mirrored", "multi_worker_mirrored", "parameter_server")
PRECISION_MODES = ("allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype", "allow_mix_precision")
CKPT_PATTERN = re.compile(r"model\.ckpt-(\d{4,})\.index$")


class UsageError(Exception):
    """A mistake in the user's input; mnist_main.py reports it as one '[Error] ...' line, exit 1."""


def define_base_flags():
    """The base flags of tensorflow/models `official` that mnist_main uses."""
    flags.DEFINE_string("data_dir", "/tmp", "Folder holding the TFDS-prepared mnist/3.0.1.", short_name="dd")
    flags.DEFINE_string("model_dir", "/tmp/mnist_model", "Checkpoints, TensorBoard logs, SavedModel.",
                        short_name="md")
    flags.DEFINE_bool("clean", False, "Remove --model_dir before training (no resume).")
    flags.DEFINE_integer("train_epochs", 1, "Number of training epochs.", lower_bound=1, short_name="te")
    flags.DEFINE_integer("epochs_between_evals", 1, "Validate every N epochs.", lower_bound=1, short_name="ebe")
    flags.DEFINE_integer("batch_size", 1024, "Global batch size.", lower_bound=1, short_name="bs")
    flags.DEFINE_integer("num_gpus", None, "GPUs to use (default: 1 if one is visible, else 0).", lower_bound=0,
                         short_name="ng")
    flags.DEFINE_enum("distribution_strategy", None, STRATEGIES,
                      "Default: mirrored with several GPUs, one_device otherwise.", short_name="ds")
    flags.DEFINE_string("tpu", None, "Accepted for compatibility; unused.")


def get_distribution_strategy(name, num_gpus):
    """The official helper's mapping, for the 1p strategies Keras 3 `fit` supports here."""
    if name is None:
        name = "mirrored" if num_gpus > 1 else "one_device"
    if name == "off":
        return None
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("device:GPU:0" if num_gpus else "device:CPU:0")
    if name == "mirrored":
        devices = [f"device:GPU:{i}" for i in range(num_gpus)] or ["device:CPU:0"]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        raise UsageError(f"--distribution_strategy={name}: needs TF_CONFIG describing the workers (the 8p "
                         "launcher test/train_performance_8p_static_eval.sh writes it)")
    raise UsageError(f"--distribution_strategy={name}: not supported here; use off, one_device, mirrored or "
                     "multi_worker_mirrored")


def cpu_has_bf16():
    try:
        with open("/proc/cpuinfo") as handle:
            words = set(handle.read().split())
    except OSError:
        return False
    return bool(words & {"avx512_bf16", "amx_bf16"})


def keras_precision(precision_mode, on_npu, num_gpus):
    """Maps the Ascend precision_mode to a Keras dtype policy off Ascend; returns (policy, reason)."""
    if on_npu:
        return "float32", "the NPU applies precision_mode itself"
    if precision_mode == "must_keep_origin_dtype":
        return "float32", "precision_mode=must_keep_origin_dtype"
    if num_gpus:
        return "mixed_float16", f"precision_mode={precision_mode} on GPU"
    if cpu_has_bf16():
        return "mixed_bfloat16", f"precision_mode={precision_mode} on a CPU with native bf16"
    return "float32", (f"precision_mode={precision_mode} asks for mixed precision, but this CPU has no "
                       "native bf16 (no avx512_bf16/amx_bf16 in /proc/cpuinfo), where it would only be slower")


def configure_npu(values):
    """Sets up the Ascend adapter when npu_device imports; returns True on Ascend."""
    try:
        import npu_device  # noqa: F401  (Ascend TensorFlow 2 adapter)
    except ImportError:
        asked = [f"--{n}" for n in ("over_dump", "data_dump_flag", "profiling", "use_mixlist", "fusion_off_flag")
                 if values[n].value]
        if asked:
            print(f"[Warning] {', '.join(asked)}: Ascend-only options, no effect without npu_device", flush=True)
        return False
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
            '{"output":"%s","training_trace":"on","task_trace":"on","fp_point":"","bp_point":""}'
            % values.profiling_dump_path)
    if values.use_mixlist and values.precision_mode == "allow_mix_precision":
        options.modify_mixlist = values.mixlist_file
    if values.fusion_off_flag:
        options.fusion_switch_file = values.fusion_off_file
    npu_device.open().as_default()
    return True


def npu_distributed_optimizer(optimizer):
    """Ascend multi-rank: gradients all-reduced over HCCL by the adapter's optimizer wrapper."""
    import npu_device

    return npu_device.distribute.npu_distributed_keras_optimizer_wrapper(optimizer)


def npu_broadcast(variables):
    """Ascend multi-rank: rank 0's initialised (or restored) values to every rank, before the first step."""
    import npu_device

    npu_device.distribute.broadcast(variables, root_rank=0)


class StepLogger(keras.callbacks.Callback):
    """Prints the markers the launchers grep: params, per-step loss/time, epoch duration, steady imgs/s."""

    def __init__(self, batch_size, first_step=0):
        super().__init__()
        self.batch_size = batch_size
        self.step = first_step
        self.epochs = []  # per run epoch: list of batch seconds

    def on_train_begin(self, logs=None):
        print(f"params: {self.params}", flush=True)
        self.train_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.epochs.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self.batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])  # waits for the step, so the time below is the step's real duration
        seconds = time.perf_counter() - self.batch_start
        self.epochs[-1].append(seconds)
        self.step += 1
        print(f"step:{self.step} ,loss: {loss:.6f} ,time: {seconds:.6f}", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        print(f"epoch_duration: {time.perf_counter() - self.epoch_start:.3f}", flush=True)

    def on_train_end(self, logs=None):
        seconds = steady_step_seconds(self.epochs)
        if seconds:
            print(f"ms/step: {seconds * 1000:.3f}", flush=True)
            print(f"imgs/s: {self.batch_size / seconds:.2f}", flush=True)
        print(f"train_duration: {time.perf_counter() - self.train_start:.3f}", flush=True)


def steady_step_seconds(epochs):
    """Mean step time without warm-up: drop the first run epoch (graph tracing, cache filling) when there is
    a later one, else the first step; then drop outliers above 3x the median. None without steps."""
    steps = [s for e in epochs[1:] for s in e] if len(epochs) > 1 else epochs[0][1:] if epochs else []
    steps = steps or [s for e in epochs for s in e]
    if not steps:
        return None
    median = sorted(steps)[len(steps) // 2]
    kept = [s for s in steps if s <= 3 * median]
    return math.fsum(kept) / len(kept)


def latest_checkpoint(model_dir):
    """(path prefix, epoch) of the newest model.ckpt-NNNN in model_dir, or (None, 0)."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(model_dir), "model.ckpt-*.index")):
        match = CKPT_PATTERN.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path[: -len(".index")]))
    if not found:
        return None, 0
    epoch, prefix = max(found)
    return prefix, epoch


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes model and optimizer state to <model_dir>/model.ckpt-{epoch:04d} after every epoch."""

    def __init__(self, checkpoint, model_dir):
        super().__init__()
        self.checkpoint = checkpoint
        self.model_dir = model_dir

    def on_epoch_end(self, epoch, logs=None):
        self.checkpoint.write(os.path.join(self.model_dir, f"model.ckpt-{epoch + 1:04d}"))


class EpochSummaries(keras.callbacks.Callback):
    """Epoch metrics as TensorBoard event files in <model_dir>/train and /validation (core tf.summary.write,
    so the tensorboard package is not needed to write them)."""

    def __init__(self, model_dir):
        super().__init__()
        self.writers = {kind: tf.summary.create_file_writer(os.path.join(model_dir, kind))
                        for kind in ("train", "validation")}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            kind, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self.writers[kind].as_default():
                tf.summary.write(f"epoch_{name}", tf.constant(float(value)), step=epoch + 1)
        for writer in self.writers.values():
            writer.flush()
