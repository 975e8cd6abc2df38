"""The device boundary: the zoo precision table off Ascend, inference in float32, loss scaling, and the
Ascend branches run against a stub npu_bridge injected in sys.modules (tests only; never at run time)."""
import argparse
import importlib.machinery
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import cli
import device_config
import input_pipeline
import modes
import train_market1501
import zoo_precision
from datasets.util import UsageError

ON = RewriterConfig.ON


def flags(*argv):
    return cli.build_parser(train_market1501).parse_args(list(argv), argparse.Namespace(started=0.0))


def test_launcher_switches_parse_as_booleans():
    args = flags("--over_dump=True", "--data_dump_flag=false", "--data_dump_step=3", "--profiling=1",
                 "--autotune=False")
    assert (args.over_dump, args.data_dump_flag, args.data_dump_step, args.profiling, args.autotune) == \
        (True, False, 3, True, False)
    assert args.precision_mode == "allow_mix_precision"
    assert device_config.PRECISION_MODES == zoo_precision.PRECISION_MODES


@pytest.fixture
def on_cpu(monkeypatch):
    """Pretends this machine is a CPU whose flags the test chooses (the table reads /proc/cpuinfo)."""
    monkeypatch.setattr(device_config, "device", lambda: "CPU")
    monkeypatch.delenv("ZOO_CPU_BF16", raising=False)

    def with_flags(*cpu_flags):
        monkeypatch.setattr(zoo_precision, "cpu_flags", lambda: set(cpu_flags))
    return with_flags


# bf16 measured faster on AVX-512 bf16 (1.32x) and on AMX (1.44x); ZOO_CPU_BF16=0 keeps float32.
@pytest.mark.parametrize("cpu_flags, forced, mixed_dtype", [
    (("avx2",), None, "float32"), (("avx512_bf16",), None, "bfloat16"), (("amx_bf16", "avx512_bf16"), None, "bfloat16"),
    (("avx2",), "1", "float32"), (("amx_bf16", "avx512_bf16"), "0", "float32"), (("avx512_bf16",), "0", "float32")])
def test_cpu_training_follows_the_measured_table(on_cpu, monkeypatch, cpu_flags, forced, mixed_dtype):
    on_cpu(*cpu_flags)
    if forced:
        monkeypatch.setenv("ZOO_CPU_BF16", forced)
    ascend = device_config.AscendOptions("/unused")
    for mode in zoo_precision.MIXED_MODES:  # force_fp16 included: the zoo table has one meaning for it
        chosen = device_config.precision(mode)
        assert (chosen.device, chosen.dtype) == ("CPU", mixed_dtype)
        rewrites = device_config.session_config(chosen, ascend).graph_options.rewrite_options
        assert rewrites.auto_mixed_precision_onednn_bfloat16 == (ON if mixed_dtype == "bfloat16" else 0)
        assert rewrites.auto_mixed_precision != ON
    if "amx_bf16" in cpu_flags and not forced:
        assert "measured 1.44x the float32 speed for cosine_metric_learning on amx_bf16" in chosen.reason
    elif "avx512_bf16" in cpu_flags and not forced:
        assert "measured 1.32x the float32 speed for cosine_metric_learning" in chosen.reason
    assert device_config.precision("must_keep_origin_dtype").dtype == "float32"


def test_a_bad_override_is_a_usage_error_in_every_mode(on_cpu, monkeypatch):
    on_cpu("amx_bf16")
    monkeypatch.setenv("ZOO_CPU_BF16", "yes")
    for training in (True, False):
        with pytest.raises(UsageError, match="^ZOO_CPU_BF16=yes: must be 1"):
            device_config.precision("allow_mix_precision", training=training)


def test_inference_is_float32_off_ascend(on_cpu, monkeypatch):
    on_cpu("amx_bf16")
    monkeypatch.setenv("ZOO_CPU_BF16", "1")  # training would be bf16
    chosen = device_config.precision("allow_mix_precision", training=False)
    assert chosen.dtype == "float32" and chosen.describe().startswith("device: CPU, precision: float32 (inference")
    config = device_config.session_config(chosen, device_config.AscendOptions("/unused"))
    assert config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 != ON


def test_loss_scaling_wraps_only_float16_training():
    fp16 = zoo_precision.Precision("GPU", "float16", "test")
    with tf.Graph().as_default():
        adam = tf.compat.v1.train.AdamOptimizer(0.1)
        for dtype in ("float32", "bfloat16"):
            assert device_config.wrap_optimizer(adam, zoo_precision.Precision("CPU", dtype, "test")) is adam
        scaled = device_config.wrap_optimizer(adam, fp16)
        assert isinstance(scaled, tf.compat.v1.mixed_precision.MixedPrecisionLossScaleOptimizer)
        # The wrapped optimizer still trains (here on CPU, where the loss scale is exact arithmetic).
        w = tf.compat.v1.get_variable("w", initializer=np.float32(3.0))
        step = scaled.minimize(tf.square(w))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for _ in range(5):
                sess.run(step)
            assert abs(sess.run(w)) < 3.0 - 0.4


def stub_module(name, **attributes):
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec() reads it for loaded modules
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def fake_npu_bridge(monkeypatch):
    """A stub Ascend adapter: npu_bridge.npu_init plus the loss-scale classes, recording their arguments."""
    calls = []

    class Manager:
        def __init__(self, **kwargs):
            calls.append(("manager", kwargs))

    class LossScaleOptimizer:
        def __init__(self, optimizer, manager):
            calls.append(("optimizer", optimizer, manager))

    modules = {"npu_bridge": stub_module("npu_bridge"), "npu_bridge.npu_init": stub_module("npu_bridge.npu_init"),
               "npu_bridge.estimator": stub_module("npu_bridge.estimator"),
               "npu_bridge.estimator.npu": stub_module("npu_bridge.estimator.npu"),
               "npu_bridge.estimator.npu.npu_loss_scale_manager": stub_module(
                   "npu_bridge.estimator.npu.npu_loss_scale_manager", ExponentialUpdateLossScaleManager=Manager),
               "npu_bridge.estimator.npu.npu_loss_scale_optimizer": stub_module(
                   "npu_bridge.estimator.npu.npu_loss_scale_optimizer", NPULossScaleOptimizer=LossScaleOptimizer)}
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_ascend_is_detected_from_the_adapter(fake_npu_bridge):
    assert device_config.is_ascend()
    chosen = device_config.precision("allow_fp32_to_fp16")
    assert (chosen.device, chosen.dtype) == ("Ascend", "allow_fp32_to_fp16")
    # Inference on Ascend keeps the mode: the NPU applies it, there is no float32 frozen-graph twin there.
    assert device_config.precision("allow_mix_precision", training=False).dtype == "allow_mix_precision"


def test_ascend_session_config_carries_the_launcher_options(fake_npu_bridge, tmp_path):
    options = device_config.AscendOptions(str(tmp_path), over_dump=True, data_dump_flag=True, data_dump_step=7,
                                          profiling=True, autotune=True)
    config = device_config.session_config(device_config.precision("allow_fp32_to_fp16"), options)
    npu = config.graph_options.rewrite_options.custom_optimizers[0]
    params = npu.parameter_map
    assert npu.name == "NpuOptimizer" and params["use_off_line"].b
    assert params["precision_mode"].s == b"allow_fp32_to_fp16"
    assert params["enable_dump_debug"].b and params["dump_debug_mode"].s == b"all"
    assert params["enable_dump"].b and params["dump_step"].s == b"7" and params["dump_mode"].s == b"all"
    assert params["dump_path"].s.decode() == str(tmp_path / "data_dump")
    assert params["profiling_mode"].b and str(tmp_path / "profiling") in params["profiling_options"].s.decode()
    assert params["auto_tune_mode"].s == b"RL,GA"
    assert config.graph_options.rewrite_options.remapping == RewriterConfig.OFF

    plain = device_config.session_config(device_config.precision("must_keep_origin_dtype"),
                                         device_config.AscendOptions(str(tmp_path)))
    params = plain.graph_options.rewrite_options.custom_optimizers[0].parameter_map
    assert params["precision_mode"].s == b"must_keep_origin_dtype"
    assert not {"enable_dump", "enable_dump_debug", "profiling_mode", "auto_tune_mode"} & set(params)


def test_ascend_mixed_modes_train_through_npu_loss_scaling(fake_npu_bridge):
    adam = object()
    assert device_config.wrap_optimizer(adam, device_config.precision("must_keep_origin_dtype")) is adam
    assert fake_npu_bridge == []
    device_config.wrap_optimizer(adam, device_config.precision("allow_mix_precision"))
    (_, manager_args), (_, wrapped, manager) = fake_npu_bridge
    assert manager_args == {"init_loss_scale": 2 ** 32, "incr_every_n_steps": 1000, "decr_every_n_nan_or_inf": 2,
                            "decr_ratio": 0.5}
    assert wrapped is adam and manager is not None


def test_train_mode_sends_ascend_dumps_to_the_run_folder(fake_npu_bridge, monkeypatch, tmp_path):
    """The train mode wires the launcher switches through to the NPU config, with dumps under log_dir/run_id."""
    seen = {}

    def stop(data, run_dir, hyper, schedule, chosen, config, record, start):
        seen.update(run_dir=run_dir, chosen=chosen, config=config)

    monkeypatch.setattr(modes.training, "train", stop)
    monkeypatch.setattr(modes, "read_training_data", lambda adapter, folder: fake_training_data())
    args = flags(f"--dataset_dir={tmp_path}", f"--log_dir={tmp_path}", "--run_id=r", "--batch_size=16",
                 "--over_dump=True", "--precision_mode=force_fp16")
    modes.train(train_market1501, args)
    params = seen["config"].graph_options.rewrite_options.custom_optimizers[0].parameter_map
    assert seen["chosen"].device == "Ascend" and params["precision_mode"].s == b"force_fp16"
    assert params["dump_path"].s.decode() == str(tmp_path / "r" / "overflow_dump")


def fake_training_data():
    labels = np.repeat(np.arange(1, 41), 4)
    return input_pipeline.split_training_data([f"{i}.jpg" for i in range(len(labels))], labels, labels % 6)
