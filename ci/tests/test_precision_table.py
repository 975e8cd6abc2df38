"""The zoo's precision table on each CPU kind the project has met, on GPU and on Ascend: bf16 on a CPU only
where MEASURED_BF16 has the model faster in it, the ZOO_CPU_BF16 override, and the reasons printed."""
import importlib.util
import subprocess
import sys

import pytest

from ci.canonical import zoo_precision as zp
from ci.tests.conftest import REPO

AVX2 = {"avx", "avx2", "fma"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16"}
AMX = AVX512_BF16 | {"amx_tile", "amx_bf16"}
LENET, ALEXNET, MOBILENET = "LeNet_ID0127_for_TensorFlow", "AlexNet_ID0259_for_TensorFlow", "MobileNetV1_for_TensorFlow"
COSINE = "cosine_metric_learning"
UNSET = {}  # an environment without ZOO_CPU_BF16, whatever the test process has


def on_cpu(mode, model, flags, environ=UNSET):
    return zp.resolve(mode, "CPU", model, flags, environ)


@pytest.mark.parametrize("flags, kind", [(AVX2, None), (AVX512_BF16, "avx512_bf16"), (AMX, "amx_bf16"),
                                         ({"amx_bf16"}, "amx_bf16"), (set(), None)])
def test_cpu_kind_prefers_amx(flags, kind):
    assert zp.cpu_kind(flags) == kind


@pytest.mark.parametrize("mode", zp.MIXED_MODES)
@pytest.mark.parametrize("model, flags, ratio, kind", [(ALEXNET, AMX, "1.84x", "amx_bf16"),
                                                       (LENET, AMX, "1.06x", "amx_bf16"),
                                                       (COSINE, AVX512_BF16, "1.32x", "avx512_bf16")])
def test_measured_faster_trains_bf16(mode, model, flags, ratio, kind):
    chosen = on_cpu(mode, model, flags)
    assert (chosen.dtype, chosen.label, chosen.keras_policy) == ("bfloat16", "bfloat16 mixed", "mixed_bfloat16")
    assert chosen.reason == f"{mode} -> bfloat16: measured {ratio} the float32 speed for {model} on {kind} CPUs"


@pytest.mark.parametrize("model, flags, ratio, kind", [(MOBILENET, AMX, "0.91x", "amx_bf16"),
                                                       (LENET, AVX512_BF16, "0.95x", "avx512_bf16")])
def test_measured_slower_stays_float32_with_the_ratio(model, flags, ratio, kind):
    chosen = on_cpu("allow_mix_precision", model, flags)
    assert chosen.dtype == "float32"
    assert chosen.describe() == (f"device: CPU, precision: float32 (allow_mix_precision requested; float32: bf16 "
                                 f"measured {ratio} the float32 speed for {model} on {kind} CPUs)")


@pytest.mark.parametrize("model, flags", [("a_model_not_in_the_table", AMX), ("a_model_not_in_the_table", AVX512_BF16)])
def test_unmeasured_model_or_kind_stays_float32_and_names_the_bench_command(model, flags):
    chosen = on_cpu("force_fp16", model, flags)
    assert chosen.dtype == "float32"
    assert f"bf16 has not been measured faster for {model} on {zp.cpu_kind(flags)} CPUs" in chosen.reason
    assert f"`bash ci/bench.sh --only {model} --precision both`" in chosen.reason
    assert "MEASURED_BF16" in chosen.reason


def test_every_table_entry_is_a_known_kind_with_a_source():
    for (model, kind), measured in zp.MEASURED_BF16.items():
        assert kind in zp.CPU_KINDS and measured.ratio > 0 and "tensorflow" in measured.source.lower(), model


@pytest.mark.parametrize("model", [LENET, ALEXNET, COSINE])
@pytest.mark.parametrize("flags", [AVX512_BF16, AMX])
def test_the_override_forces_either_dtype_on_a_native_bf16_cpu(model, flags):
    kind = zp.cpu_kind(flags)
    forced = on_cpu("allow_mix_precision", model, flags, {"ZOO_CPU_BF16": "1"})
    assert forced.dtype == "bfloat16"
    assert forced.reason == f"allow_mix_precision -> bfloat16 on this {kind} CPU, forced by ZOO_CPU_BF16=1"
    kept = on_cpu("allow_mix_precision", model, flags, {"ZOO_CPU_BF16": "0"})
    assert kept.dtype == "float32" and kept.reason.endswith("forced by ZOO_CPU_BF16=0")
    assert on_cpu("allow_mix_precision", model, flags, {"ZOO_CPU_BF16": ""}).dtype == on_cpu(
        "allow_mix_precision", model, flags).dtype  # empty is unset


def test_the_override_cannot_make_bf16_without_native_support():
    chosen = on_cpu("allow_mix_precision", ALEXNET, AVX2, {"ZOO_CPU_BF16": "1"})
    assert chosen.dtype == "float32"
    assert "this CPU has no native bf16" in chosen.reason and "ZOO_CPU_BF16=1 has no effect here" in chosen.reason
    assert "no effect" not in on_cpu("allow_mix_precision", ALEXNET, AVX2).reason


@pytest.mark.parametrize("value", ["yes", "2", "true", " 1"])
def test_a_bad_override_is_refused_on_every_device(value):
    for device in ("CPU", "GPU", "Ascend"):
        with pytest.raises(ValueError, match=rf"^ZOO_CPU_BF16={value}: must be 1 .* 0 \(float32\) or unset"):
            zp.resolve("must_keep_origin_dtype", device, LENET, AMX, {"ZOO_CPU_BF16": value})


def test_the_override_is_read_from_the_process_environment(monkeypatch):
    monkeypatch.setenv("ZOO_CPU_BF16", "1")
    assert zp.resolve("allow_mix_precision", "CPU", LENET, AMX).dtype == "bfloat16"
    monkeypatch.setenv("ZOO_CPU_BF16", "on")
    with pytest.raises(ValueError, match="ZOO_CPU_BF16=on"):
        zp.resolve("allow_mix_precision", "CPU", LENET, AMX)


@pytest.mark.parametrize("flags", [AVX2, AVX512_BF16, AMX])
def test_must_keep_origin_dtype_is_float32_everywhere_off_ascend(flags):
    for device in ("CPU", "GPU"):
        for environ in (UNSET, {"ZOO_CPU_BF16": "1"}):
            assert zp.resolve("must_keep_origin_dtype", device, ALEXNET, flags, environ).dtype == "float32"


@pytest.mark.parametrize("environ", [UNSET, {"ZOO_CPU_BF16": "0"}, {"ZOO_CPU_BF16": "1"}])
def test_gpu_mixed_is_float16_and_ascend_keeps_the_mode(environ):
    gpu = zp.resolve("allow_mix_precision", "GPU", LENET, set(), environ)
    assert gpu.keras_policy == "mixed_float16"
    assert gpu.describe() == ("device: GPU, precision: float16 mixed "
                              "(allow_mix_precision -> float16 auto mixed precision)")
    ascend = zp.resolve("allow_fp32_to_fp16", "Ascend", ALEXNET, AMX, environ)
    assert ascend.dtype == "allow_fp32_to_fp16" and not ascend.mixed and ascend.keras_policy == "float32"
    assert ascend.reason == "the NPU applies precision_mode itself"


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="precision_mode 'fp8'"):
        zp.resolve("fp8", "CPU", LENET, AVX2, UNSET)


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU amx_bf16 in a name\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert zp.cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16"}
    assert zp.cpu_flags(str(tmp_path / "missing")) == set()


def test_session_config_rewrite_follows_the_precision():
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

    bf16 = on_cpu("allow_mix_precision", ALEXNET, AMX).apply_to_session_config(tf.compat.v1.ConfigProto())
    assert bf16.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == RewriterConfig.ON
    fp32 = on_cpu("allow_mix_precision", MOBILENET, AMX).apply_to_session_config(tf.compat.v1.ConfigProto())
    assert fp32.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 != RewriterConfig.ON
    fp16 = zp.resolve("force_fp16", "GPU", LENET, set(), UNSET).apply_to_session_config(tf.compat.v1.ConfigProto())
    assert fp16.graph_options.rewrite_options.auto_mixed_precision == RewriterConfig.ON


def test_onednn_is_preferred_unless_the_user_chose():
    environ = {}
    zp.prefer_onednn(environ)
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    chosen = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    zp.prefer_onednn(chosen)
    assert chosen == {"TF_ENABLE_ONEDNN_OPTS": "0"}


def test_tensorflow_loads_without_matplotlib_until_it_is_allowed():
    """before_tensorflow keeps Keras's matplotlib.pyplot import out of TensorFlow's start-up; allow_matplotlib
    gives it back to the code that draws."""
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed")
    code = ("import sys; from ci.canonical import zoo_precision as zp; zp.before_tensorflow(); import tensorflow; "
            "print('matplotlib.pyplot' in sys.modules); zp.allow_matplotlib(); import matplotlib.pyplot; "
            "print(sys.modules['matplotlib'] is not None)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["False", "True"], proc.stderr[-2000:]
    plain = "import sys, tensorflow; print('matplotlib.pyplot' in sys.modules)"
    unblocked = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, timeout=120)
    assert unblocked.stdout.split() == ["True"], "Keras no longer imports matplotlib: before_tensorflow can go"
