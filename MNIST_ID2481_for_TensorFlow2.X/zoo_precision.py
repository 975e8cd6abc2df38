"""The zoo's one precision table: what an Ascend --precision_mode means on the device actually present.

Vendored: every model folder holds a byte-identical copy of ci/canonical/zoo_precision.py (ci/vendored.toml).

| precision_mode                      | Ascend NPU | GPU           | CPU with avx512_bf16/amx_bf16 | other CPU |
| ----------------------------------- | ---------- | ------------- | ----------------------------- | --------- |
| allow_mix_precision                 | as given   | float16 mixed | bfloat16 mixed                | float32   |
| allow_fp32_to_fp16, force_fp16      | as given   | float16 mixed | bfloat16 mixed                | float32   |
| must_keep_origin_dtype              | as given   | float32       | float32                       | float32   |

On a CPU bfloat16 is the 16-bit type with fast kernels (oneDNN); float16 has none, and bf16 emulated on a
CPU without native support is slower than float32. A model may opt out of CPU bf16 (`cpu_bf16=False`) when a
measurement showed it slower for that network; it passes the reason, which the start-up line prints.
Nothing here imports TensorFlow at module level, so flag parsing and the table stay fast and testable.
"""
import importlib.util

PRECISION_MODES = ("allow_mix_precision", "allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype")
MIXED_MODES = PRECISION_MODES[:3]
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags as a set (empty when /proc/cpuinfo cannot be read)."""
    try:
        with open(cpuinfo) as handle:
            return {word for line in handle if line.startswith("flags") for word in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def native_bf16_flags(flags):
    return [f for f in NATIVE_BF16_FLAGS if f in flags]


def detect_device(adapter):
    """'Ascend' when the Ascend adapter module (npu_bridge or npu_device) imports, else 'GPU' or 'CPU'."""
    if importlib.util.find_spec(adapter) is not None:
        return "Ascend"
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


class Precision:
    """The device and the compute precision actually used, and why."""

    def __init__(self, device, dtype, reason):
        self.device = device  # "Ascend", "GPU" or "CPU"
        self.dtype = dtype  # "float32", "float16" or "bfloat16"; on Ascend the precision_mode itself
        self.reason = reason

    @property
    def mixed(self):
        return self.dtype in ("float16", "bfloat16")

    @property
    def label(self):
        return f"{self.dtype} mixed" if self.mixed else self.dtype

    def describe(self):
        return f"device: {self.device}, precision: {self.label} ({self.reason})"

    def apply_to_session_config(self, config):
        """TF1 graph mode: turns on the grappler rewrite that gives this precision off Ascend."""
        from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

        rewrites = config.graph_options.rewrite_options
        if self.device == "GPU" and self.dtype == "float16":
            rewrites.auto_mixed_precision = RewriterConfig.ON
        elif self.device == "CPU" and self.dtype == "bfloat16":
            rewrites.auto_mixed_precision_onednn_bfloat16 = RewriterConfig.ON
        return config

    @property
    def keras_policy(self):
        """Keras 3 dtype policy name for this precision (float32 on Ascend: the NPU applies the mode)."""
        return {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}.get(self.dtype, "float32")


def resolve(precision_mode, device, flags=None, cpu_bf16=True, cpu_bf16_note=""):
    """The table above. flags: the CPU's flags (read from /proc/cpuinfo when None). cpu_bf16=False: this
    model stays float32 on CPU, for the measured reason cpu_bf16_note."""
    if precision_mode not in PRECISION_MODES:
        raise ValueError(f"precision_mode {precision_mode!r} is not one of {', '.join(PRECISION_MODES)}")
    if device == "Ascend":
        return Precision(device, precision_mode, "the NPU applies precision_mode itself")
    if precision_mode not in MIXED_MODES:
        return Precision(device, "float32", precision_mode)
    if device == "GPU":
        return Precision(device, "float16", f"{precision_mode} -> float16 auto mixed precision")
    native = native_bf16_flags(cpu_flags() if flags is None else flags)
    if not native:
        return Precision(device, "float32", f"{precision_mode} requested; this CPU has no native bf16 "
                                            f"({'/'.join(NATIVE_BF16_FLAGS)}), where bf16 would be slower")
    if not cpu_bf16:
        return Precision(device, "float32", f"{precision_mode} requested; {cpu_bf16_note}")
    return Precision(device, "bfloat16", f"{precision_mode} -> bfloat16 on this CPU ({', '.join(native)})")
