"""The launchers as users run them: contract, side outputs, resume, missing --data_path."""
import json
import os

import contract
from conftest import run

SMALL = ["--batch=8", "--val_photos=8", "--log_every=1"]


def launch(model_dir, launcher, photos, *args, from_test_dir=True):
    if from_test_dir:
        return run(["bash", launcher, f"--data_path={photos}", *SMALL, *args], model_dir / "test")
    return run(["bash", f"test/{launcher}", f"--data_path={photos}", *SMALL, *args], model_dir)


def test_full_launcher_meets_the_contract_and_writes_side_outputs(model_copy, photos):
    proc = launch(model_copy, "train_full_1p.sh", photos, "--max_epoch=2", "--max_step=3", "--bogus=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unknown argument --bogus=1" in proc.stderr
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == []
    out = model_copy / "test" / "output" / "0"
    assert result.summary["CaseName"] == "AlexNet_ID0259_for_TensorFlow_bs8_1p_acc"
    assert (out / "AlexNet_ID0259_for_TensorFlow_bs8_1p_acc_loss.txt").is_file()
    log = (out / "train_0.log").read_text()
    assert log.count("test accuracy ") == 2 and log.count("train accuracy ") == 2
    assert "epoch 2 step: 3 step_time " in log and "progress : 100.00%  loss :" in log
    assert float(result.summary["TrainAccuracy"]) == float(log.split("test accuracy ")[-1].split()[0])
    for name in ("loss.txt", "acc.png", "loss.png", "model/model.ckpt.index", "history.json",
                 "first_kernel_visualization/epoch_1.png", "first_kernel_visualization/epoch_2.png"):
        assert (out / name).is_file(), name
    assert len((out / "loss.txt").read_text().split()) == 2
    from PIL import Image
    with Image.open(out / "first_kernel_visualization" / "epoch_2.png") as grid:  # 96 kernels: 8 rows x 12
        assert grid.size == (4 * (12 * 12 + 1), 4 * (8 * 12 + 1))


def test_performance_launcher_from_the_model_root_and_resume(model_copy, photos):
    proc = launch(model_copy, "train_performance_1p.sh", photos, "--max_step=3", from_test_dir=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = contract.Run(str(model_copy), "train_performance_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == []
    assert result.summary["CaseName"].endswith("_bs8_1p_perf")
    out = model_copy / "test" / "output" / "0"
    # --resume=True keeps the folder and continues after the saved epoch; without it the run starts over.
    proc = launch(model_copy, "train_full_1p.sh", photos, "--max_epoch=2", "--max_step=2", "--resume=True")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (out / "train_0.log").read_text()
    assert "after epoch 1" in log and "epoch 2 step: 2 " in log and "epoch 1 step: 3 " in log
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2
    proc = launch(model_copy, "train_full_1p.sh", photos, "--max_epoch=1", "--max_step=1")
    assert proc.returncode == 0 and "resuming" not in (out / "train_0.log").read_text()


def test_missing_data_path_and_failures_are_reported(model_copy, tmp_path):
    proc = run(["bash", "train_full_1p.sh"], model_copy / "test")
    assert proc.returncode == 1 and proc.stdout.strip() == '[Error] para "data_path" must be config'
    proc = run(["bash", "test/train_full_1p.sh", f"--data_path={tmp_path / 'nothing'}"], model_copy)
    assert proc.returncode != 0 and "is not a folder" in proc.stdout
    assert "Final result" not in proc.stdout


def test_help(model_copy):
    proc = run(["bash", "train_performance_1p.sh", "--help"], model_copy / "test")
    assert proc.returncode == 0 and "--data_path" in proc.stdout and "--max_step" in proc.stdout
