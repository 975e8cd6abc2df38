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


def test_performance_launcher_afresh_then_full_launcher_resumes(model_copy, photos):
    """train_performance_1p.sh from the model root (a fresh start: the folder is recreated), then
    train_full_1p.sh from test/ with --resume=True continuing after its epoch; both meet the contract (the
    second beside the first one's summary, which --resume keeps)."""
    out = model_copy / "test" / "output" / "0"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an earlier run")
    proc = launch(model_copy, "train_performance_1p.sh", photos, "--max_step=2", "--bogus=1", from_test_dir=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unknown argument --bogus=1" in proc.stderr
    result = contract.Run(str(model_copy), "train_performance_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == []
    assert result.summary["CaseName"] == "AlexNet_ID0259_for_TensorFlow_bs4_1p_perf"
    assert not (out / "stale.txt").exists() and "resuming" not in (out / "train_0.log").read_text()

    proc = launch(model_copy, "train_full_1p.sh", photos, "--max_epoch=2", "--max_step=1", "--resume=True")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    summary = out / "AlexNet_ID0259_for_TensorFlow_bs4_1p_acc.log"  # beside the perf run's summary, kept
    assert contract.check_summary(result, str(summary)) + contract.check_loss_file(result) + \
        contract.check_final_block(result) == []
    log = (out / "train_0.log").read_text()
    assert "after epoch 1" in log and "epoch 1 step: 2 " in log and "epoch 2 step: 1 step_time " in log
    assert float(result.summary["TrainAccuracy"]) == float(log.split("test accuracy ")[-1].split()[0])
    loss_file = (out / "AlexNet_ID0259_for_TensorFlow_bs4_1p_acc_loss.txt").read_text().split()
    assert len(loss_file) == 3 and float(result.summary["ActualLoss"]) == float(loss_file[-1])
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2
    assert (out / "model" / "model.ckpt.index").is_file() and (out / "first_kernel_visualization" / "epoch_2.png").is_file()


def test_missing_data_path_and_failures_are_reported(model_copy, tmp_path):
    proc = run(["bash", "train_full_1p.sh"], model_copy / "test")
    assert proc.returncode == 1 and proc.stdout.strip() == '[Error] para "data_path" must be config'
    proc = run(["bash", "test/train_full_1p.sh", f"--data_path={tmp_path / 'nothing'}"], model_copy)
    assert proc.returncode != 0 and "is not a folder" in proc.stdout and "Traceback" not in proc.stdout
    assert "Final result" not in proc.stdout


def test_help(model_copy):
    proc = run(["bash", "train_performance_1p.sh", "--help"], model_copy / "test")
    assert proc.returncode == 0 and "--data_path" in proc.stdout and "--max_step" in proc.stdout
