"""The 1p launchers through bash, checked with the shared contract checker (ci/contract.py)."""
import os

import pytest

import contract
from conftest import run

# The smoke settings (ci/smoke.toml): 32 px, 10 classes + background, batch 16, a few steps.
SMOKE = ["--image_size=32", "--num_classes=11", "--batch_size=16", "--num_train_samples=320",
         "--iterations_per_loop=5", "--learning_rate=0.05", "--warmup_epochs=1", "--batch_norm_decay=0.9"]


def test_missing_data_path_and_help(model_copy):
    proc = run(["bash", "test/train_full_1p.sh"], cwd=model_copy)
    assert proc.returncode == 1
    assert proc.stdout.strip() == '[Error] para "data_path" must be config'
    helped = run(["bash", "train_performance_1p.sh", "--help"], cwd=model_copy / "test")
    assert helped.returncode == 0 and "--data_path" in helped.stdout


def test_full_launcher_from_test_folder(model_copy, small_data):
    proc = run(["bash", "train_full_1p.sh", f"--data_path={small_data}", "--max_train_steps=20", "--bogus=1", *SMOKE],
               cwd=model_copy / "test")
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode, min_accuracy=0.0) == [], proc.stdout[-3000:]
    out = model_copy / "test" / "output" / "0"
    case = "MobileNetV1_for_TensorFlow_bs16_1p_acc"
    assert result.summary["CaseName"] == case
    assert "unknown argument --bogus=1" in proc.stderr
    eval_log = (out / "eval_0.log").read_text()
    assert "weights: EMA" in eval_log and "acc: [" in eval_log
    top1 = [l for l in eval_log.splitlines() if l.startswith("top1: ")][-1].split()[1]
    assert result.summary["TrainAccuracy"] == top1
    assert len((out / f"train_{case}_loss.txt").read_text().split()) == 4  # steps 5, 10, 15, 20
    assert os.path.isfile(out / "ckpt" / "0" / "model.ckpt-20.index")


def test_performance_launcher_from_model_root(model_copy, small_data):
    proc = run(["bash", "test/train_performance_1p.sh", f"--data_path={small_data}", "--max_train_steps=10", *SMOKE],
               cwd=model_copy)
    result = contract.Run(str(model_copy), "train_performance_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == [], proc.stdout[-3000:]
    assert result.summary["TrainAccuracy"] == "NA"
    assert result.value("ActualFPS") > 0
    assert result.value("TrainingTime") == pytest.approx(16 * 1000 / result.value("ActualFPS"), rel=1e-2)
