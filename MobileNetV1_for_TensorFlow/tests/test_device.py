"""mobilenet_device: the zoo precision table with MobileNet's measured entry, the CPU/GPU device, and every
Ascend branch, run in CI against a stub of the npu_bridge adapter injected in sys.modules that records what
the training code hands it (the stub lives here only; nothing fakes an NPU at run time)."""
import importlib.machinery
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

import logger
import mobilenet_device
import train
import zoo_precision
from conftest import SMALL

AVX2 = {"avx2", "fma"}
AVX512_BF16 = {"avx512f", "avx512_bf16"}
AMX = {"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}


@pytest.fixture
def device_kind(monkeypatch):
    """Pretends the device detection found `kind` (CPU or GPU) whatever this machine has."""
    def choose(kind):
        monkeypatch.setattr(zoo_precision, "detect_device", lambda adapter: kind)
        monkeypatch.delenv("ZOO_CPU_BF16", raising=False)
    return choose


@pytest.mark.parametrize("flags, dtype, why",
                         [(AVX2, "float32", "this CPU has no native bf16"),
                          (AVX512_BF16, "bfloat16", "measured 1.04x the float32 speed for MobileNetV1"),
                          (AMX, "float32", "bf16 measured 0.91x the float32 speed for MobileNetV1")],
                         ids=["avx2", "avx512_bf16", "amx"])
def test_mixed_modes_follow_the_measured_table_on_each_cpu_kind(device_kind, flags, dtype, why):
    device_kind("CPU")
    for mode in zoo_precision.MIXED_MODES:
        chosen = mobilenet_device.precision(mode, flags)
        assert (chosen.device, chosen.dtype) == ("CPU", dtype)
    device = mobilenet_device.select("allow_mix_precision", 0, 1, None, cpu_flags=flags)
    rewrites = device.session_config().graph_options.rewrite_options
    assert (rewrites.auto_mixed_precision_onednn_bfloat16 == RewriterConfig.ON) == (dtype == "bfloat16")
    assert why in device.describe()
    assert device.describe().startswith(f"device: CPU, precision: {dtype}")


def test_the_override_forces_bf16_and_a_bad_value_is_refused_like_bad_ranks(device_kind, monkeypatch):
    device_kind("CPU")
    monkeypatch.setenv("ZOO_CPU_BF16", "1")
    device = mobilenet_device.select("allow_mix_precision", 0, 1, None, cpu_flags=AVX512_BF16)
    assert "bfloat16 mixed" in device.describe() and "forced by ZOO_CPU_BF16=1" in device.describe()
    assert device.session_config().graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == \
        RewriterConfig.ON
    monkeypatch.setenv("ZOO_CPU_BF16", "2")
    with pytest.raises(ValueError, match="^ZOO_CPU_BF16=2: must be 1"):  # train.py: one UserError line
        mobilenet_device.select("allow_mix_precision", 0, 1, None, cpu_flags=AMX)


def test_gpu_takes_float16_mixed_precision_and_memory_growth(device_kind):
    device_kind("GPU")
    mixed = mobilenet_device.select("allow_fp32_to_fp16", 0, 1, None).session_config()
    assert mixed.graph_options.rewrite_options.auto_mixed_precision == RewriterConfig.ON
    assert mixed.gpu_options.allow_growth
    exact = mobilenet_device.select("must_keep_origin_dtype", 0, 1, None).session_config()
    assert exact.graph_options.rewrite_options.auto_mixed_precision != RewriterConfig.ON


def test_several_ranks_off_ascend_need_a_cluster(device_kind):
    device_kind("CPU")
    with pytest.raises(ValueError, match="need TF_CONFIG"):
        mobilenet_device.select("allow_mix_precision", 1, 2, None)
    local = mobilenet_device.select("allow_mix_precision", 0, 1, None)
    optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    assert local.wrap_optimizer(optimizer) is optimizer and local.broadcast_hooks() == []
    assert local.steps_per_run(10) == 1


class Recorded:
    """A stub class of the adapter: keeps its arguments; optimizers delegate minimize to the one they wrap."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def minimize(self, *args, **kwargs):
        return self.args[0].minimize(*args, **kwargs)


class StubEstimator(Recorded):
    trained = []

    def train(self, input_fn, max_steps):
        with tf.Graph().as_default():
            features, labels = tf.compat.v1.data.make_one_shot_iterator(input_fn()).get_next()
            spec = self.kwargs["model_fn"](features, labels, "train", None)
        StubEstimator.trained.append((self, spec, max_steps))


class StubHook(Recorded, tf.compat.v1.train.SessionRunHook):
    pass


STUB_CLASSES = {
    "npu_config": {"NPURunConfig": Recorded, "DumpConfig": Recorded},
    "npu_estimator": {"NPUEstimator": StubEstimator},
    "npu_loss_scale_manager": {"FixedLossScaleManager": Recorded},
    "npu_loss_scale_optimizer": {"NPULossScaleOptimizer": Recorded},
    "npu_optimizer": {"NPUDistributedOptimizer": Recorded},
    "npu_hook": {"NPUBroadcastGlobalVariablesHook": StubHook},
}


@pytest.fixture
def ascend(monkeypatch):
    """npu_bridge.estimator.npu.* as stubs, and tf.estimator.EstimatorSpec, which CANN's TensorFlow 1.15 has."""
    names = ["npu_bridge", "npu_bridge.estimator", "npu_bridge.estimator.npu"]
    names += [f"npu_bridge.estimator.npu.{leaf}" for leaf in STUB_CLASSES]
    for name in names:
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        for attribute, value in STUB_CLASSES.get(name.rsplit(".", 1)[-1], {}).items():
            setattr(module, attribute, value)
        monkeypatch.setitem(sys.modules, name, module)
    spec = lambda mode, **fields: types.SimpleNamespace(mode=mode, **fields)  # noqa: E731
    monkeypatch.setattr(tf, "estimator", types.SimpleNamespace(EstimatorSpec=spec), raising=False)
    StubEstimator.trained = []
    assert mobilenet_device.is_ascend()


def test_ascend_run_goes_through_npu_estimator_with_the_originals_settings(ascend, tmp_path, capsys):
    """train.run on 2 HCCL ranks (no TF_CONFIG needed): NPURunConfig, NPUEstimator, loss scaling around the
    distributed optimizer, the broadcast hook first, the logger counting iterations_per_loop steps per run."""
    args = train.build_parser().parse_args([f"--model_dir={tmp_path}", "--num_train_samples=320", *SMALL,
                                            "--max_train_steps=40", "--over_dump=True"])
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(1, 11, 16).astype(np.int32)
    input_fn = lambda: tf.data.Dataset.from_tensors((images, labels)).repeat()  # noqa: E731
    assert train.run(args, environ={"RANK_ID": "1", "RANK_SIZE": "2"}, input_fn=input_fn) is None  # nothing saved
    assert capsys.readouterr().out.splitlines()[0] == (
        "device: Ascend, precision: allow_mix_precision (the NPU applies precision_mode itself); rank 1 of 2; "
        "NPUEstimator")

    (estimator, spec, max_steps), = StubEstimator.trained
    assert max_steps == 40
    config = estimator.kwargs["config"]
    assert config.kwargs == dict(
        hcom_parallel=True, precision_mode="allow_mix_precision", enable_data_pre_proc=True, iterations_per_loop=5,
        model_dir=f"{tmp_path}/1", save_checkpoints_steps=10, keep_checkpoint_max=5, log_step_count_steps=None,
        save_summary_steps=0, tf_random_seed=1, dump_config=config.kwargs["dump_config"])
    assert config.kwargs["dump_config"].kwargs == dict(enable_dump_debug=True, dump_path=f"{tmp_path}/1/overflow_dump",
                                                       dump_debug_mode="all")

    assert spec.mode == "train" and spec.loss.op.name == "total_loss"
    broadcast, step_logger = spec.training_hooks
    assert isinstance(broadcast, StubHook) and broadcast.kwargs == dict(root_rank=0, index=1)
    assert isinstance(step_logger, logger.StepLogger) and step_logger.steps_per_run == 5
    optimizer = mobilenet_device.select("allow_mix_precision", 1, 2, None).wrap_optimizer("inner")
    (distributed_optimizer, manager), flags = optimizer.args, optimizer.kwargs
    assert distributed_optimizer.args == ("inner",) and manager.kwargs == dict(loss_scale=4096)
    assert flags == dict(is_distributed=True)


def test_single_ascend_device_has_no_broadcast_and_no_overflow_dump(ascend):
    device = mobilenet_device.select("must_keep_origin_dtype", 0, 1, None)
    assert device.broadcast_hooks() == []
    assert device.wrap_optimizer("inner").kwargs == dict(is_distributed=False)
    config = device.run_config("m", 10, 5, 10, 1, over_dump=False)
    assert config.kwargs["dump_config"] is None and config.kwargs["precision_mode"] == "must_keep_origin_dtype"
