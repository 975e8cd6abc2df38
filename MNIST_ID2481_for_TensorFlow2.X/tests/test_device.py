"""mnist_device: the zoo precision table as Keras policies, and every Ascend branch run against a stub
npu_device module in sys.modules that records how it was called (no NPU is ever faked outside tests)."""
import importlib.machinery
import os
import sys
import types

import keras
import pytest

import mnist_device
import mnist_main
import zoo_precision
from errors import UsageError


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    """The table as measured, whatever ZOO_CPU_BF16 the test process was started with."""
    monkeypatch.delenv("ZOO_CPU_BF16", raising=False)


@pytest.fixture
def npu(monkeypatch):
    """A stub of the Ascend TF2 adapter: global_options() is a plain namespace, open/distribute record calls."""
    calls = []
    module = types.ModuleType("npu_device")
    module.__spec__ = importlib.machinery.ModuleSpec("npu_device", None)  # is_ascend() looks it up by spec
    options = types.SimpleNamespace(dump_config=types.SimpleNamespace(), profiling_config=types.SimpleNamespace())
    module.global_options = lambda: options
    module.open = lambda: types.SimpleNamespace(as_default=lambda: calls.append("open"))
    module.distribute = types.SimpleNamespace(
        npu_distributed_keras_optimizer_wrapper=lambda optimizer: calls.append(("wrap", optimizer)) or optimizer,
        broadcast=lambda variables, root_rank: calls.append(("broadcast", len(variables), root_rank)))
    monkeypatch.setitem(sys.modules, "npu_device", module)
    return types.SimpleNamespace(options=options, calls=calls)


@pytest.mark.parametrize("mode, gpus, cpu_flags, policy", [
    ("allow_fp32_to_fp16", 0, {"avx2"}, "float32"),
    # bf16 measured faster on AVX-512 bf16 (1.76x) and on AMX (2.16x).
    ("allow_mix_precision", 0, {"avx2", "avx512_bf16"}, "mixed_bfloat16"),
    ("force_fp16", 0, {"amx_bf16"}, "mixed_bfloat16"),
    ("must_keep_origin_dtype", 0, {"amx_bf16"}, "float32"),
    ("allow_fp32_to_fp16", 1, set(), "mixed_float16"),
    ("must_keep_origin_dtype", 1, set(), "float32"),
])
def test_precision_off_ascend_follows_the_zoo_table(mode, gpus, cpu_flags, policy):
    chosen = mnist_device.precision(mode, gpus, cpu_flags=cpu_flags)
    assert chosen.device == ("GPU" if gpus else "CPU") and chosen.keras_policy == policy
    if mode != "must_keep_origin_dtype" and "amx_bf16" in cpu_flags:
        assert "measured 2.16x the float32 speed for MNIST_ID2481_for_TensorFlow2.X on amx_bf16" in chosen.reason
    elif mode != "must_keep_origin_dtype" and "avx512_bf16" in cpu_flags:
        assert "measured 1.76x the float32 speed for MNIST_ID2481_for_TensorFlow2.X" in chosen.reason


def test_the_override_gives_mixed_bfloat16_and_a_bad_value_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("ZOO_CPU_BF16", "1")
    assert mnist_device.precision("allow_mix_precision", 0, cpu_flags={"amx_bf16"}).keras_policy == "mixed_bfloat16"
    assert mnist_device.precision("allow_mix_precision", 0, cpu_flags={"avx2"}).keras_policy == "float32"
    monkeypatch.setenv("ZOO_CPU_BF16", "bf16")
    with pytest.raises(UsageError, match="^ZOO_CPU_BF16=bf16: must be 1"):
        mnist_device.precision("allow_mix_precision", 0, cpu_flags={"amx_bf16"})


def test_off_ascend_set_up_warns_about_ascend_options_and_sets_the_tables_policy(parse_flags, capsys):
    values = parse_flags("--over_dump", "--profiling", "--precision_mode=allow_mix_precision")
    chosen = mnist_device.set_up(values, 0)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == chosen.describe() and chosen.describe().startswith("device: CPU, precision: ")
    assert lines[1] == "[Warning] --over_dump, --profiling: Ascend-only options, no effect without npu_device"
    # Derived from this machine's CPU and the measured table (float32 until bf16 is measured faster here).
    assert keras.mixed_precision.global_policy().name == zoo_precision.resolve(
        "allow_mix_precision", "CPU", mnist_device.MODEL).keras_policy


def test_off_ascend_the_optimizer_is_only_wrapped_for_float16_loss_scaling():
    sgd = keras.optimizers.SGD()
    assert mnist_device.wrap_optimizer(sgd, 2, zoo_precision.Precision("CPU", "bfloat16", "")) is sgd
    scaled = mnist_device.wrap_optimizer(sgd, 1, zoo_precision.Precision("GPU", "float16", ""))
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer) and scaled.inner_optimizer is sgd


def test_ascend_set_up_passes_the_flags_to_the_npu_and_leaves_keras_in_float32(npu, parse_flags, capsys):
    values = parse_flags("--precision_mode=allow_mix_precision", "--over_dump", "--over_dump_path=/o",
                         "--profiling", "--profiling_dump_path=/p", "--use_mixlist", "--mixlist_file=m.json",
                         "--fusion_off_flag", "--fusion_off_file=/etc/f.cfg")
    chosen = mnist_device.set_up(values, 0)
    assert capsys.readouterr().out == (
        "device: Ascend, precision: allow_mix_precision (the NPU applies precision_mode itself)\n")
    assert chosen.keras_policy == keras.mixed_precision.global_policy().name == "float32"
    options = npu.options
    assert options.precision_mode == "allow_mix_precision"
    assert vars(options.dump_config) == {"enable_dump_debug": True, "dump_path": "/o", "dump_debug_mode": "all"}
    assert options.profiling_config.enable_profiling
    assert '"output":"/p"' in options.profiling_config.profiling_options
    # As the original: a name is looked up in ../configs/ beside the model folder; an absolute one is kept.
    assert options.modify_mixlist == os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(mnist_device.__file__)), "..", "configs", "m.json"))
    assert options.fusion_switch_file == "/etc/f.cfg"
    assert npu.calls == ["open"]


def test_ascend_data_dump_and_a_mixlist_only_with_allow_mix_precision(npu, parse_flags):
    values = parse_flags("--data_dump_flag", "--data_dump_step=0|5", "--data_dump_path=/d", "--use_mixlist")
    mnist_device.set_up(values, 0)
    assert vars(npu.options.dump_config) == {"enable_dump": True, "dump_path": "/d", "dump_step": "0|5",
                                             "dump_mode": "all"}
    assert not hasattr(npu.options, "modify_mixlist")  # the default mode is allow_fp32_to_fp16


def test_ascend_ranks_wrap_the_optimizer_and_broadcast(npu):
    sgd, chosen = keras.optimizers.SGD(), zoo_precision.resolve("allow_fp32_to_fp16", "Ascend", mnist_device.MODEL)
    variables = [keras.Variable(1.0), keras.Variable(2.0)]
    assert mnist_device.wrap_optimizer(sgd, 1, chosen) is sgd
    mnist_device.broadcast(variables, 1)
    assert npu.calls == []
    mnist_device.wrap_optimizer(sgd, 8, chosen)
    mnist_device.broadcast(variables, 8)
    assert npu.calls == [("wrap", sgd), ("broadcast", 2, 0)]


def test_run_as_one_ascend_rank_of_two(npu, parse_flags, small_datasets, tmp_path, capsys):
    """The whole entry point on the stub: rank 1 of 2 (HCCL ranks, the default strategy) trains on every
    second training example, wraps its optimizer, takes rank 0's weights and, not being rank 0, writes nothing."""
    values = parse_flags(f"--model_dir={tmp_path}/m", "--batch_size=64", "--train_epochs=1", "--mul_rank_size=2",
                         "--mul_device_id=1", "--precision_mode=must_keep_origin_dtype")
    stats = mnist_main.run(values, datasets_override=small_datasets)
    out = capsys.readouterr().out
    assert out.startswith("device: Ascend, precision: must_keep_origin_dtype")
    assert "Ascend: rank 1 of 2, 1 replicas, batch 64 per replica" in out
    assert "data: 512 train / 128 test examples; 4 steps per epoch, 2 eval steps" in out
    # Broadcast: the 8 variables of the 4 layers with weights (kernel and bias each).
    assert [npu.calls[0], npu.calls[1][0], npu.calls[2]] == ["open", "wrap", ("broadcast", 8, 0)]
    assert len(npu.calls) == 3 and stats["loss"] > 0
    assert not (tmp_path / "m").exists()
