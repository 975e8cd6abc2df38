"""alexnet_device.py: the zoo's precision table off Ascend, and every Ascend branch run against stub
npu_bridge modules (injected in sys.modules, recording their calls) so that the NPU code runs in CI."""
import importlib.machinery
import sys
import types

import pytest
import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import alexnet_device
import distributed
import main
import model
import run_safety
import training_graph
import training_run
import zoo_precision
from conftest import array_inputs

AVX2 = {"avx", "avx2", "fma"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16"}
AMX = AVX512_BF16 | {"amx_tile", "amx_bf16"}


@pytest.fixture
def on_cpu(monkeypatch):
    monkeypatch.setattr(zoo_precision, "detect_device", lambda adapter: "CPU")
    monkeypatch.delenv("ZOO_CPU_BF16", raising=False)


# bf16 where it was measured faster (AMX: 1.84x, AVX-512 bf16: 1.46x).
@pytest.mark.parametrize("mode", zoo_precision.MIXED_MODES)
@pytest.mark.parametrize("flags, dtype, why", [(AVX2, "float32", "no native bf16"),
                                               (AVX512_BF16, "bfloat16", "measured 1.46x the float32 speed"),
                                               (AMX, "bfloat16", "measured 1.84x the float32 speed")])
def test_mixed_modes_follow_the_measured_table_on_every_cpu_kind(on_cpu, mode, flags, dtype, why):
    chosen = alexnet_device.precision(mode, flags)
    assert chosen.dtype == dtype and chosen.describe().startswith("device: CPU, precision: ")
    assert why in chosen.reason
    rewrites = alexnet_device.session_config(chosen, alexnet_device.Dumps("out")).graph_options.rewrite_options
    assert (rewrites.auto_mixed_precision_onednn_bfloat16 == RewriterConfig.ON) == (dtype == "bfloat16")
    assert not rewrites.custom_optimizers


@pytest.mark.parametrize("flags", [AVX2, AVX512_BF16, AMX])
def test_must_keep_origin_dtype_is_float32_on_every_cpu_kind(on_cpu, flags):
    assert alexnet_device.precision("must_keep_origin_dtype", flags).dtype == "float32"


def test_the_override_forces_either_dtype_and_a_bad_value_is_one_line(on_cpu, monkeypatch):
    monkeypatch.setenv("ZOO_CPU_BF16", "1")
    assert alexnet_device.precision("allow_mix_precision", AVX512_BF16).dtype == "bfloat16"
    assert alexnet_device.precision("allow_mix_precision", AVX512_BF16).reason.endswith("forced by ZOO_CPU_BF16=1")
    monkeypatch.setenv("ZOO_CPU_BF16", "0")
    assert alexnet_device.precision("allow_mix_precision", AMX).reason.endswith("forced by ZOO_CPU_BF16=0")
    monkeypatch.setenv("ZOO_CPU_BF16", "true")
    with pytest.raises(run_safety.RunSafetyError, match="^ZOO_CPU_BF16=true: must be 1"):
        alexnet_device.precision("allow_mix_precision", AMX)


def test_the_device_line_is_the_first_line_of_a_run_and_a_bad_override_stops_it_before_writing(
        on_cpu, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(training_run, "_train", lambda args, inputs, chosen, started: print("training"))
    args = main.parse([f"--data_path={tmp_path}", f"--output_path={tmp_path}/out", "--batch_size=2"])
    training_run.run(args, array_inputs())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == alexnet_device.precision(args.precision_mode).describe() and lines[1] == "training"
    monkeypatch.setenv("ZOO_CPU_BF16", "on")
    with pytest.raises(run_safety.RunSafetyError, match="ZOO_CPU_BF16=on"):
        training_run.run(main.parse([f"--data_path={tmp_path}", f"--output_path={tmp_path}/new"]), array_inputs())
    assert not (tmp_path / "new").exists()


def test_one_worker_needs_no_wrapping_and_no_broadcast():
    with tf.Graph().as_default():
        optimizer = tf.compat.v1.train.MomentumOptimizer(0.1, 0.9)
        assert alexnet_device.wrap_optimizer(optimizer) is optimizer
        assert alexnet_device.broadcast([tf.compat.v1.get_variable("v", [1])]).type == "NoOp"
    assert alexnet_device.dropout_op() is None


class Recorder:
    def __init__(self):
        self.calls = []

    def record(self, name, result):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return result(*args, **kwargs)
        return call


@pytest.fixture
def npu(monkeypatch):
    """Stub npu_bridge: NPU dropout = tf.nn.dropout, HCCL broadcast/all-reduce = identity, the distributed
    optimizer a marker wrapper; every call is recorded."""
    recorder = Recorder()

    def module(name, **attributes):
        stub = types.ModuleType(name)
        stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
        stub.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, stub)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, stub)
        return stub

    class NPUDistributedOptimizer:
        def __init__(self, optimizer):
            recorder.calls.append(("NPUDistributedOptimizer", (optimizer,), {}))
            self.wrapped = optimizer

        def __getattr__(self, name):  # minimize() and the rest: the wrapped optimizer's
            return getattr(self.wrapped, name)

    module("npu_bridge")
    module("npu_bridge.npu_init")
    module("npu_bridge.estimator")
    module("npu_bridge.estimator.npu_ops",
           dropout=recorder.record("dropout", lambda x, keep: tf.nn.dropout(x, rate=1.0 - keep)))
    module("npu_bridge.estimator.npu")
    module("npu_bridge.estimator.npu.npu_optimizer", NPUDistributedOptimizer=NPUDistributedOptimizer)
    module("npu_bridge.hccl")
    module("npu_bridge.hccl.hccl_ops",
           broadcast=recorder.record("broadcast", lambda tensor, root_rank: [tf.identity(t) for t in tensor]),
           allreduce=recorder.record("allreduce", lambda tensor, reduction: tf.identity(tensor)))
    return recorder


def test_ascend_keeps_the_mode_and_configures_the_npu_optimizer(npu):
    assert alexnet_device.is_ascend()
    chosen = alexnet_device.precision("allow_fp32_to_fp16", AMX)
    assert (chosen.device, chosen.dtype) == ("Ascend", "allow_fp32_to_fp16")
    dumps = alexnet_device.Dumps("/out", over_dump=True, data_dump_flag=False, data_dump_step=7, profiling=True)
    config = alexnet_device.session_config(chosen, dumps)
    rewrites = config.graph_options.rewrite_options
    (npu_optimizer,) = rewrites.custom_optimizers
    params = npu_optimizer.parameter_map
    assert npu_optimizer.name == "NpuOptimizer" and rewrites.remapping == RewriterConfig.OFF
    assert params["precision_mode"].s == b"allow_fp32_to_fp16" and params["use_off_line"].b
    assert params["hcom_parallel"].b and params["enable_dump_debug"].b and "enable_dump" not in params
    assert params["dump_path"].s == b"/out/overflow_dump" and params["dump_step"].s == b"7"
    assert params["profiling_mode"].b and b"/out/profiling" in params["profiling_options"].s
    assert rewrites.auto_mixed_precision_onednn_bfloat16 != RewriterConfig.ON
    plain = alexnet_device.session_config(chosen, alexnet_device.Dumps("/out")).graph_options.rewrite_options
    assert set(plain.custom_optimizers[0].parameter_map) == {"use_off_line", "precision_mode", "hcom_parallel"}


def test_ascend_training_graph_uses_the_npu_dropout_and_hccl(npu):
    hccl = distributed.ranks(2, 1, alexnet_device.is_ascend())
    assert isinstance(hccl, distributed.HcclRanks) and not hccl.is_chief
    net = training_graph.build(array_inputs(), 0.002, "scaled", "unit", seed=1, ranks=hccl)
    names = [name for name, _, _ in npu.calls]
    assert names.count("dropout") == 2  # fc1 and fc2 of the training graph; none in evaluation
    assert all(args[1] == model.KEEP_PROB for name, args, _ in npu.calls if name == "dropout")
    assert names.count("NPUDistributedOptimizer") == 1
    assert names.count("allreduce") == 1  # the epoch figures
    with net.graph.as_default():
        assert names.count("broadcast") == len(tf.compat.v1.global_variables())
    assert all(kwargs["root_rank"] == distributed.CHIEF for name, _, kwargs in npu.calls if name == "broadcast")


def test_ascend_single_rank_keeps_the_optimizer(npu):
    assert distributed.ranks(1, 0, True) is None
    with tf.Graph().as_default():
        optimizer = tf.compat.v1.train.MomentumOptimizer(0.1, 0.9)
        assert alexnet_device.wrap_optimizer(optimizer, None) is optimizer
