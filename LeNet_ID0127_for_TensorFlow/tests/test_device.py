"""lenet_device on each CPU kind the project has met, on GPU, and on Ascend through a stub of the adapter.

The stub npu_bridge modules live only here, injected into sys.modules: they record what the device module
asks of them, so the Ascend configuration code runs in CI without an NPU.
"""
import importlib.machinery
import sys
import types

import pytest
import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import LeNet
import lenet_cli
import lenet_device
import lenet_train
import zoo_precision

AVX2 = {"avx", "avx2", "fma"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16"}
AMX = AVX512_BF16 | {"amx_tile", "amx_bf16"}
MIXED = ("allow_mix_precision", "allow_fp32_to_fp16", "force_fp16")


@pytest.fixture
def on_device(monkeypatch):
    """on_device(kind, cpu_flags): makes lenet_device see that device and those CPU flags."""
    def choose(kind, flags=AVX2):
        monkeypatch.setattr(lenet_device, "device", lambda: kind)
        monkeypatch.setattr(zoo_precision, "cpu_flags", lambda: set(flags))
        monkeypatch.delenv("ZOO_CPU_BF16", raising=False)
    return choose


def rewrites(config):
    return config.graph_options.rewrite_options


@pytest.mark.parametrize("mode", MIXED)
@pytest.mark.parametrize("flags, why", [(AVX2, "this CPU has no native bf16"),
                                        (AVX512_BF16, "bf16 measured 0.95x the float32 speed for LeNet")])
def test_mixed_modes_on_cpu_stay_float32_where_bf16_is_not_measured_faster(mode, flags, why, on_device, tmp_path):
    on_device("CPU", flags)
    chosen = lenet_device.precision(mode)
    assert (chosen.device, chosen.dtype) == ("CPU", "float32") and why in chosen.reason
    bf16_rewrite = rewrites(lenet_device.session_config(chosen, str(tmp_path))).auto_mixed_precision_onednn_bfloat16
    assert bf16_rewrite == RewriterConfig.DEFAULT


@pytest.mark.parametrize("mode", MIXED)
def test_mixed_modes_on_an_amx_cpu_train_bf16_where_it_was_measured_faster(mode, on_device, tmp_path):
    on_device("CPU", AMX)
    chosen = lenet_device.precision(mode)
    assert chosen.dtype == "bfloat16" and "measured 1.06x the float32 speed for LeNet" in chosen.reason
    bf16_rewrite = rewrites(lenet_device.session_config(chosen, str(tmp_path))).auto_mixed_precision_onednn_bfloat16
    assert bf16_rewrite == RewriterConfig.ON


def test_the_override_forces_bf16_on_a_bf16_cpu_and_a_bad_value_is_one_usage_error(on_device, monkeypatch, tmp_path):
    on_device("CPU", AMX)
    monkeypatch.setenv("ZOO_CPU_BF16", "1")
    chosen = lenet_device.precision("allow_mix_precision")
    assert chosen.dtype == "bfloat16" and "forced by ZOO_CPU_BF16=1" in chosen.describe()
    config = lenet_device.session_config(chosen, str(tmp_path))
    assert rewrites(config).auto_mixed_precision_onednn_bfloat16 == RewriterConfig.ON
    monkeypatch.setenv("ZOO_CPU_BF16", "yes")
    with pytest.raises(lenet_cli.UsageError, match="^ZOO_CPU_BF16=yes: must be 1"):
        lenet_device.precision("allow_mix_precision")


@pytest.mark.parametrize("flags", [AVX2, AVX512_BF16, AMX])
def test_must_keep_origin_dtype_is_float32_on_every_cpu(flags, on_device, tmp_path):
    on_device("CPU", flags)
    chosen = lenet_device.precision("must_keep_origin_dtype")
    assert chosen.describe() == "device: CPU, precision: float32 (must_keep_origin_dtype)"
    config = lenet_device.session_config(chosen, str(tmp_path))
    assert rewrites(config).auto_mixed_precision_onednn_bfloat16 == RewriterConfig.DEFAULT


def test_gpu_mixed_modes_use_float16_auto_mixed_precision(on_device, tmp_path):
    on_device("GPU")
    config = lenet_device.session_config(lenet_device.precision("allow_mix_precision"), str(tmp_path))
    assert rewrites(config).auto_mixed_precision == RewriterConfig.ON
    config = lenet_device.session_config(lenet_device.precision("must_keep_origin_dtype"), str(tmp_path))
    assert rewrites(config).auto_mixed_precision == RewriterConfig.DEFAULT


def test_off_ascend_the_npu_steps_are_no_ops(on_device, tmp_path, capsys):
    on_device("CPU")
    optimizer = tf.compat.v1.train.AdamOptimizer(0.001)
    assert lenet_device.wrap_optimizer(optimizer, 1, 128.0) is optimizer
    config = lenet_device.session_config(lenet_device.precision("allow_mix_precision"), str(tmp_path),
                                         over_dump=True, profiling=True)
    assert not rewrites(config).custom_optimizers
    assert "take effect on Ascend only" in capsys.readouterr().err


def stub_module(name, **attributes):
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def ascend(monkeypatch):
    """Stub npu_bridge modules; returns the list of (class name, arguments) the device module created."""
    created = []

    def recording(name, wraps_optimizer):
        def __init__(self, *args, **kwargs):
            created.append((name, args, kwargs))
            self.inner = args[0] if wraps_optimizer else None

        def minimize(self, *args, **kwargs):
            return self.inner.minimize(*args, **kwargs)

        return type(name, (), {"__init__": __init__, "minimize": minimize})

    base = "npu_bridge.estimator.npu."
    modules = [
        stub_module("npu_bridge"), stub_module("npu_bridge.npu_init"), stub_module("npu_bridge.estimator"),
        stub_module("npu_bridge.estimator.npu"),
        stub_module(base + "npu_loss_scale_manager",
                    FixedLossScaleManager=recording("FixedLossScaleManager", False),
                    ExponentialUpdateLossScaleManager=recording("ExponentialUpdateLossScaleManager", False)),
        stub_module(base + "npu_loss_scale_optimizer", NPULossScaleOptimizer=recording("NPULossScaleOptimizer", True)),
        stub_module(base + "npu_optimizer", NPUDistributedOptimizer=recording("NPUDistributedOptimizer", True)),
    ]
    for module in modules:
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.delenv("RANK_SIZE", raising=False)
    return created


def test_the_adapter_makes_it_ascend_and_the_npu_applies_the_mode(ascend):
    assert lenet_device.device() == "Ascend" and lenet_device.is_ascend()
    chosen = lenet_device.precision("allow_fp32_to_fp16")
    assert (chosen.device, chosen.dtype) == ("Ascend", "allow_fp32_to_fp16")


def test_ascend_session_config_has_the_original_npu_options(ascend, tmp_path, capsys):
    chosen = lenet_device.precision("allow_mix_precision")
    config = lenet_device.session_config(chosen, str(tmp_path), data_dump=True, data_dump_step="5", profiling=True)
    (npu,) = rewrites(config).custom_optimizers
    options = npu.parameter_map
    assert npu.name == "NpuOptimizer" and options["use_off_line"].b
    assert options["precision_mode"].s == b"allow_mix_precision"
    assert options["dump_path"].s.decode() == str(tmp_path / "data_dump")
    assert options["enable_dump"].b and options["dump_step"].s == b"5" and options["dump_mode"].s == b"all"
    assert options["profiling_mode"].b
    assert options["profiling_options"].s.decode() == '{"output":"%s","task_trace":"on"}' % (tmp_path / "profiling")
    assert "enable_dump_debug" not in options
    assert rewrites(config).remapping == RewriterConfig.OFF
    assert capsys.readouterr().err == ""

    config = lenet_device.session_config(chosen, str(tmp_path), over_dump=True)
    options = rewrites(config).custom_optimizers[0].parameter_map
    assert options["dump_path"].s.decode() == str(tmp_path / "overflow_dump")
    assert options["enable_dump_debug"].b and options["dump_debug_mode"].s == b"all"


def test_ascend_optimizer_gets_loss_scaling_over_the_distributed_optimizer(ascend, monkeypatch):
    adam = tf.compat.v1.train.AdamOptimizer(0.001)
    wrapped = lenet_device.wrap_optimizer(adam, loss_scale_flag=1, loss_scale_value=256.0)
    assert [name for name, _, _ in ascend] == ["NPUDistributedOptimizer", "FixedLossScaleManager",
                                               "NPULossScaleOptimizer"]
    assert ascend[1][2] == {"loss_scale": 256.0}
    assert ascend[0][1] == (adam,)
    assert wrapped.inner is not adam and wrapped.inner.inner is adam
    assert ascend[2][2] == {"is_distributed": False}

    # As the original: flag 0 is no loss scaling, flag 1 with value 0 the dynamic scale.
    ascend.clear()
    assert lenet_device.wrap_optimizer(adam).inner is adam
    assert [name for name, _, _ in ascend] == ["NPUDistributedOptimizer"]

    ascend.clear()
    monkeypatch.setenv("RANK_SIZE", "8")
    lenet_device.wrap_optimizer(adam, loss_scale_flag=1)
    manager = ascend[1]
    assert manager[0] == "ExponentialUpdateLossScaleManager"
    assert manager[2] == {"init_loss_scale": 2 ** 32, "incr_every_n_steps": 1000, "decr_every_n_nan_or_inf": 2,
                          "decr_ratio": 0.5}
    assert ascend[2][2] == {"is_distributed": True}


def test_the_training_graph_goes_through_the_device_module(ascend, small_splits):
    args = LeNet.parse_args(["--loss_scale_flag=1", "--loss_scale_value=64"])
    with tf.Graph().as_default():
        lenet_train.Graph(args, small_splits[0])
    assert ("FixedLossScaleManager", (), {"loss_scale": 64.0}) in ascend
    assert isinstance(ascend[0][1][0], tf.compat.v1.train.AdamOptimizer)
