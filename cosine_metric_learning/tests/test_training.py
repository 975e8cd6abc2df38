"""Slow tier: both launchers through bash (the zoo contract), an entry script as a user runs it, and the
learning test (a seeded float32 run must reach a validation rank-1 well above chance)."""
import re

import pytest
import tensorflow as tf

import contract
import device_config
import zoo_precision
from conftest import run, run_script

pytestmark = pytest.mark.slow

SMOKE = ["--batch_size=16", "--steps=3"]
ASCEND_OPTIONS = ["--over_dump=False", "--data_dump_flag=False", "--data_dump_step=5", "--profiling=False",
                  "--autotune=False"]


def test_full_launcher_meets_the_contract(model_copy, small_market):
    proc = run(["bash", "train_full_1p.sh", f"--data_path={small_market}", *SMOKE, "--bogus=1",
                "--precision_mode=must_keep_origin_dtype", *ASCEND_OPTIONS], cwd=model_copy / "test")
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == [], proc.stderr[-2000:]
    assert result.summary["CaseName"] == "cosine_metric_learning_bs16_1p_acc"
    assert len(result.losses) == 3
    assert 0 <= result.value("TrainAccuracy") <= 1
    warnings = [line for line in proc.stderr.splitlines() if "unknown argument" in line]
    assert len(warnings) == 1 and "--bogus=1" in warnings[0]
    out = model_copy / "test" / "output" / "0"
    assert re.search(r"^device: (CPU|GPU), precision: float32 \(must_keep_origin_dtype\)$",
                     (out / "train_0.log").read_text(), re.M) or device_config.is_ascend()
    assert tf.train.latest_checkpoint(str(out / "ckpt" / "run")).endswith("model.ckpt-3")
    assert "Precision@1 : " in (out / "eval_0.log").read_text()


def test_performance_launcher_from_the_model_root(model_copy, small_market):
    proc = run(["bash", "test/train_performance_1p.sh", f"--data_path={small_market}", *SMOKE], cwd=model_copy)
    result = contract.Run(str(model_copy), "train_performance_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == [], proc.stderr[-2000:]
    assert result.summary["TrainAccuracy"] == "NA" and result.value("ActualFPS") > 0
    if device_config.device() == "CPU":
        # The launchers' default precision_mode, allow_mix_precision, is bf16 only where the CPU has it.
        expected = ("device: CPU, precision: bfloat16 mixed (allow_mix_precision -> bfloat16"
                    if zoo_precision.native_bf16_flags(zoo_precision.cpu_flags())
                    else "device: CPU, precision: float32 (allow_mix_precision requested")
        assert expected in (model_copy / "test" / "output" / "0" / "train_0.log").read_text()




def test_entry_script_as_a_user_runs_it(short_run, tmp_path):
    """train_mars.py itself (the launchers run train_market1501.py): finalize writes ./mars.ckpt."""
    proc = run_script("train_mars.py", "--mode=finalize", f"--restore_path={short_run[0] / 'short'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"wrote {tmp_path / 'mars.ckpt'} (network variables of ")
    assert "fc1/weights" in {name for name, _ in tf.train.list_variables(str(tmp_path / "mars.ckpt"))}
