"""Device and precision choice: the off-Ascend mapping of --precision_mode, loss scaling, the NPU config."""
import argparse

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import device_config
import train_app
import train_market1501

ON = RewriterConfig.ON


def flags(*argv):
    return train_app.build_parser(train_market1501).parse_args(list(argv))


def test_launcher_switches_parse_as_booleans():
    args = flags("--over_dump=True", "--data_dump_flag=false", "--data_dump_step=3", "--profiling=1",
                 "--autotune=False")
    assert (args.over_dump, args.data_dump_flag, args.data_dump_step, args.profiling, args.autotune) == \
        (True, False, 3, True, False)
    assert args.precision_mode == "allow_mix_precision"


def test_native_bf16_reads_cpu_flags(tmp_path):
    with_bf16, without = tmp_path / "a", tmp_path / "b"
    with_bf16.write_text("flags\t\t: fpu avx512f avx512_bf16 avx512vl\n")
    without.write_text("flags\t\t: fpu avx2 avx512f\n")
    assert device_config.native_bf16(str(with_bf16))
    assert not device_config.native_bf16(str(without))
    assert not device_config.native_bf16(str(tmp_path / "missing"))


@pytest.mark.skipif(device_config.on_ascend() or bool(tf.config.list_physical_devices("GPU")),
                    reason="checks the CPU mapping")
@pytest.mark.parametrize("bf16", [True, False])
def test_cpu_precision_mapping(monkeypatch, bf16, tmp_path):
    monkeypatch.setattr(device_config, "native_bf16", lambda: bf16)

    def choose(mode, training=True):
        config, where = device_config.session_config(flags(f"--precision_mode={mode}"), training, str(tmp_path))
        rewrites = config.graph_options.rewrite_options
        return rewrites.auto_mixed_precision_onednn_bfloat16 == ON, rewrites.auto_mixed_precision == ON, where

    for mode in ("allow_mix_precision", "allow_fp32_to_fp16"):
        uses_bf16, uses_fp16, where = choose(mode)
        assert (uses_bf16, uses_fp16) == (bf16, False)
        assert where.startswith("CPU, bfloat16" if bf16 else "CPU, float32 (")
    assert choose("must_keep_origin_dtype")[:2] == (False, False)
    assert choose("force_fp16")[:2] == (False, False)
    # Inference is float32 whatever the mode: exported/frozen features are the float32 network's.
    assert choose("allow_mix_precision", training=False) == (False, False, "CPU, float32 (inference)")


def test_loss_scaling_wraps_only_float16_training():
    with tf.Graph().as_default():
        adam = tf.compat.v1.train.AdamOptimizer(0.1)
        plain = tf.compat.v1.ConfigProto()
        gpu_mixed = tf.compat.v1.ConfigProto()
        gpu_mixed.graph_options.rewrite_options.auto_mixed_precision = ON
        assert device_config.wrap_optimizer(adam, plain, "allow_mix_precision") is adam
        assert device_config.wrap_optimizer(adam, gpu_mixed, "must_keep_origin_dtype") is adam
        scaled = device_config.wrap_optimizer(adam, gpu_mixed, "allow_mix_precision")
        assert isinstance(scaled, tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer)
        # The wrapped optimizer still trains (here on CPU, where the loss scale is exact arithmetic).
        w = tf.compat.v1.get_variable("w", initializer=np.float32(3.0))
        step = scaled.minimize(tf.square(w))
        with tf.compat.v1.Session(config=plain) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for _ in range(5):
                sess.run(step)
            assert abs(sess.run(w)) < 3.0 - 0.4


@pytest.mark.skipif(not device_config.on_ascend(), reason="needs the Ascend adapter (npu_bridge)")
def test_npu_config_carries_the_launcher_options(tmp_path):
    args = argparse.Namespace(precision_mode="allow_fp32_to_fp16", over_dump=True, data_dump_flag=False,
                              data_dump_step=10, profiling=True, autotune=True)
    config, where = device_config.session_config(args, True, str(tmp_path))
    npu = config.graph_options.rewrite_options.custom_optimizers[0]
    assert npu.name == "NpuOptimizer" and where.startswith("Ascend NPU")
    assert npu.parameter_map["precision_mode"].s == b"allow_fp32_to_fp16"
    assert npu.parameter_map["enable_dump_debug"].b and npu.parameter_map["profiling_mode"].b
    assert npu.parameter_map["auto_tune_mode"].s == b"RL,GA"
    assert config.graph_options.rewrite_options.remapping == RewriterConfig.OFF
