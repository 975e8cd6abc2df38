"""The three 1p launchers through bash against the launcher contract, on synthetic TFDS-layout data (slow tier;
the same code runs in-process in test_run.py)."""
import re

import pytest

import contract
from conftest import run, run_stats

pytestmark = pytest.mark.slow

SMOKE = ["--batch_size=128", "--momentum=0.9", "--seed=1"]


def launch(model_copy, launcher, data, *args):
    proc = run(["bash", launcher, f"--data_path={data}", *SMOKE, *args], cwd=model_copy / "test")
    result = contract.Run(str(model_copy), launcher, proc.stdout)
    return proc, result, (model_copy / "test" / "output" / "0" / "train_0.log").read_text()


def test_full_launcher_meets_the_contract(model_copy, tiny_data):
    proc, result, log = launch(model_copy, "train_full_1p.sh", tiny_data, "--train_epochs=2")
    assert contract.check(result, proc.returncode, min_accuracy=0.5, loss_must_fall=True) == []
    assert result.summary["CaseName"] == "MNIST_ID2481_for_TensorFlow2.X_bs128_1p_acc"
    assert len(result.losses) == 16  # 1024 // 128 steps x 2 epochs
    assert re.search(r"^Final Training Duration sec : [\d.]+$", proc.stdout, re.M)
    assert log.startswith("device: CPU, precision: ") and log.count("epoch_duration: ") == 2
    ckpt = model_copy / "test" / "output" / "0" / "ckpt"
    assert (ckpt / "model.ckpt-0002.index").is_file() and (ckpt / "saved_model" / "saved_model.pb").is_file()
    assert float(result.summary["TrainAccuracy"]) == pytest.approx(run_stats(log)["accuracy_top_1"], abs=5e-5)


@pytest.mark.parametrize("launcher, static", [("train_performance_1p_static_eval.sh", True),
                                              ("train_performance_1p_dynamic_eval.sh", False)])
def test_performance_launchers_report_images_per_second(model_copy, tiny_data, launcher, static):
    proc, result, log = launch(model_copy, launcher, tiny_data, "--train_epochs=1", "--unknown=1")
    assert contract.check(result, proc.returncode, min_accuracy=0.2, loss_must_fall=True) == []
    kind = "static" if static else "dynamic"
    assert result.summary["CaseName"] == f"MNIST_ID2481_for_TensorFlow2.X_bs128_1p_{kind}_eval_perf"
    fps, ms = result.value("ActualFPS"), result.value("TrainingTime")
    assert fps > 0 and fps == pytest.approx(128 * 1000 / ms, rel=1e-3)
    assert "unknown argument --unknown=1 ignored" in proc.stderr
    shape = "(128, 28, 28, 1) (static)" if static else "(None, 28, 28, 1) (dynamic)"
    assert f"batch shape {shape}" in log
