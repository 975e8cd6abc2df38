"""mnist_main.run in this process on injected synthetic datasets (quick tier): the markers the launchers grep,
result.json, TensorBoard scalars, progress lines, checkpoints, --clean, the SavedModel; SIGTERM, then resume from a moved folder past a damaged checkpoint. float32 throughout (--precision_mode=must_keep_origin_dtype), so the
exact comparisons below compare float32 with float32 on every CPU."""
import json
import os
import re
import signal

import numpy as np
import pytest
import tensorflow as tf

import contract
import mnist_main
import reporting
import run_safety
from conftest import run_stats

FLOAT32 = "--precision_mode=must_keep_origin_dtype"


def train(parse_flags, model_dir, datasets, *args):
    values = parse_flags(f"--model_dir={model_dir}", "--batch_size=64", "--momentum=0.9", "--seed=1", FLOAT32, *args)
    return mnist_main.run(values, datasets_override=datasets)


def steps(out):
    return [int(s) for s in re.findall(r"^step:(\d+) ,loss: [\d.]+ ,time: [\d.]+$", out, re.M)]


def test_run_prints_the_markers_and_writes_checkpoints_and_a_saved_model(parse_flags, small_datasets, tmp_path,
                                                                         capsys, monkeypatch):
    (tmp_path / "model.ckpt-99.index").write_text("not a checkpoint")  # --clean removes it, so no resume
    monkeypatch.setenv("ZOO_PROGRESS_EVERY", "0.0001")
    stats = train(parse_flags, tmp_path, small_datasets, "--train_epochs=2", "--eval_static=True", "--clean")
    out = capsys.readouterr().out
    assert "resuming" not in out
    assert out.splitlines()[0] == "device: CPU, precision: float32 (must_keep_origin_dtype)"
    assert ("data: 512 train / 128 test examples; 8 steps per epoch, 2 eval steps; batch shape (64, 28, 28, 1) "
            "(static)") in out
    assert steps(out) == list(range(1, 17))
    losses = [float(v) for v in re.findall(r"^step:\d+ ,loss: ([\d.]+)", out, re.M)]
    assert losses[-1] < losses[0]
    assert out.count("\nepoch_duration: ") == 2 and re.search(r"^params: \{'verbose': 2, 'epochs': 2", out, re.M)
    timing = re.search(r"^ms/step: ([\d.]+)\nimgs/s: ([\d.]+)\ntrain_duration_sec: [\d.]+$", out, re.M)
    assert re.search(r"^\[progress\] \S+ \S+ step 16/16 \(100.0%\) loss [\d.]+ images/sec [\d.]+ elapsed ", out, re.M)
    assert re.search(r"^\[progress\] .* eval step 2/2 \(100.0%\) loss [\d.]+ elapsed ", out, re.M)
    final = re.findall(r"^2/2 - \d+s - loss: [\d.]+ - sparse_categorical_accuracy: ([\d.]+)$", out, re.M)
    assert len(final) == 1 and float(final[0]) == pytest.approx(stats["accuracy_top_1"], abs=5e-5)
    assert run_stats(out) == stats and stats["accuracy_top_1"] > 0.5
    # result.json (in --model_dir without --result_dir): 16 steps, the first half left out of the timing.
    record = json.loads((tmp_path / "result.json").read_text())
    assert {key: record[key] for key in ("launcher", "device", "precision", "batch_size", "rank_size", "steps",
                                         "warmup_steps", "accuracy_name")} == {
        "launcher": "mnist_main.py", "device": "CPU", "precision": "float32", "batch_size": 64, "rank_size": 1,
        "steps": 16, "warmup_steps": 8, "accuracy_name": "sparse_categorical_accuracy"}
    assert record["accuracy"] == stats["accuracy_top_1"] and record["final_loss"] == losses[-1]
    assert record["ms_per_step"] == pytest.approx(float(timing.group(1)), abs=1e-3)
    assert record["images_per_sec"] == pytest.approx(float(timing.group(2)), abs=0.01)
    # TensorBoard: training points every 10 steps and at each epoch's end, validation after each epoch.
    scalars = contract.read_scalars(str(tmp_path))
    assert sorted(scalars) == ["train", "validation"]
    assert sorted(scalars["train"]) == ["images_per_sec", "learning_rate", "loss", "sparse_categorical_accuracy"]
    assert sorted(scalars["validation"]) == ["loss", "sparse_categorical_accuracy"]
    assert [step for step, _ in scalars["train"]["loss"]] == [8, 10, 16]
    assert [step for step, _ in scalars["validation"]["loss"]] == [8, 16]
    for points in (*scalars["train"].values(), scalars["validation"]["loss"]):
        assert points[0][1] != points[-1][1], points
    assert scalars["train"]["loss"][-1][1] < scalars["train"]["loss"][0][1]
    assert scalars["validation"]["sparse_categorical_accuracy"][-1][1] == pytest.approx(record["accuracy"])
    assert checkpoint_numbers(tmp_path) == [0, 8, 16]  # after initialisation and after each epoch
    # The exported SavedModel classifies the 128 test images (the 2 evaluated batches) as the evaluation did.
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    images, labels = next(iter(small_datasets[1].batch(128)))
    # The SavedModel takes float32 images in [0, 1], as the network trains on (the pipeline scales uint8 batches).
    accuracy = np.mean(np.argmax(loaded.serve(tf.cast(images, tf.float32) / 255.0).numpy(), 1) == labels.numpy())
    assert accuracy == pytest.approx(stats["accuracy_top_1"], abs=1e-6)


def test_sigterm_stops_with_a_checkpoint_and_a_moved_folder_resumes_past_a_damaged_one(
        parse_flags, small_datasets, tmp_path, capsys, monkeypatch):
    logged = reporting.StepLogger.on_train_batch_end

    def signal_at_step_3(self, batch, logs=None):
        logged(self, batch, logs)
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with monkeypatch.context() as patch:
        patch.setattr(reporting.StepLogger, "on_train_batch_end", signal_at_step_3)
        with pytest.raises(run_safety.Stopped) as stopped:
            train(parse_flags, tmp_path / "a", small_datasets, "--train_epochs=2")
    # The request rides on the next step's all-reduce, so every worker stops after that same step.
    assert stopped.value.status == 143 and str(stopped.value) == (
        f"stopped by SIGTERM at step 4; checkpoint {tmp_path}/a/model.ckpt-4 saved, run again with --resume=True "
        "to continue")
    assert steps(capsys.readouterr().out) == [1, 2, 3, 4]
    assert checkpoint_numbers(tmp_path / "a") == [0, 4]  # step 0: written right after initialisation

    (tmp_path / "a").rename(tmp_path / "b")
    train(parse_flags, tmp_path / "b", small_datasets, "--train_epochs=2")
    out = capsys.readouterr().out
    assert f"resuming from {tmp_path}/b/model.ckpt-4 at step 4" in out
    assert steps(out) == list(range(5, 17)) and checkpoint_numbers(tmp_path / "b") == [4, 8, 16]
    # The optimizer state came back too: its step counter continued at 4 and ended at 16.
    assert int(tf.train.load_checkpoint(str(tmp_path / "b" / "model.ckpt-16")).get_tensor(
        "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")) == 16

    (tmp_path / "b" / "model.ckpt-16.data-00000-of-00001").write_bytes(b"cut short by a kill")
    # A kill in the middle of a TF2 save leaves its shard folder, which no later save removes: the run does.
    unfinished = tmp_path / "b" / "model.ckpt-24_temp"
    unfinished.mkdir()
    (unfinished / "part-00000-of-00001.data-00000-of-00001.tempstate151369").write_bytes(b"cut short")
    # --distribution_strategy=off: the default strategy, which the Ascend ranks use as well.
    trained = train(parse_flags, tmp_path / "b", small_datasets, "--train_epochs=2", "-ds=off")
    out, err = capsys.readouterr()
    assert "off: rank 0 of 1, 1 replicas, batch 64 per replica" in out
    assert f"[Warning] skipping damaged checkpoint {tmp_path}/b/model.ckpt-16: " in err
    assert not unfinished.exists() and f"save cut short (9 bytes) from {tmp_path}/b: model.ckpt-24_temp" in err
    assert f"resuming from {tmp_path}/b/model.ckpt-8 at step 8" in out and steps(out) == list(range(9, 17))
    assert run_safety.load_problem(str(tmp_path / "b" / "model.ckpt-16")) is None  # written anew

    # Resumed at its end: evaluated, and a record without timing or loss (the launcher's NA).
    train(parse_flags, tmp_path / "b", small_datasets, "--train_epochs=2", f"--result_dir={tmp_path / 'r'}")
    out = capsys.readouterr().out
    assert "nothing left to train: step 16 ends --train_epochs=2" in out and not steps(out)
    record = json.loads((tmp_path / "r" / "result.json").read_text())
    assert [record[key] for key in ("steps", "ms_per_step", "images_per_sec", "final_loss")] == [0, None, None, None]
    assert record["accuracy"] == trained["accuracy_top_1"]  # the same weights evaluated again


def checkpoint_numbers(folder):
    return sorted(number for number, _ in run_safety.numbered_checkpoints(str(folder)))
