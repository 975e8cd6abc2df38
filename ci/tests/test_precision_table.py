"""The zoo's precision table on each CPU kind the project has met, on GPU and on Ascend."""
import pytest

from ci.canonical import zoo_precision as zp

AVX2 = {"avx", "avx2", "fma"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16"}
AMX = AVX512_BF16 | {"amx_tile", "amx_bf16"}


@pytest.mark.parametrize("mode", zp.MIXED_MODES)
@pytest.mark.parametrize("flags, dtype", [(AVX2, "float32"), (AVX512_BF16, "bfloat16"), (AMX, "bfloat16")])
def test_mixed_modes_on_cpu_use_bf16_only_where_it_is_native(mode, flags, dtype):
    assert zp.resolve(mode, "CPU", flags).dtype == dtype


@pytest.mark.parametrize("flags", [AVX2, AVX512_BF16, AMX])
def test_must_keep_origin_dtype_is_float32_everywhere_off_ascend(flags):
    for device in ("CPU", "GPU"):
        assert zp.resolve("must_keep_origin_dtype", device, flags).dtype == "float32"


def test_gpu_mixed_is_float16_and_ascend_keeps_the_mode():
    assert zp.resolve("allow_mix_precision", "GPU", set()).keras_policy == "mixed_float16"
    ascend = zp.resolve("allow_fp32_to_fp16", "Ascend", AMX)
    assert ascend.dtype == "allow_fp32_to_fp16" and not ascend.mixed and ascend.keras_policy == "float32"


def test_a_model_opt_out_keeps_float32_and_says_why():
    chosen = zp.resolve("allow_mix_precision", "CPU", AMX, cpu_bf16=False, cpu_bf16_note="measured 0.83x")
    assert chosen.dtype == "float32"
    assert chosen.describe() == "device: CPU, precision: float32 (allow_mix_precision requested; measured 0.83x)"


def test_bf16_is_described_with_the_flags_that_allow_it():
    chosen = zp.resolve("allow_mix_precision", "CPU", AMX)
    assert chosen.label == "bfloat16 mixed" and chosen.keras_policy == "mixed_bfloat16"
    assert "avx512_bf16, amx_bf16" in chosen.describe()


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="precision_mode 'fp8'"):
        zp.resolve("fp8", "CPU", AVX2)


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU amx_bf16 in a name\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert zp.cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16"}
    assert zp.cpu_flags(str(tmp_path / "missing")) == set()


def test_session_config_rewrite_follows_the_precision():
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

    bf16 = zp.resolve("allow_mix_precision", "CPU", AMX).apply_to_session_config(tf.compat.v1.ConfigProto())
    assert bf16.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == RewriterConfig.ON
    fp32 = zp.resolve("allow_mix_precision", "CPU", AVX2).apply_to_session_config(tf.compat.v1.ConfigProto())
    assert fp32.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 != RewriterConfig.ON
    fp16 = zp.resolve("force_fp16", "GPU", set()).apply_to_session_config(tf.compat.v1.ConfigProto())
    assert fp16.graph_options.rewrite_options.auto_mixed_precision == RewriterConfig.ON
