"""The training loop in-process: the learning-rate rule, the loop on a scripted session, a tiny real run with
its log markers, side outputs and resume, and the order in which an epoch's outputs are written."""
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import main
import model
import plots
import run_outputs
import train
import zoo_precision
from conftest import array_inputs, flags


@pytest.mark.parametrize("epoch, accuracies, changed_at, expected", [
    (10, [50.0] * 10, 0, (1.0, 0)),                     # not yet 10 epochs after the start
    (11, [50.0] * 11, 0, (0.1, 11)),                    # flat over 10 epochs: cut
    (11, [50.0] * 10 + [52.0], 0, (1.0, 0)),            # rose by exactly 2 points: kept
    (11, [50.0] * 10 + [51.9], 0, (0.1, 11)),           # rose by less than 2 points: cut
    (21, [50.0] * 21, 11, (1.0, 11)),                   # 10 epochs since the last cut: wait one more
    (22, [50.0] * 22, 11, (0.1, 22)),
    (22, [40.0] * 11 + [45.0] * 11, 0, (0.1, 22)),      # compares epoch 22 with epoch 12 only
])
def test_learning_rate_rule(epoch, accuracies, changed_at, expected):
    lr, changed = train.learning_rate_after(epoch, 1.0, accuracies, changed_at)
    assert (lr, changed) == pytest.approx(expected)


class ScriptedSession:
    """Plays sess.run for train.train: each step returns the next (loss, hits); held-out batches score 1 of 2."""

    def __init__(self, losses, hits=1):
        self.losses = list(losses)
        self.hits = hits

    def run(self, fetches):
        if fetches == "step":
            return None, self.losses.pop(0), self.hits
        return 1, 2


class ScriptedNet:
    step = "step"
    held_out = "held_out"

    def __init__(self, lr):
        self.lr = lr
        self.learning_rate = self
        self.averaged = lambda sess, values: [float(v) for v in values]

    def get(self, sess):
        return self.lr

    def set(self, sess, value):
        self.lr = value


def test_loop_logs_every_marker_and_cuts_the_learning_rate_once(capsys):
    plan = train.Plan(epochs=12, steps=2, batch_size=4, held_out_batches=3, log_every=5)
    net, saved = ScriptedNet(0.01), []
    history = train.train(ScriptedSession([0.5] * 24), net, plan, run_outputs.new_history(),
                          lambda sess, epoch, h: saved.append((epoch, len(h["loss"]))))
    log = capsys.readouterr().out.splitlines()
    assert saved == [(e, e) for e in range(1, 13)]
    assert history["train_acc"] == [25.0] * 12 and history["test_acc"] == [50.0] * 12  # 1 of 4, 3 of 6
    assert history["lr_changed_at"] == 11 and net.lr == pytest.approx(0.001)
    assert log.count("learning rate -> 0.001 (training accuracy rose less than 2.0 points in 10 epochs)") == 1
    steps = [line for line in log if line.startswith("epoch ")]
    assert len(steps) == 24 and steps[-1].startswith("epoch 12 step: 2 step_time ") and " FPS " in steps[-1]
    progress = [line for line in log if line.startswith("progress : ")]
    assert len(progress) == 12 and progress[-1] == "progress : 100.00%  loss :0.500000"  # each epoch's last step
    assert log.count("test accuracy 50.00") == 12 and log.count("train accuracy 25.00") == 12


def test_loop_stops_on_a_diverging_loss():
    plan = train.Plan(epochs=2, steps=3, batch_size=4, held_out_batches=1, log_every=1)
    with pytest.raises(train.TrainingError, match="loss is nan at epoch 1 step 2"):
        train.train(ScriptedSession([0.5, math.nan, 0.5]), ScriptedNet(0.01), plan, run_outputs.new_history(),
                    lambda *args: None)


def test_tiny_run_writes_every_output_and_resumes(tmp_path, capsys):
    """The real graph in float32 (must_keep_origin_dtype) on 4 random images: epoch 1, then a resumed epoch 2."""
    first = main.run(flags(tmp_path, "--epoch=1", "--precision_mode=must_keep_origin_dtype"), array_inputs())
    log = capsys.readouterr().out
    assert log.splitlines()[0].startswith("device: ") and "precision: float32" in log.splitlines()[0]
    assert "epoch 1 step: 2 step_time " in log and "progress : 100.00%  loss :" in log
    assert log.count("test accuracy ") == 1 and log.count("train accuracy ") == 1
    for name in ("model/model.ckpt.index", "acc.png", "loss.png", "first_kernel_visualization/epoch_1.png"):
        assert (tmp_path / name).is_file(), name

    history = main.run(flags(tmp_path, "--epoch=2", "--step=1"), array_inputs())
    log = capsys.readouterr().out
    assert "after epoch 1" in log and "epoch 2 step: 1 " in log and "epoch 1 step:" not in log
    assert history["loss"][:1] == first["loss"] and len(history["loss"]) == 2
    assert [float(v) for v in (tmp_path / "loss.txt").read_text().split()] == pytest.approx(history["loss"], abs=1e-6)
    assert json.loads((tmp_path / "history.json").read_text()) == history
    with Image.open(tmp_path / "first_kernel_visualization" / "epoch_2.png") as grid:  # 96 kernels: 8 rows x 12
        assert grid.size == (4 * (12 * 12 + 1), 4 * (8 * 12 + 1))
    with pytest.raises(train.TrainingError, match="already holds 2 epochs"):
        main.run(flags(tmp_path, "--epoch=2"), array_inputs())


def tiny_graph():
    graph = tf.Graph()
    with graph.as_default():
        conv1 = [tf.compat.v1.get_variable(f"weights_{t}", [11, 11, 3, 48]) for t in (1, 2)]
        init = tf.compat.v1.global_variables_initializer()
    return graph, conv1, init


@pytest.mark.parametrize("chief", [True, False])
def test_epoch_outputs_history_last_snapshots_and_worker_roles(tmp_path, monkeypatch, chief):
    graph, conv1, init = tiny_graph()
    outputs = run_outputs.RunOutputs(str(tmp_path), graph, conv1, chief=chief, snapshot_every=2)
    seen = []
    real_save = run_outputs.save_history

    def save_history(path, history):
        seen.append(sorted(os.listdir(tmp_path)))  # what exists when history.json is written
        real_save(path, history)
    monkeypatch.setattr(run_outputs, "save_history", save_history)
    history = run_outputs.new_history()
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(init)
        for epoch in (1, 2):
            for key in ("loss", "train_acc", "test_acc"):
                history[key].append(float(epoch))
            outputs.after_epoch(sess, epoch, history)
    if chief:
        assert seen[0] == ["acc.png", "first_kernel_visualization", "loss.png", "loss.txt", "model"]
        assert "model_epoch2" in seen[1] and "model_epoch1" not in seen[1]
    else:
        assert seen == [[], ["history.json"]]
    assert json.loads((tmp_path / "history.json").read_text())["loss"] == [1.0, 2.0]


def test_kernel_grid_scales_each_kernel_and_shows_rgb():
    kernels = [np.zeros((2, 2, 3, 1), np.float32), np.zeros((2, 2, 3, 1), np.float32)]
    kernels[0][0, 0, 0, 0] = 5.0  # tower 1: blue (BGR channel 0) at the top-left pixel
    kernels[1][1, 1, 2, 0] = 0.1  # tower 2: red at the bottom-right pixel, scaled up to 255 all the same
    grid = plots.kernel_grid(kernels)
    assert grid.shape == (1 * 3 + 1, plots.KERNEL_COLUMNS * 3 + 1, 3)
    assert list(grid[1, 1]) == [0, 0, 255] and list(grid[2, 2]) == [0, 0, 0]
    assert list(grid[2, 5]) == [255, 0, 0]
    assert list(grid[0, 0]) == [255, 255, 255]  # the white gap


@pytest.mark.parametrize("name, values", [("init", model.INITS), ("pixels", model.PIXELS),
                                          ("precision_mode", zoo_precision.PRECISION_MODES)])
def test_every_value_the_factories_offer_is_a_flag_choice(name, values):
    for value in values:
        assert getattr(main.parse(["--data_path=x", f"--{name}={value}"]), name) == value
