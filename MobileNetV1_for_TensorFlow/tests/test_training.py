"""The entry points in this process on small synthetic TFRecords: train.py (step lines, checkpoints, result.json,
TensorBoard scalars, progress lines, resume, warm start, the NaN/overflow check, injected input), EMA evaluation
(its scalars, its accuracy in result.json), export, and one-line errors."""
import contextlib
import io
import json
import os
import re
import resource
import shutil

import numpy as np
import pytest
import tensorflow as tf

import contract
import eval_image_classifier_mobilenet
import export_inference_graph
import mobilenet_device
import run_safety
import train
from conftest import SMALL, call, injected_input, last_value, one_error_line, steps_logged


def train_args(data, model_dir, *extra):
    return [f"--dataset_dir={data}", f"--model_dir={model_dir}", "--num_train_samples=320", *SMALL, *extra]


def evaluate(data, checkpoint, eval_dir, *extra):
    return call(eval_image_classifier_mobilenet, f"--dataset_dir={data}", f"--checkpoint_path={checkpoint}",
                "--eval_image_size=32", "--num_classes=11", "--batch_size=50", f"--eval_dir={eval_dir}", *extra)


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    """One epoch (320 / 16 = 20 steps; --max_epoch alone sets the length, as in the original) with an EMA;
    checkpoints every epoch; a progress line after every step."""
    model_dir = tmp_path_factory.mktemp("trained")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_PROGRESS_EVERY", "0.0001")
        train.main(train_args(small_data, model_dir, "--max_epoch=1", "--moving_average_decay=0.9999"))
    return model_dir / "0", stdout.getvalue()


def test_start_up_line_step_lines_and_checkpoints(trained):
    ckpt_dir, stdout = trained
    # The default mode as the zoo table gives it on this machine (tests/test_device.py checks the table).
    assert stdout.splitlines()[0].startswith(mobilenet_device.precision("allow_mix_precision").describe())
    assert steps_logged(stdout) == [5, 10, 15, 20]
    line = [l for l in stdout.splitlines() if l.startswith("step:20 ")][0]
    fields = dict(f.rstrip(",").split(":", 1) for f in line.split())
    assert set(fields) == {"step", "epoch", "ips", "loss", "total_loss", "lr"}
    assert float(fields["total_loss"]) > float(fields["loss"]) > 0  # + L2 regularisation
    assert float(fields["epoch"]) == pytest.approx(1.0)
    assert float(fields["lr"]) == pytest.approx(0.05)  # the end of the one-epoch warm-up
    assert (ckpt_dir / "train_log.log").read_text().splitlines()[-1].rstrip() == line.rstrip()
    assert tf.train.latest_checkpoint(str(ckpt_dir)).endswith("model.ckpt-20")
    assert stdout.rstrip().endswith(f"last checkpoint: {ckpt_dir}/model.ckpt-20")
    progress = [l for l in stdout.splitlines() if l.startswith("[progress] ")]
    assert re.search(r" step 20/20 \(100\.0%\) loss \d+\.\d{4} images/sec \d+\.\d elapsed ", progress[-1]), progress


def test_result_record_and_training_scalars(trained):
    """result.json (train.py alone: in the rank's folder) times the steps after the first 10 and ends with the
    last logged loss; the TensorBoard run train/ holds the logged values at the logging steps."""
    ckpt_dir, stdout = trained
    record = json.loads((ckpt_dir / "result.json").read_text())
    assert (record["launcher"], record["device"], record["precision"], record["batch_size"], record["rank_size"],
            record["steps"], record["warmup_steps"], record["global_step"]) == (
               "train.py", "CPU", mobilenet_device.precision("allow_mix_precision").dtype, 16, 1, 20, 10, 20)
    assert record["images_per_sec"] == pytest.approx(16 * 1000 / record["ms_per_step"])
    last_loss = [l for l in stdout.splitlines() if l.startswith("step:20 ")][0].split()[3]
    assert last_loss == f"loss:{record['final_loss']:.6f}"
    assert record["accuracy_name"] == "top1" and record["accuracy"] is None  # the evaluation's to add
    scalars = contract.read_scalars(str(ckpt_dir))["train"]
    assert set(scalars) == {"loss", "total_loss", "learning_rate", "train_top1", "images_per_sec"}
    assert [step for step, _ in scalars["loss"]] == [5, 10, 15, 20]
    assert scalars["loss"][-1][1] == pytest.approx(record["final_loss"])
    assert scalars["loss"][0][1] != scalars["loss"][-1][1]
    rates = [value for _, value in scalars["learning_rate"]]
    assert rates == sorted(rates) and rates[0] < rates[-1]  # the one-epoch warm-up
    assert all(t > l for (_, t), (_, l) in zip(scalars["total_loss"], scalars["loss"]))  # + weight decay
    assert all(0 <= value <= 1 for _, value in scalars["train_top1"])
    assert all(value > 0 for _, value in scalars["images_per_sec"])


def test_an_evaluation_that_finds_no_room_is_one_line(trained, small_data, tmp_path):
    """A file size limit (EFBIG: the same code path as a full disk's ENOSPC) below the size of the evaluation's
    summaries and eval_results.txt."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))
    try:
        result = evaluate(small_data, trained[0] / "model.ckpt-20", tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert "Traceback" not in result[1] + result[2]
    assert re.fullmatch(rf"\[Error\] File too large writing {tmp_path}/(events\.out\.tfevents\.\S+|eval_results\.txt): "
                        r"raise the file size limit \(ulimit -f\), and run again", one_error_line(*result))


def test_ema_evaluation_differs_from_raw(trained, small_data, tmp_path, monkeypatch):
    """Also: each evaluation's scalars at its checkpoint's step, progress lines per batch, and --result_dir
    puts the last checkpoint's top-1 into a training run's result.json."""
    ckpt_dir, _ = trained
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(ckpt_dir / "result.json", run_dir)
    prefix = str(ckpt_dir / "model.ckpt-20")
    reader = tf.train.load_checkpoint(prefix)
    name = "MobilenetV1/Logits/Conv2d_1c_1x1/weights"
    assert not np.allclose(reader.get_tensor(name), reader.get_tensor(name + "/ExponentialMovingAverage"))
    status, raw, _ = evaluate(small_data, prefix, tmp_path)
    assert status == 0
    # A folder: every checkpoint in it (0 and 20), oldest first.
    monkeypatch.setenv("ZOO_PROGRESS_EVERY", "0.0001")
    status, ema, _ = evaluate(small_data, ckpt_dir, tmp_path, "--moving_average_decay=0.9999",
                              f"--result_dir={run_dir}")
    assert status == 0
    assert re.search(r"^\[progress\] .* batch 2/2 \(100\.0%\) loss \d+\.\d{4} images/sec ", ema, re.M), ema
    assert [l.split()[3] for l in ema.splitlines() if l.startswith("checkpoint:")] == ["0", "20"]
    assert "weights: raw" in raw and "weights: EMA" in ema
    assert last_value(raw, "loss: ") != pytest.approx(last_value(ema, "loss: "), rel=1e-4)
    for out in (raw, ema):
        assert last_value(out, "acc: ") == last_value(out, "top1: ")
        assert "images: 100" in out  # the whole validation split, last batch included
    assert len((tmp_path / "eval_results.txt").read_text().splitlines()) == 3 * 5
    record = json.loads((run_dir / "result.json").read_text())
    assert record["accuracy"] == pytest.approx(last_value(ema, "top1: "), abs=1e-6)
    assert record["top5"] == pytest.approx(last_value(ema, "top5: "), abs=1e-6)
    assert record["steps"] == 20  # the training's record, completed
    scalars = contract.read_scalars(str(tmp_path))["."]
    assert set(scalars) == {"top1", "top5", "loss"}
    assert sorted(step for step, _ in scalars["top1"]) == [0, 20, 20]  # raw at 20, then EMA at 0 and 20
    assert scalars["loss"][-1][1] == pytest.approx(last_value(ema, "loss: "), abs=1e-6)


def test_export_saved_model_and_frozen_graph(trained, tmp_path):
    """Over an earlier export, and what a killed one left beside it: each replaced whole, nothing left."""
    ckpt_dir, _ = trained
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "saved_model" / "earlier").write_text("x")
    (tmp_path / "saved_model.partial").mkdir()
    (tmp_path / "frozen_graph.pb").write_bytes(b"earlier")
    (tmp_path / "frozen_graph.pb.partial").write_bytes(b"cut short")
    status, _, stderr = call(export_inference_graph, f"--checkpoint_path={ckpt_dir}", f"--output_dir={tmp_path}",
                             "--num_classes=11", "--image_size=32", "--moving_average_decay=0.9999")
    assert status == 0, stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["frozen_graph.pb", "saved_model"]
    assert not (tmp_path / "saved_model" / "earlier").exists()
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((tmp_path / "frozen_graph.pb").read_bytes())
    assert not any(n.op in ("VariableV2", "VarHandleOp") for n in graph_def.node)
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            frozen = session.run("MobilenetV1/Predictions/Reshape_1:0", {"input:0": images})
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    served = loaded.signatures["serving_default"](input=tf.constant(images))["predictions"].numpy()
    assert frozen.shape == (3, 11)
    np.testing.assert_allclose(frozen.sum(axis=1), 1.0, rtol=1e-5)
    # Both float32 graphs of the same weights on the same CPU: only the op order may differ.
    np.testing.assert_allclose(frozen, served, rtol=1e-4, atol=1e-6)


def test_moved_folder_resumes_past_a_damaged_checkpoint_then_warm_start(trained, tmp_path, capsys):
    """The trained folder copied elsewhere, plus what a kill during the save of step 21 leaves (its data file
    cut short) and TensorFlow's unfinished file of a save of step 22, which the run removes (no rotation would):
    the run skips step 21 with a warning, resumes from step 20 and keeps two checkpoints even with
    --keep_checkpoint_max=1 (with --over_dump: the inf/NaN check off Ascend). Then a fresh run warm-starts
    from the trained checkpoint without its logits."""
    parser = train.build_parser()
    folder = tmp_path / "0"
    shutil.copytree(trained[0], folder)
    for path in folder.glob("model.ckpt-20.*"):
        damaged = folder / path.name.replace("-20.", "-21.")
        damaged.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2] if ".data-" in path.name
                            else path.read_bytes())
    unfinished = folder / "model.ckpt-22.data-00000-of-00001.tempstate90210"
    unfinished.write_bytes(b"cut short")
    resumed = parser.parse_args(train_args("unused", tmp_path, "--max_train_steps=24", "--moving_average_decay=0.9999",
                                           "--over_dump=True", "--keep_checkpoint_max=1"))
    assert train.run(resumed, environ={}, input_fn=injected_input()) == f"{folder}/model.ckpt-24"
    out, err = capsys.readouterr()
    assert f"[Warning] skipping damaged checkpoint {folder}/model.ckpt-21: " in err
    assert not unfinished.exists() and f"save cut short (9 bytes) from {folder}: {unfinished.name}" in err
    assert f"resuming from {folder}/model.ckpt-20 at step 20" in out and steps_logged(out) == []
    # Two kept (a kill during a save must leave one that loads); the damaged one is not counted among them
    # (the run overwrites it when it gets there).
    assert sorted(n for n, _ in run_safety.numbered_checkpoints(str(folder))) == [20, 21, 24]
    assert "model.ckpt-24" in (folder / "checkpoint").read_text() and str(tmp_path) not in (
        folder / "checkpoint").read_text()  # relative paths: the folder can move again

    ckpt_dir, _ = trained
    warm = parser.parse_args(train_args("unused", tmp_path / "warm", "--max_train_steps=1", "--num_classes=7",
                                        f"--restore_path={ckpt_dir}", "--restore_exclude=MobilenetV1/Logits"))
    last = train.run(warm, environ={}, input_fn=injected_input(num_classes=7))
    out = capsys.readouterr().out
    loaded = re.search(rf"warm start from {ckpt_dir}/model.ckpt-20: loaded (\d+) of the model's (\d+) variables "
                       r"\(excluded scopes: \['MobilenetV1/Logits'\]\)", out)
    assert loaded and int(loaded[1]) == int(loaded[2]) - 2, out  # all but the logits' weights and biases
    name = "MobilenetV1/Conv2d_13_pointwise/weights"
    before, after = tf.train.load_checkpoint(str(ckpt_dir)), tf.train.load_checkpoint(last)
    # One warm-up step (lr 0.05 / 20) moves the restored weights a little; random ones would be far off.
    np.testing.assert_allclose(after.get_tensor(name), before.get_tensor(name), atol=0.05)


def test_bad_input_gives_one_line_errors(small_data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(*call(train, *train_args(empty, tmp_path / "m1", "--max_train_steps=2")))
    assert "no TFRecord files matching train-*" in line
    line = one_error_line(*call(train, *train_args(small_data, tmp_path / "m2", "--max_train_steps=2",
                                                   "--num_classes=5")))
    assert "label outside num_classes" in line and "not in 0..4" in line
    assert "--batch_size" in one_error_line(*call(train, *train_args(small_data, tmp_path, "--batch_size=0",
                                                                     "--max_train_steps=2")))
    assert "not both" in one_error_line(*call(train, *train_args(small_data, tmp_path, "--max_epoch=1",
                                                                 "--max_train_steps=2")))
    status, _, stderr = call(train, *train_args(small_data, tmp_path, "--max_train_steps=2", "--model_name=resnet"))
    assert "invalid choice: 'resnet'" in one_error_line(status, "", stderr)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RANK_SIZE", "2")
        line = one_error_line(*call(train, *train_args(small_data, tmp_path, "--max_train_steps=2")))
    assert line == ("[Error] RANK_SIZE: several workers off Ascend need TF_CONFIG (a tf.distribute cluster); "
                    "start them with test/train_*_8p.sh, or run with RANK_SIZE=1")
    missing = evaluate(small_data, tmp_path / "nothing", tmp_path)
    assert "--checkpoint_path" in one_error_line(*missing)
