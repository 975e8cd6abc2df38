"""Training through the launchers and mnist_main.py on synthetic TFDS-layout data."""
import os
import re

import pytest

import contract
from conftest import run, run_main, run_stats, saved_model_accuracy

SMOKE = ["--batch_size=128", "--train_epochs=2", "--momentum=0.9"]


def launch(model_copy, launcher, data, *args):
    proc = run(["bash", launcher, f"--data_path={data}", *SMOKE, *args], cwd=model_copy / "test")
    result = contract.Run(str(model_copy), launcher, proc.stdout)
    return proc, result, (model_copy / "test" / "output" / "0" / "train_0.log").read_text()


def test_full_launcher_meets_the_contract_and_exports_a_saved_model(model_copy, smoke_data):
    proc, result, log = launch(model_copy, "train_full_1p.sh", smoke_data)
    assert contract.check(result, proc.returncode, min_accuracy=0.9, loss_must_fall=True) == []
    assert result.summary["CaseName"] == "MNIST_ID2481_for_TensorFlow2.X_bs128_1p_acc"
    assert len(result.losses) == 64  # 4096 // 128 steps x 2 epochs
    assert re.search(r"^Final Training Duration sec : [\d.]+$", proc.stdout, re.M)
    assert "params: {" in log and log.count("epoch_duration: ") == 2 and "imgs/s: " in log
    ckpt = model_copy / "test" / "output" / "0" / "ckpt"
    assert (ckpt / "model.ckpt-0001.index").is_file() and (ckpt / "model.ckpt-0002.index").is_file()
    assert list((ckpt / "train").glob("events.out.tfevents.*"))
    # The SavedModel, loaded in a fresh process, gives the accuracy of the final evaluation (all 1,024).
    stats = run_stats(log)
    assert float(result.summary["TrainAccuracy"]) == pytest.approx(stats["accuracy_top_1"], abs=5e-5)
    assert saved_model_accuracy(ckpt / "saved_model", smoke_data, 1024) == pytest.approx(
        stats["accuracy_top_1"], abs=1e-6)


@pytest.mark.parametrize("launcher, static", [("train_performance_1p_static_eval.sh", True),
                                              ("train_performance_1p_dynamic_eval.sh", False)])
def test_performance_launchers_report_images_per_second(model_copy, smoke_data, launcher, static):
    proc, result, log = launch(model_copy, launcher, smoke_data, "--unknown=1")
    assert contract.check(result, proc.returncode, min_accuracy=0.5, loss_must_fall=True) == []
    kind = "static" if static else "dynamic"
    assert result.summary["CaseName"] == f"MNIST_ID2481_for_TensorFlow2.X_bs128_1p_{kind}_eval_perf"
    fps, ms = result.value("ActualFPS"), result.value("TrainingTime")
    assert fps > 0 and fps == pytest.approx(128 * 1000 / ms, rel=1e-3)
    assert "unknown argument --unknown=1 ignored" in proc.stderr
    shape = "(128, 28, 28, 1) (static)" if static else "(None, 28, 28, 1) (dynamic)"
    assert f"batch shape {shape}" in log


def test_restart_resumes_from_the_last_epoch_checkpoint(tiny_data, tmp_path):
    args = [f"--data_dir={tiny_data}", f"--model_dir={tmp_path}", "--download=False", "--batch_size=128",
            "--momentum=0.9"]
    first = run_main(*args, "--train_epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert re.findall(r"^step:(\d+) ", first.stdout, re.M)[-1] == "8"
    second = run_main(*args, "--train_epochs=2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {tmp_path}/model.ckpt-0001 at epoch 1" in second.stdout
    assert [int(s) for s in re.findall(r"^step:(\d+) ", second.stdout, re.M)] == list(range(9, 17))
    assert (tmp_path / "model.ckpt-0002.index").is_file()
    # The optimizer state came back too: its step counter continues at 8, ends at 16.
    import tensorflow as tf
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-0002"))
    counters = [k for k in reader.get_variable_to_shape_map() if "iteration" in k]
    assert counters and int(reader.get_tensor(counters[0])) == 16
    third = run_main(*args, "--train_epochs=2", "--clean")
    assert "resuming" not in third.stdout and third.returncode == 0
