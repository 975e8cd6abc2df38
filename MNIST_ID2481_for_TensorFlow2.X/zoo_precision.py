"""The zoo's one precision table: what an Ascend --precision_mode means on the device actually present.

Vendored: every model folder holds a byte-identical copy of ci/canonical/zoo_precision.py (ci/vendored.toml).

| precision_mode                 | Ascend NPU | GPU           | CPU with amx_bf16 / avx512_bf16  | other CPU |
| ------------------------------ | ---------- | ------------- | -------------------------------- | --------- |
| allow_mix_precision,           | as given   | float16 mixed | bfloat16 mixed where measured    | float32   |
| allow_fp32_to_fp16, force_fp16 |            |               | faster (MEASURED_BF16), else     |           |
|                                |            |               | float32                          |           |
| must_keep_origin_dtype         | as given   | float32       | float32                          | float32   |

On a CPU bfloat16 is the 16-bit type with fast kernels (oneDNN); float16 has none, and bf16 emulated on a
CPU without native support is slower than float32. Even with native bf16, oneDNN's rewrite is slower than
float32 for some networks (LeNet: its small layers gain less than the casts cost), so bf16 is used only
where a benchmark of that model on that CPU kind measured it faster: MEASURED_BF16 below, each entry with its
source. A model or CPU kind not in it trains float32 until `bash ci/bench.sh --only <model folder>
--precision both` measures it. ZOO_CPU_BF16=1 forces bf16 on a CPU with native bf16, =0 forces float32
(the benchmark sets 1 to measure bf16). The start-up line (Precision.describe) says which and why.
Nothing here imports TensorFlow at module level, so flag parsing and the table stay fast and testable.

oneDNN: TensorFlow turns its oneDNN kernels on by default only on x86 CPUs with AVX-512 VNNI, bf16 or AMX. On
an AVX2 CPU (2-core AMD EPYC, TF 2.21) the zoo's perf launchers trained 2-3x faster with them on (LeNet,
MNIST TF2, MobileNetV1, AlexNet: README "Devices"), so every entry script calls before_tensorflow() before it
imports TensorFlow. TF_ENABLE_ONEDNN_OPTS=0 opts out.
"""
import importlib.util
import os
import sys
from typing import NamedTuple

PRECISION_MODES = ("allow_mix_precision", "allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype")
MIXED_MODES = PRECISION_MODES[:3]
# CPU kinds with native bf16, the stronger first: AMX tiles (Sapphire Rapids and later) or AVX-512 bf16.
CPU_KINDS = ("amx_bf16", "avx512_bf16")
OVERRIDE = "ZOO_CPU_BF16"
BENCH_COMMAND = "bash ci/bench.sh --only {model} --precision both"


ONEDNN = "TF_ENABLE_ONEDNN_OPTS"
PLOTTING = "matplotlib"


def prefer_onednn(environ=os.environ):
    """oneDNN's kernels on, unless the user set TF_ENABLE_ONEDNN_OPTS; before TensorFlow is imported (its
    value is read once, at import)."""
    environ.setdefault(ONEDNN, "1")


def before_tensorflow(environ=os.environ, modules=sys.modules):
    """What every entry script sets before TensorFlow loads: oneDNN preferred, and Keras's plotting import
    skipped. Keras 3, which TensorFlow loads, imports matplotlib.pyplot whenever matplotlib is installed, for
    plotting helpers no model here calls: 1.2-1.9 s and 28 MB of every start on a 2-core EPYC. matplotlib
    reads as absent (None in sys.modules: Python refuses the import) until allow_matplotlib(); a matplotlib
    imported earlier stays."""
    prefer_onednn(environ)
    modules.setdefault(PLOTTING, None)


def allow_matplotlib(modules=sys.modules):
    """Lifts before_tensorflow's block, for the code that draws (AlexNet's acc.png and loss.png)."""
    if PLOTTING in modules and modules[PLOTTING] is None:
        del modules[PLOTTING]


class Measurement(NamedTuple):
    """bf16 mode's training speed over float32's for one model's performance launcher on one CPU kind."""
    ratio: float
    source: str


EPYC_BF16_BENCH = ("2-core AMD EPYC with AVX-512 bf16, tensorflow-cpu 2.21, `bash ci/bench.sh --precision both "
                   "--rounds 2` (2026-12-02), perf launcher: ")
XEON_AMX_BENCH = ("2-core Intel Xeon with AMX, tensorflow-cpu 2.21, `bash ci/bench.sh --precision both --rounds 2` "
                  "(2026-12-03), perf launcher: ")
# (model folder, CPU kind) -> Measurement. Only measured figures; a new one comes from BENCH_COMMAND, whose
# table prints the project's measured ratio next to the entry here.
MEASURED_BF16 = {
    ("LeNet_ID0127_for_TensorFlow", "amx_bf16"): Measurement(
        1.06, XEON_AMX_BENCH + "bf16 mode 9,140 img/s, float32 8,650 img/s"),
    ("MNIST_ID2481_for_TensorFlow2.X", "amx_bf16"): Measurement(
        2.16, XEON_AMX_BENCH + "bf16 mode 8,061 img/s, float32 3,730 img/s"),
    ("AlexNet_ID0259_for_TensorFlow", "amx_bf16"): Measurement(
        1.84, XEON_AMX_BENCH + "bf16 mode 82.8 img/s, float32 44.9 img/s (`--only AlexNet`, after its LRN gradient)"),
    ("MobileNetV1_for_TensorFlow", "amx_bf16"): Measurement(
        0.91, XEON_AMX_BENCH + "bf16 mode 21.6 img/s, float32 23.8 img/s"),
    ("cosine_metric_learning", "amx_bf16"): Measurement(
        1.44, XEON_AMX_BENCH + "bf16 mode 85.0 img/s, float32 58.9 img/s"),
    ("LeNet_ID0127_for_TensorFlow", "avx512_bf16"): Measurement(
        0.95, EPYC_BF16_BENCH + "bf16 mode 9,111 img/s, float32 9,565 img/s"),
    ("MNIST_ID2481_for_TensorFlow2.X", "avx512_bf16"): Measurement(
        1.76, EPYC_BF16_BENCH + "bf16 mode 5,474 img/s, float32 3,113 img/s"),
    ("AlexNet_ID0259_for_TensorFlow", "avx512_bf16"): Measurement(
        1.46, EPYC_BF16_BENCH + "bf16 mode 50.5 img/s, float32 34.5 img/s"),
    ("MobileNetV1_for_TensorFlow", "avx512_bf16"): Measurement(
        1.04, EPYC_BF16_BENCH + "bf16 mode 27.7 img/s, float32 26.7 img/s"),
    ("cosine_metric_learning", "avx512_bf16"): Measurement(
        1.32, EPYC_BF16_BENCH + "bf16 mode 85.4 img/s, float32 64.8 img/s"),
}


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags as a set (empty when /proc/cpuinfo cannot be read)."""
    try:
        with open(cpuinfo) as handle:
            return {word for line in handle if line.startswith("flags") for word in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def cpu_kind(flags):
    """'amx_bf16', 'avx512_bf16' or None (no native bf16) for a set of CPU flags."""
    return next((kind for kind in CPU_KINDS if kind in flags), None)


def cpu_override(environ=None):
    """True (ZOO_CPU_BF16=1), False (=0) or None (unset or empty); ValueError for any other value."""
    value = (os.environ if environ is None else environ).get(OVERRIDE, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"{OVERRIDE}={value}: must be 1 (bf16 on a CPU with native bf16), 0 (float32) or unset "
                         "(the measured table)")
    return None if value == "" else value == "1"


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


def resolve(precision_mode, device, model, flags=None, environ=None):
    """The table above for `model` (its folder name, the key of MEASURED_BF16). flags: the CPU's flags (read
    from /proc/cpuinfo when None); environ: where ZOO_CPU_BF16 is read (os.environ when None). ValueError for
    an unknown precision_mode or a ZOO_CPU_BF16 that is not 0 or 1."""
    if precision_mode not in PRECISION_MODES:
        raise ValueError(f"precision_mode {precision_mode!r} is not one of {', '.join(PRECISION_MODES)}")
    forced = cpu_override(environ)
    if device == "Ascend":
        return Precision(device, precision_mode, "the NPU applies precision_mode itself")
    if precision_mode not in MIXED_MODES:
        return Precision(device, "float32", precision_mode)
    if device == "GPU":
        return Precision(device, "float16", f"{precision_mode} -> float16 auto mixed precision")
    return _cpu_choice(precision_mode, model, cpu_kind(cpu_flags() if flags is None else flags), forced)


def _cpu_choice(precision_mode, model, kind, forced):
    """A mixed mode on a CPU: bfloat16 or float32 with the reason, from the CPU kind, the table and the override."""
    float32 = f"{precision_mode} requested; float32"
    if kind is None:
        ignored = f"; {OVERRIDE}=1 has no effect here" if forced else ""
        return Precision("CPU", "float32", f"{float32}: this CPU has no native bf16 ({'/'.join(CPU_KINDS)}), "
                                           f"where bf16 would be slower{ignored}")
    if forced is not None:
        dtype = "bfloat16" if forced else "float32"
        return Precision("CPU", dtype, f"{precision_mode} -> {dtype} on this {kind} CPU, forced by "
                                       f"{OVERRIDE}={int(forced)}")
    measured = MEASURED_BF16.get((model, kind))
    if measured is None:
        return Precision("CPU", "float32", f"{float32}: bf16 has not been measured faster for {model} on {kind} "
                                           f"CPUs; measure it with `{BENCH_COMMAND.format(model=model)}` and add it "
                                           f"to MEASURED_BF16 in zoo_precision.py")
    if measured.ratio > 1:
        return Precision("CPU", "bfloat16", f"{precision_mode} -> bfloat16: measured {measured.ratio:.2f}x the "
                                            f"float32 speed for {model} on {kind} CPUs")
    return Precision("CPU", "float32", f"{float32}: bf16 measured {measured.ratio:.2f}x the float32 speed for "
                                       f"{model} on {kind} CPUs")
