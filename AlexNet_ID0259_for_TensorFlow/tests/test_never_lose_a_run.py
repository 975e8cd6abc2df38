"""Never lose a run, in-process through main.main on small injected data: a run stopped by SIGINT saves a
numbered checkpoint; its folder, copied elsewhere, resumes in mid-epoch and writes every output; a damaged
newest checkpoint is skipped; a missing or unreadable history.json, a checkpoint of another model, a NaN loss, a
busy or unwritable output folder are one [Error] line that leaves the checkpoints as they were.
(The launcher-level SIGTERM -> 143 -> --resume=True is in test_launchers.py.)"""
import json
import os
import re
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import contract
import main
import report
import run_outputs
import run_safety
import training_run
from conftest import array_inputs

TINY = ["--data_path=unused", "--batch_size=2", "--step=3", "--log_every=1", "--precision_mode=must_keep_origin_dtype"]


def cli(capsys, output_path, *argv):
    """(exit status, the [Error] lines, stdout, stderr) of main.main on the injected images."""
    status = main.main([*TINY, f"--output_path={output_path}", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, [line for line in err.splitlines() if line.startswith("[Error]")], out, err


def checkpoints(folder):
    return [number for number, _ in run_safety.numbered_checkpoints(str(folder / "model"))]


@pytest.fixture
def injected(monkeypatch):
    monkeypatch.setattr(training_run, "photo_inputs", lambda args: array_inputs(train_images=6))


def interrupt_at(monkeypatch, epoch, index):
    real_step = report.step

    def step(e, i, seconds, batch_size):
        real_step(e, i, seconds, batch_size)
        if (e, i) == (epoch, index):
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(report, "step", step)
    return real_step


def test_stopped_run_resumes_from_a_moved_folder_and_past_a_damaged_checkpoint(tmp_path, capsys, monkeypatch,
                                                                                injected):
    first, moved = tmp_path / "first", tmp_path / "moved"
    real_step = interrupt_at(monkeypatch, 1, 2)
    status, errors, out, _ = cli(capsys, first, "--epoch=2")
    assert status == 130 and errors == [f"[Error] stopped by SIGINT at step 2; checkpoint {first}/model/model.ckpt-2 "
                                        "saved, run again with --resume=True to continue"]
    assert out.splitlines()[0].startswith("device: ") and "precision: float32" in out.splitlines()[0]
    assert checkpoints(first) == [2, 0] and json.loads((first / "history.json").read_text())["partial"]["step"] == 2
    monkeypatch.setattr(report, "step", real_step)

    shutil.copytree(first, moved)  # its checkpoint state file must not point back into `first`
    status, errors, out, _ = cli(capsys, moved, "--epoch=2")
    assert status == 0 and errors == []
    assert f"resuming from {moved}/model/model.ckpt-2 at step 2, after epoch 0" in out
    assert "epoch 1 step: 1 " not in out and "epoch 1 step: 3 " in out and "epoch 2 step: 3 " in out
    assert out.count("test accuracy ") == 2 and out.count("train accuracy ") == 2
    check_result_and_events(moved, out, history_steps=[3, 6])
    assert checkpoints(moved) == [6, 3]  # the last two: 0 and 2 deleted once newer ones exist
    history = json.loads((moved / "history.json").read_text())
    assert history["steps"] == [3, 6] and history["partial"] is None and len(history["loss"]) == 2
    assert [float(v) for v in (moved / "loss.txt").read_text().split()] == pytest.approx(history["loss"], abs=1e-6)
    for name in ("acc.png", "loss.png", "first_kernel_visualization/epoch_1.png"):
        assert (moved / name).is_file(), name
    with Image.open(moved / "first_kernel_visualization" / "epoch_2.png") as grid:  # 96 kernels: 8 rows x 12
        assert grid.size == (4 * (12 * 12 + 1), 4 * (8 * 12 + 1))
    status, errors, _, _ = cli(capsys, moved, "--epoch=2")
    assert status == 1 and errors == [f"[Error] --epoch: {moved} already holds 2 epochs; pass a larger --epoch "
                                      "to train on"]

    # A kill during the save of model.ckpt-2: its data file half written. The run before it resumes. A kill
    # during a later save left TensorFlow's unfinished file, which no rotation would ever delete: removed.
    data = first / "model" / "model.ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    unfinished = first / "model" / "model.ckpt-5.data-00000-of-00001.tempstate8160934"
    unfinished.write_bytes(data.read_bytes())
    status, errors, out, err = cli(capsys, first, "--epoch=1")
    assert status == 0 and f"[Warning] skipping damaged checkpoint {first}/model/model.ckpt-2: " in err
    assert not unfinished.exists() and "of a checkpoint save cut short (" in err
    assert f"resuming from {first}/model/model.ckpt-0 at step 0, after epoch 0" in out
    assert checkpoints(first)[:1] == [3]

    # history.json goes with the checkpoints: missing or unreadable, the run stops and changes nothing.
    before = sorted(os.listdir(first / "model"))
    (first / "history.json").write_text("{not json")
    with pytest.raises(run_safety.RunSafetyError, match=r"history.json is unreadable \(Expecting"):
        run_outputs.load_history(str(first / "history.json"))  # the same path as a missing one, below
    (first / "history.json").unlink()
    status, errors, _, _ = cli(capsys, first, "--epoch=2")
    assert status == 1 and errors == [f"[Error] {first}/history.json is missing; it goes with the checkpoints in "
                                      f"{first}/model: put it back, or move the folder aside to start afresh"]
    assert sorted(os.listdir(first / "model")) == before and not (first / "history.json").exists()


def check_result_and_events(folder, out, history_steps):
    """result.json of the resumed run (its 4 steps, 2 of them left out of the timing) agrees with its log; the
    TensorBoard events of both runs are in train/ and validation/, numbered by global step."""
    result = json.loads((folder / "result.json").read_text())
    assert [key for key in result][:len(contract.RESULT_KEYS)] == list(contract.RESULT_KEYS)
    assert result["model"] == "AlexNet_ID0259_for_TensorFlow" and result["launcher"] == "main.py"
    assert (result["precision"], result["batch_size"], result["rank_size"]) == ("float32", 2, 1)
    assert (result["steps"], result["warmup_steps"], result["global_step"], result["epochs"]) == (4, 2, 6, 2)
    times = [float(line.split()[5]) for line in out.splitlines() if line.startswith("epoch ")][2:]
    assert result["ms_per_step"] == pytest.approx(1000 * sum(times) / 2, abs=0.1)
    assert result["images_per_sec"] == pytest.approx(2000 / result["ms_per_step"])
    assert f"steady state: {result['ms_per_step']:.2f} ms/step, {result['images_per_sec']:.2f} images/sec" in out
    assert result["accuracy_name"] == "held_out_accuracy"
    assert result["accuracy"] == pytest.approx(float(out.split("test accuracy ")[-1].split()[0]) / 100, abs=1e-4)
    assert result["final_loss"] == float(out.split("loss :")[-1].split()[0])
    scalars = contract.read_scalars(str(folder))
    assert set(scalars) == {"train", "validation"}
    train = scalars["train"]
    assert set(train) == {"loss", "cross_entropy", "learning_rate", "accuracy", "images_per_sec"}
    assert [step for step, _ in train["loss"]] == [1, 2, 3, 4, 5, 6]  # log_every=1; steps 1, 2 by the first run
    assert train["loss"][0][1] != train["loss"][-1][1] and train["loss"][-1][1] == pytest.approx(result["final_loss"])
    assert all(total > xent for (_, total), (_, xent) in zip(train["loss"], train["cross_entropy"]))  # weight decay
    assert [value for _, value in train["learning_rate"]] == pytest.approx([0.001] * 6)
    assert all(0 <= value <= 1 for _, value in train["accuracy"])
    assert [step for step, _ in train["images_per_sec"]] == [1, 2, 3, 4, 5, 6]
    assert scalars["validation"]["accuracy"] == [(step, pytest.approx(value / 100)) for step, value in
                                                 zip(history_steps, json.loads((folder / "history.json").read_text())["test_acc"])]


def test_checkpoint_of_another_model_is_one_line(tmp_path, capsys, injected):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("lenet/conv1/w", [5, 5, 1, 32])
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(sess, str(tmp_path / "model" / "model.ckpt"), global_step=7)
    status, errors, _, _ = cli(capsys, tmp_path, "--epoch=1")
    assert status == 1 and len(errors) == 1 and len(errors[0]) < 320, errors
    assert errors[0].startswith(f"[Error] {tmp_path}/model/model.ckpt-7 is not a checkpoint of this AlexNet: it "
                                "holds 0 of its ") and "first missing: conv1/" in errors[0]
    assert checkpoints(tmp_path) == [7] and not (tmp_path / "history.json").exists()


def test_nan_loss_stops_before_any_checkpoint_of_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training_run, "photo_inputs", lambda args: array_inputs(train_images=6, fill=np.nan))
    status, errors, _, _ = cli(capsys, tmp_path, "--epoch=2", "--step=1")
    # ReLU and max-pool can swallow NaN inputs, so the first loss may be finite while the update is not: then
    # the check of the variables before the epoch's checkpoint stops the run.
    assert status == 1 and len(errors) == 1 and re.fullmatch(
        r"\[Error\] (loss is nan at step \d|weights are not finite after step 1); lower --learning_rate", errors[0])
    assert checkpoints(tmp_path) == [0]  # the initial weights, written before the first step
    assert json.loads((tmp_path / "history.json").read_text())["loss"] == []


def test_busy_or_unwritable_output_folder(tmp_path, capsys, injected):
    with run_safety.FolderLock(str(tmp_path)):
        status, errors, _, _ = cli(capsys, tmp_path, "--epoch=1")
    assert status == 1 and len(errors) == 1 and f"{tmp_path} is in use by another run (pid={os.getpid()}" in errors[0]
    (tmp_path / "file").write_text("")
    status, errors, _, _ = cli(capsys, tmp_path / "file" / "out", "--epoch=1")
    assert status == 1 and errors == [f"[Error] --output_path={tmp_path}/file/out: cannot write there: Not a directory"]
    assert sorted(os.listdir(tmp_path)) == [".run.lock", "file"]
