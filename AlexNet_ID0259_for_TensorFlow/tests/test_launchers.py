"""The 1p launchers as users run them, through bash: the contract, a fresh start, resume, missing
--data_path, a failing run, help. (The outputs themselves are checked in-process in test_training.py.)"""
import json

import pytest

import contract
from conftest import run

pytestmark = pytest.mark.slow
SMALL = ["--batch=4", "--val_photos=8", "--log_every=1"]


def launch(model_dir, launcher, photos, *args, from_test_dir=True):
    if from_test_dir:
        return run(["bash", launcher, f"--data_path={photos}", *SMALL, *args], model_dir / "test")
    return run(["bash", f"test/{launcher}", f"--data_path={photos}", *SMALL, *args], model_dir)


def test_full_launcher_meets_the_contract_and_starts_afresh(model_copy, photos):
    out = model_copy / "test" / "output" / "0"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an earlier run")
    proc = launch(model_copy, "train_full_1p.sh", photos, "--max_epoch=2", "--max_step=2", "--bogus=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unknown argument --bogus=1" in proc.stderr
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == []
    assert result.summary["CaseName"] == "AlexNet_ID0259_for_TensorFlow_bs4_1p_acc"
    assert not (out / "stale.txt").exists()  # no --resume=True: the folder is recreated
    log = (out / "train_0.log").read_text()
    assert log.count("test accuracy ") == 2 and "epoch 2 step: 2 step_time " in log and "resuming" not in log
    assert float(result.summary["TrainAccuracy"]) == float(log.split("test accuracy ")[-1].split()[0])
    loss_file = (out / "AlexNet_ID0259_for_TensorFlow_bs4_1p_acc_loss.txt").read_text().split()
    assert len(loss_file) == 4 and float(result.summary["ActualLoss"]) == float(loss_file[-1])
    assert (out / "model" / "model.ckpt.index").is_file() and (out / "acc.png").is_file()


def test_performance_launcher_from_the_model_root_then_resume(model_copy, photos):
    proc = launch(model_copy, "train_performance_1p.sh", photos, "--max_step=2", from_test_dir=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = contract.Run(str(model_copy), "train_performance_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == []
    assert result.summary["CaseName"].endswith("_bs4_1p_perf")
    out = model_copy / "test" / "output" / "0"
    # --resume=True keeps the folder and continues after the saved epoch.
    proc = launch(model_copy, "train_full_1p.sh", photos, "--max_epoch=2", "--max_step=1", "--resume=True")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (out / "train_0.log").read_text()
    assert "after epoch 1" in log and "epoch 2 step: 1 " in log and "epoch 1 step: 2 " in log
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2


def test_missing_data_path_and_failures_are_reported(model_copy, tmp_path):
    proc = run(["bash", "train_full_1p.sh"], model_copy / "test")
    assert proc.returncode == 1 and proc.stdout.strip() == '[Error] para "data_path" must be config'
    proc = run(["bash", "test/train_full_1p.sh", f"--data_path={tmp_path / 'nothing'}"], model_copy)
    assert proc.returncode != 0 and "is not a folder" in proc.stdout and "Traceback" not in proc.stdout
    assert "Final result" not in proc.stdout


def test_help(model_copy):
    proc = run(["bash", "train_performance_1p.sh", "--help"], model_copy / "test")
    assert proc.returncode == 0 and "--data_path" in proc.stdout and "--max_step" in proc.stdout
