"""The training loop in-process: the learning-rate rule, the loop on a scripted session (markers, NaN guard,
a resume in mid-epoch), the history cut to a restored checkpoint, and the order in which an epoch's outputs
are written. (A tiny real run, its outputs and every way it stops and resumes: test_never_lose_a_run.py.)"""
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

import cli
import main
import plots
import run_outputs
import run_report
import run_safety
import train
import watch
import zoo_precision


@pytest.mark.parametrize("epoch, accuracies, expected", [
    (10, [50.0] * 10, 1.0),                             # the rule runs after epochs 11, 21, 31 only
    (11, [50.0] * 11, 0.1),                             # flat: cut
    (12, [50.0] * 12, 1.0),                             # flat, but not a rule epoch
    (11, [0.0] + [50.0] * 9 + [52.0], 1.0),             # 2 points above the mean of epochs 2..10: kept
    (11, [99.0] + [50.0] * 9 + [51.9], 0.1),            # epoch 1 is not in the mean; 1.9 points: cut
    (11, [0.0] + [40.0] * 8 + [60.0, 59.0], 1.0),      # below epoch 10, far above the mean of 2..10: kept
    (21, [50.0] * 11 + [40.0] * 9 + [41.5], 0.1),       # compares epoch 21 with the mean of epochs 12..20
    (21, [50.0] * 11 + [40.0] * 9 + [42.0], 1.0),
])
def test_learning_rate_rule_is_the_originals(epoch, accuracies, expected):
    assert train.learning_rate_after(epoch, 1.0, accuracies) == pytest.approx(expected)


class ScriptedSession:
    """Plays sess.run for train.train: each step returns the next (loss, hits); held-out batches score 1 of 2."""

    def __init__(self, losses, hits=1):
        self.losses = list(losses)
        self.hits = hits

    def run(self, fetches):
        if fetches == "step":
            loss = self.losses.pop(0)
            return None, loss, loss / 2, self.hits
        return 1, 2


class ScriptedOutputs:
    """Records what train.train asks run_outputs to keep: (epoch, epochs in the history) per epoch."""

    def __init__(self):
        self.epochs = []

    def after_epoch(self, sess, epoch, history):
        self.epochs.append((epoch, len(history["loss"])))

    def save_point(self, sess, step, history):
        raise AssertionError("no save point without a signal")


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


def unwatched(batch_size):
    return watch.Watch("unused", batch_size, events=False)


def test_loop_logs_every_marker_and_cuts_the_learning_rate_once(capsys, monkeypatch):
    monkeypatch.setenv(run_report.PROGRESS_ENV, "1e-9")  # a line at every update
    plan = train.Plan(epochs=12, steps=2, batch_size=4, held_out_batches=3, log_every=5)
    net, outputs, watched = ScriptedNet(0.01), ScriptedOutputs(), unwatched(8)
    history = train.train(ScriptedSession([0.5] * 24), net, plan, run_outputs.new_history(), outputs, 0, watched)
    log = capsys.readouterr().out.splitlines()
    assert outputs.epochs == [(e, e) for e in range(1, 13)] and history["steps"] == list(range(2, 25, 2))
    assert history["train_acc"] == [25.0] * 12 and history["test_acc"] == [50.0] * 12  # 1 of 4, 3 of 6
    assert history["lr_changed_at"] == 11 and net.lr == pytest.approx(0.001)
    assert log.count("learning rate -> 0.001 (training accuracy less than 2.0 points above the mean of the 9 epochs "
                     "before)") == 1
    steps = [line for line in log if line.startswith("epoch ")]
    assert len(steps) == 24 and steps[-1].startswith("epoch 12 step: 2 step_time ") and " FPS " in steps[-1]
    progress = [line for line in log if line.startswith("progress : ")]
    assert len(progress) == 12 and progress[-1] == "progress : 100.00%  loss :0.500000"  # each epoch's last step
    assert log.count("test accuracy 50.00") == 12 and log.count("train accuracy 25.00") == 12
    # The step lines print the times the clock keeps (4 decimals): the launcher's figures are the clock's.
    seconds = [float(line.split()[5]) for line in steps]
    assert watched.clock.seconds == pytest.approx(seconds, abs=5e-5) and watched.clock.global_batch == 8
    assert watched.last_loss == 0.5
    # [progress] lines of the loop (loss, images/sec once a step is timed) and of each held-out evaluation
    training = [line for line in log if line.startswith("[progress]") and " step " in line]
    assert len(training) == 23 and training[-1].split(" step ")[1].startswith("24/24 (100.0%) loss 0.5000 images/sec ")
    assert sum(1 for line in log if line.startswith("[progress]") and " held-out batch 3/3 " in line) == 12


def test_loop_stops_on_a_diverging_loss():
    plan = train.Plan(epochs=2, steps=3, batch_size=4, held_out_batches=1, log_every=1)
    with pytest.raises(run_safety.TrainingDiverged, match=r"^loss is nan at step 2; lower --learning_rate$"):
        train.train(ScriptedSession([0.5, math.nan, 0.5]), ScriptedNet(0.01), plan, run_outputs.new_history(),
                    ScriptedOutputs(), 0, unwatched(4))


def test_loop_resumed_in_mid_epoch_finishes_that_epoch_with_its_saved_figures(capsys):
    """A stop after 2 of 4 steps of epoch 2 (step 6): 2 more steps, the epoch's figures over all 4."""
    plan = train.Plan(epochs=2, steps=4, batch_size=4, held_out_batches=1, log_every=10)
    history = {**run_outputs.new_history(), "loss": [1.0], "train_acc": [10.0], "test_acc": [5.0], "steps": [4],
               "partial": {"step": 6, "losses": [3.0, 3.0], "hits": 8}}
    history = train.train(ScriptedSession([1.0, 1.0], hits=0), ScriptedNet(0.01), plan, history,
                          ScriptedOutputs(), 6, unwatched(4))
    steps = [line.split(" step_time")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert steps == ["epoch 2 step: 3", "epoch 2 step: 4"]
    assert history["loss"] == [1.0, 2.0] and history["train_acc"] == [10.0, 50.0] and history["steps"] == [4, 8]
    assert history["partial"] is None


def test_history_is_cut_to_what_the_restored_checkpoint_holds():
    history = {**run_outputs.new_history(), "loss": [1.0, 2.0, 3.0], "train_acc": [1.0] * 3, "test_acc": [1.0] * 3,
               "steps": [5, 10, 15], "lr_changed_at": 3, "partial": {"step": 17, "losses": [1.0], "hits": 0}}
    notices = []
    cut = run_outputs.covered(history, 10, notices.append)
    assert cut["loss"] == [1.0, 2.0] and cut["steps"] == [5, 10] and cut["lr_changed_at"] == 2
    assert cut["partial"] is None and notices == [
        "[Warning] history.json has 3 epochs, the checkpoint at step 10 holds 2; epochs 3.. are trained again"]
    assert run_outputs.covered(history, 17, notices.append)["partial"]["step"] == 17 and len(notices) == 1


def tiny_graph():
    graph = tf.Graph()
    with graph.as_default():
        conv1 = [tf.compat.v1.get_variable(f"weights_{t}", [11, 11, 3, 48]) for t in (1, 2)]
        init = tf.compat.v1.global_variables_initializer()
    return graph, conv1, init


@pytest.mark.parametrize("chief", [True, False])
def test_epoch_outputs_history_first_numbered_checkpoints_and_worker_roles(tmp_path, monkeypatch, chief):
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
        for epoch in (1, 2, 3, 4):
            for key in ("loss", "train_acc", "test_acc"):
                history[key].append(float(epoch))
            history["steps"].append(epoch)
            outputs.after_epoch(sess, epoch, history)
    if chief:  # history.json before the epoch's checkpoint: a kill in between leaves a history that covers it
        # snapshots as the original: after epochs 3, 5, ... for every 2 (11, 21, ... for every 10)
        assert seen[0] == [] and "model" in seen[1] and "model_epoch3" in seen[3] and "model_epoch3" not in seen[2]
        assert sorted(n for n in os.listdir(tmp_path) if n.startswith("model_epoch")) == ["model_epoch3"]
        assert run_safety.numbered_checkpoints(str(tmp_path / "model")) == [
            (4, str(tmp_path / "model" / "model.ckpt-4")), (3, str(tmp_path / "model" / "model.ckpt-3"))]
        state = (tmp_path / "model" / "checkpoint").read_text()
        assert str(tmp_path) not in state and '"model.ckpt-4"' in state  # relative: the folder can move
    else:
        assert seen == [[], ["history.json"], ["history.json"], ["history.json"]]
    assert json.loads((tmp_path / "history.json").read_text())["loss"] == [1.0, 2.0, 3.0, 4.0]


def test_kernel_grid_scales_each_kernel_and_shows_rgb():
    kernels = [np.zeros((2, 2, 3, 1), np.float32), np.zeros((2, 2, 3, 1), np.float32)]
    kernels[0][0, 0, 0, 0] = 5.0  # tower 1: blue (BGR channel 0) at the top-left pixel
    kernels[1][1, 1, 2, 0] = 0.1  # tower 2: red at the bottom-right pixel, scaled up to 255 all the same
    grid = plots.kernel_grid(kernels)
    assert grid.shape == (1 * 3 + 1, plots.KERNEL_COLUMNS * 3 + 1, 3)
    assert list(grid[1, 1]) == [0, 0, 255] and list(grid[2, 2]) == [0, 0, 0]
    assert list(grid[2, 5]) == [255, 0, 0]
    assert list(grid[0, 0]) == [255, 255, 255]  # the white gap


@pytest.mark.parametrize("name, values", [("init", cli.INITS), ("pixels", cli.PIXELS),
                                          ("precision_mode", zoo_precision.PRECISION_MODES)])
def test_every_value_the_factories_offer_is_a_flag_choice(name, values):
    for value in values:
        assert getattr(main.parse(["--data_path=x", f"--{name}={value}"]), name) == value
