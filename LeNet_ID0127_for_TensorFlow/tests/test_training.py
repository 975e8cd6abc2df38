"""LeNet.py's training entry in-process (LeNet.run with injected arrays, LeNet.main with flags): learning, the
log the launchers read, checkpoints, resume (moved folder, damaged newest checkpoint, after a stop signal),
fine-tuning, a diverging loss, freezing and online inference."""
import contextlib
import io
import json
import os
import re
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf

import LeNet
import LeNet_frozen_graph
import LeNet_online_inference
import contract
import lenet_model
import lenet_train
import run_safety
from conftest import FLOAT32, assert_one_line_error, final_value, run_in_process

# 240 steps at learning rate 0.003 leave sigmoid LeNet's 2.30 plateau (about step 150) and reach 0.99 on the
# synthetic digits in float32; the thresholds below leave room for other CPUs' float32 kernels.
# Ten steps per session call, as the launchers run.
TRAINED = ["--epochs=2", "--steps=120", "--learning_rate=0.003", "--save_checkpoints_steps=50",
           "--summary_steps=50", "--iteration_per_loop=10", FLOAT32]
STEP_LINE = re.compile(r"^epoch : (\d+)----step : (\d+)----loss : [-+\d.e]+----sec/step : ([\d.e-]+)$")


def run_logged(argv, datasets):
    """LeNet.run on parsed argv; returns (Outcome, its stdout)."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        outcome = LeNet.run(LeNet.parse_args([str(a) for a in argv]), datasets)
    return outcome, log.getvalue()


@pytest.fixture(scope="module")
def trained(small_splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    outcome, log = run_logged([f"--output_path={out}", *TRAINED], small_splits)
    return out, outcome, log


def test_training_learns_and_prints_what_the_launchers_read(trained):
    out, outcome, log = trained
    lines = log.splitlines()
    assert re.fullmatch(r"device: (CPU|GPU), precision: float32 \(must_keep_origin_dtype\)", lines[0])
    matches = [m for m in map(STEP_LINE.match, lines) if m]
    assert [(int(m[1]), int(m[2])) for m in matches] == [(epoch, s) for epoch in (1, 2) for s in range(1, 121)]
    # Each loop of ten steps (summaries, checkpoints and epoch ends fall between loops) is timed as a whole.
    assert all(len({m[3] for m in matches[start:start + 10]}) == 1 for start in range(0, 240, 10))
    assert len(outcome.losses) == 240 and np.mean(outcome.losses[-20:]) < 0.5 * np.mean(outcome.losses[:20])
    assert re.search(r"^epoch 2 done: global step 240, images/sec [\d.]+, validation accuracy 0\.\d{4}$", log, re.M)
    assert outcome.accuracy > 0.8
    assert final_value(log, "Final Accuracy accuracy") == pytest.approx(outcome.accuracy, abs=1e-4)
    assert final_value(log, "Final Performance ms/step") == pytest.approx(outcome.ms_per_step, abs=1e-4)
    assert "Final Training Duration sec : " in log
    record = json.loads((out / "result.json").read_text())
    assert {key: record[key] for key in ("model", "launcher", "batch_size", "rank_size", "steps", "warmup_steps",
                                         "accuracy_name", "global_step")} == {
        "model": "LeNet_ID0127_for_TensorFlow", "launcher": "LeNet.py", "batch_size": 64, "rank_size": 1,
        "steps": 240, "warmup_steps": 10, "accuracy_name": "test accuracy", "global_step": 240}
    assert record["accuracy"] == pytest.approx(outcome.accuracy)
    assert record["ms_per_step"] == pytest.approx(outcome.ms_per_step)
    assert record["images_per_sec"] == pytest.approx(64 * 1000 / outcome.ms_per_step)
    assert record["final_loss"] == outcome.losses[-1]
    assert record["device"] in ("CPU", "GPU") and record["precision"] == "float32" and record["e2e_seconds"] > 0


def test_training_leaves_portable_numbered_checkpoints_graph_and_summaries(trained):
    out = trained[0]
    ckpt_dir = out / "ckpt_npu"
    # Step 0 (written right after initialisation) has rotated out: the newest five are kept.
    assert [n for n, _ in run_safety.numbered_checkpoints(str(ckpt_dir))] == [240, 200, 150, 100, 50]
    state = (ckpt_dir / "checkpoint").read_text()
    assert 'model_checkpoint_path: "model.ckpt-240"' in state and str(out) not in state
    assert (ckpt_dir / "graph.pbtxt").is_file()
    runs = contract.read_scalars(str(out / "logs"))
    assert set(runs) == {"train", "eval"}
    train, evaluation = runs["train"], runs["eval"]
    assert set(train) == {"loss", "train_accuracy", "learning_rate", "images_per_sec"}
    for tag, points in train.items():
        assert [step for step, _ in points] == [50, 100, 150, 200], tag
    assert train["loss"][0][1] != train["loss"][-1][1]
    assert [value for _, value in train["learning_rate"]] == pytest.approx([0.003] * 4)
    assert all(value > 0 for _, value in train["images_per_sec"])
    assert [step for step, _ in evaluation["validation_accuracy"]] == [120, 240]
    assert evaluation["test_accuracy"] == [(240, pytest.approx(trained[1].accuracy))]


def test_a_loop_of_steps_per_call_trains_as_one_step_per_call(trained, small_splits, tmp_path):
    one_by_one, _ = run_logged([f"--output_path={tmp_path}", *TRAINED, "--epochs=1", "--steps=12",
                                "--iteration_per_loop=1"], small_splits)
    assert one_by_one.losses == pytest.approx(trained[1].losses[:12], rel=1e-5)


def test_a_moved_run_resumes_and_skips_a_damaged_newest_checkpoint(trained, small_splits, tmp_path, capsys):
    out, outcome, _ = trained
    ckpt_dir = tmp_path / "ckpt_npu"
    shutil.copytree(out / "ckpt_npu", ckpt_dir)  # elsewhere: its state file must not matter
    finished, log = run_logged([f"--output_path={tmp_path}", *TRAINED], small_splits)
    assert f"resuming from {ckpt_dir / 'model.ckpt-240'} at step 240" in log
    assert "checkpoint is at global step 240 of 240: nothing left to train" in log
    assert finished.losses == [] and finished.ms_per_step is None
    assert "Final Performance ms/step : NA" in log
    record = json.loads((tmp_path / "result.json").read_text())
    assert [record[key] for key in ("steps", "ms_per_step", "images_per_sec", "final_loss")] == [0, None, None, None]
    # Same checkpoint, same float32 evaluation: the same accuracy.
    assert finished.accuracy == outcome.accuracy

    # What a kill during a save leaves: the newest checkpoint cut short, or TensorFlow's unfinished files of it
    # (which no rotation deletes: the run removes them).
    data = ckpt_dir / "model.ckpt-240.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    unfinished = [ckpt_dir / "model.ckpt-260.index.tempstate4417", ckpt_dir / f"model.ckpt-260.meta.tmp{'5c' * 16}"]
    for path in unfinished:
        path.write_bytes(b"cut short")
    capsys.readouterr()
    longer = [a for a in TRAINED if not a.startswith("--steps=")] + ["--steps=125", "--resume=True"]
    resumed, log = run_logged([f"--output_path={tmp_path}", *longer], small_splits)
    err = capsys.readouterr().err
    assert f"[Warning] skipping damaged checkpoint {ckpt_dir / 'model.ckpt-240'}: " in err
    assert f"[Warning] removed 2 partial file(s) of a checkpoint save cut short (18 bytes) from {ckpt_dir}: " in err
    assert not any(path.exists() for path in unfinished)
    assert f"resuming from {ckpt_dir / 'model.ckpt-200'} at step 200" in log
    assert re.findall(r"^epoch : 2----step : (\d+)-", log, re.M) == [str(s) for s in range(76, 126)]
    assert len(resumed.losses) == 50
    assert run_safety.numbered_checkpoints(str(ckpt_dir))[0][0] == 250


def test_ctrl_c_saves_then_the_run_resumes_from_it(small_mnist, tmp_path, capsys, monkeypatch):
    # SIGTERM -> 143 is tested through the launcher (test_launchers.py).
    signum, status = signal.SIGINT, 130

    class StopAtStep3(run_safety.StopSignals):
        def stop_if_requested(self, step, save):
            if step == 3:
                os.kill(os.getpid(), signum)  # the real handler is installed: it only records the request
            super().stop_if_requested(step, save)

    monkeypatch.setattr(run_safety, "StopSignals", StopAtStep3)
    argv = [f"--data_path={small_mnist}", f"--output_path={tmp_path}", "--validation_size=500", "--epochs=1",
            "--steps=5"]
    code, stdout, stderr = run_in_process(LeNet.main, argv, capsys)
    assert code == status
    saved = tmp_path / "ckpt_npu" / "model.ckpt-3"
    assert_one_line_error(code, stdout, stderr, f"[Error] stopped by {signum.name} at step 3; checkpoint "
                          f"{saved} saved, run again with --resume=True to continue")
    assert [n for n, _ in run_safety.numbered_checkpoints(str(tmp_path / "ckpt_npu"))] == [3, 0]
    assert re.findall(r"^epoch : 1----step : (\d+)-", stdout, re.M) == ["1", "2", "3"]

    monkeypatch.undo()
    monkeypatch.setenv("ZOO_PROGRESS_EVERY", "1e-9")  # a progress line after every step (the launchers' default: 30 s)
    code, stdout, stderr = run_in_process(LeNet.main, argv + ["--resume=True"], capsys)
    assert code == 0, stderr
    assert f"resuming from {saved} at step 3" in stdout
    assert re.findall(r"^epoch : 1----step : (\d+)-", stdout, re.M) == ["4", "5"]
    # Counted from the resumed step: the first update only starts the clock, the last is always printed.
    assert re.findall(r"^\[progress\] \S+ \S+ step (\d+)/5 .* loss \d+\.\d{4} images/sec [\d.]+ elapsed \S+ ETA ",
                      stdout, re.M) == ["5"]


def test_both_spellings_of_the_learning_rate_flag_reach_adam(small_splits, tmp_path):
    assert LeNet.parse_args(["--learing_rata=0.05"]).learning_rate == 0.05
    assert LeNet.parse_args(["--learning_rate=0.05"]).learning_rate == 0.05
    losses = {}
    for rate in ("0.001", "0.05"):
        outcome, _ = run_logged([f"--output_path={tmp_path / rate}", "--epochs=1", "--steps=2",
                                 f"--learning_rate={rate}", FLOAT32], small_splits)
        losses[rate] = outcome.losses
    # The first loss is before any update; the second shows the rate used.
    assert losses["0.001"][0] == losses["0.05"][0] and losses["0.001"][1] != losses["0.05"][1]


def test_a_checkpoint_of_the_original_port_loads_for_fine_tuning_and_freezing(tmp_path, capsys):
    # Written under the original LeNet.py's names (fully connected "weight", convolutions "weights"), with an
    # Adam slot beside them, as its one unnumbered mode.ckpt.
    shapes = {"layer_1/weights": [5, 5, 1, 6], "layer_1/bias": [6], "layer_2/weights": [5, 5, 6, 16],
              "layer_2/bias": [16], "fc_1/weight": [784, 120], "fc_1/bias": [120], "fc_2/weight": [120, 84],
              "fc_2/bias": [84], "fc_3/weight": [84, 10], "fc_3/bias": [10], "fc_1/weight/Adam": [784, 120]}
    rng = np.random.default_rng(5)
    values = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
    folder = tmp_path / "output" / "ckpt_npu"
    folder.mkdir(parents=True)
    with tf.Graph().as_default():
        saved = [tf.compat.v1.Variable(value, name=name) for name, value in values.items()]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(saved).save(sess, str(folder / "mode.ckpt"))

    with tf.Graph().as_default():
        lenet_model.inference(tf.compat.v1.placeholder(tf.float32, [None, 784]))
        # The README's value, also in the list form of its snippet: the fully connected layers stay new.
        source, loaded = lenet_train.restore_pretrained(str(folder), "['linear/']")
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            got = {v.op.name: sess.run(v) for v in lenet_model.model_variables()}
    assert source == str(folder / "mode.ckpt")
    assert loaded == ["layer_1/bias", "layer_1/weights", "layer_2/bias", "layer_2/weights"]
    for name in loaded:
        np.testing.assert_array_equal(got[name], values[name])
    for scope in ("fc_1", "fc_2", "fc_3"):
        assert not np.allclose(got[f"{scope}/weights"], values[f"{scope}/weight"])

    pb = tmp_path / "frozen.pb"
    code, _, stderr = run_in_process(LeNet_frozen_graph.main, [f"--ckpt_path={folder}", f"--output_path={pb}"], capsys)
    assert code == 0, stderr
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    constants = {node.name: tf.make_ndarray(node.attr["value"].tensor) for node in graph_def.node if node.op == "Const"}
    np.testing.assert_array_equal(constants["fc_3/weights"], values["fc_3/weight"])
    np.testing.assert_array_equal(constants["layer_2/weights"], values["layer_2/weights"])


def test_a_diverging_loss_stops_the_run_before_any_non_finite_save(small_mnist, tmp_path, capsys):
    # A checkpoint is attempted after every step, so the guard must come before each save.
    code, stdout, stderr = run_in_process(LeNet.main, [
        f"--data_path={small_mnist}", f"--output_path={tmp_path}", "--validation_size=500",
        "--learning_rate=1e38", "--epochs=1", "--steps=50", "--save_checkpoints_steps=1"], capsys)
    assert code == 1
    assert_one_line_error(code, stdout, stderr)
    error = next(line for line in stderr.splitlines() if line.startswith("[Error]"))
    match = re.fullmatch(r"\[Error\] (loss|weight_norm) is (nan|inf) at step (\d+); lower --learning_rate", error)
    assert match, error
    assert "Final Accuracy" not in stdout
    saved = run_safety.numbered_checkpoints(str(tmp_path / "ckpt_npu"))
    assert saved and all(number < int(match[3]) for number, _ in saved)
    for _, prefix in saved:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            assert np.all(np.isfinite(reader.get_tensor(name))), (prefix, name)


def test_frozen_graph_reproduces_the_training_accuracy(trained, small_mnist, tmp_path, capsys, monkeypatch):
    # Like with like: the frozen graph infers in float32 and so did the training run's evaluation. In a mixed
    # mode a CPU with native bf16 evaluates in bfloat16, a different number (0.852 vs 0.854 seen on AMX).
    pb, bins = tmp_path / "LeNet_frozen_graph.pb", tmp_path / "bins"
    # The original's flags: --output_dir is the .bin folder, --pre_process=True writes it from --data_dir.
    monkeypatch.setenv("ZOO_PROGRESS_EVERY", "1e-9")  # a progress line after every batch and every written image
    for main, argv in ((LeNet_frozen_graph.main, [f"--ckpt_path={trained[0] / 'ckpt_npu'}", f"--output_path={pb}"]),
                       (LeNet_online_inference.main, [f"--model_path={pb}", f"--data_dir={small_mnist}",
                                                      f"--output_dir={bins}", "--pre_process=True",
                                                      f"--result_dir={tmp_path / 'out'}", "--batchSize=64"])):
        code, stdout, stderr = run_in_process(main, argv, capsys)
        assert code == 0, stderr
    # The original's label files: 10 float64 values.
    assert (bins / "labels" / "input_0.bin").stat().st_size == 80
    assert re.search(r"^average infer time: [\d.]+ ms/img,FPS is [\d.]+$", stdout, re.M)
    # Preprocessing, then inference in batches of 64; a first update only starts the clock.
    progress = re.findall(r"^\[progress\] \S+ \S+ image (\d+)/500 \(\d+\.\d%\) (images/sec [\d.]+ )?elapsed ",
                          stdout, re.M)
    assert [(int(n), bool(speed)) for n, speed in progress] == (
        [(n, False) for n in range(2, 501)] + [(n, True) for n in [*range(128, 500, 64), 500]])
    lines = (tmp_path / "out" / "predictions.txt").read_text().splitlines()
    assert len(lines) == 500 and lines[0].startswith("input_0.bin ")

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    names = {node.name for node in graph_def.node}
    assert {"input_image", "input_label", "Mean_1", "predictions"} <= names
    assert not [n.op for n in graph_def.node if "Variable" in n.op]
    assert "Conv2D" in {node.op for node in graph_def.node}  # the original's convolutions
