"""Never lose a run (quick tier, in-process): Ctrl-C saves and stops, a moved folder resumes past a damaged
checkpoint, one run per folder, a NaN loss or NaN weights write nothing, a checkpoint of another model is one
line in every mode, unwritable folders and undecodable images are named. The launcher-level SIGTERM -> 143 ->
--resume=True run is in test_training.py."""
import os
import re
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf

import reporting
import run_safety
import train_market1501
from conftest import SHORT_ARGS, SHORT_STEPS, call, one_error_line


def numbers(folder):
    return [number for number, _ in run_safety.numbered_checkpoints(str(folder))]


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("[Error]")]


def test_ctrl_c_saves_then_a_moved_folder_resumes_past_a_damaged_checkpoint(small_market, tmp_path, monkeypatch):
    step_done = reporting.StepReporter.step_done

    def interrupt_at_step_2(self, step, *args):
        step_done(self, step, *args)
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    monkeypatch.setattr(reporting.StepReporter, "step_done", interrupt_at_step_2)
    old = tmp_path / "old"
    args = [f"--dataset_dir={small_market}", "--run_id=run", "--log_every=1", *SHORT_ARGS]
    status, out, err = call(train_market1501, *args, f"--log_dir={old}", "--number_of_steps=50")
    monkeypatch.undo()
    assert status == 130, err
    assert error_lines(err) == [f"[Error] stopped by SIGINT at step 2; checkpoint {old}/run/model.ckpt-2 saved, "
                                "run again with --resume=True to continue"], err
    assert numbers(old / "run") == [2, 0]  # step 0 was saved right after initialisation
    assert "model_checkpoint_path: \"model.ckpt-2\"" in (old / "run" / "checkpoint").read_text()
    events = [n for n in os.listdir(old / "run") if ".tfevents." in n]
    steps = [e.step for e in tf.compat.v1.train.summary_iterator(str(old / "run" / events[0])) if e.summary.value]
    assert steps == [1, 2]  # the writer was closed: the events file reads to its end

    # Moved elsewhere, with the state file of a version that wrote absolute paths, a newer checkpoint that a
    # kill during its save left damaged, and the unfinished files of a save cut short sooner (removed).
    moved = tmp_path / "moved"
    shutil.move(str(old), str(moved))
    (moved / "run" / "checkpoint").write_text(f'model_checkpoint_path: "{old}/run/model.ckpt-2"\n')
    for part in (".index", ".data-00000-of-00001"):
        shutil.copy(moved / "run" / f"model.ckpt-2{part}", moved / "run" / f"model.ckpt-9{part}")
    data = moved / "run" / "model.ckpt-9.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    unfinished = [moved / "run" / "model.ckpt-11.data-00000-of-00001.tempstate777",
                  moved / "run" / f"checkpoint.tmp{'9e' * 16}"]
    for path in unfinished:
        path.write_bytes(b"cut short")
    status, out, err = call(train_market1501, *args, f"--log_dir={moved}", "--number_of_steps=3")
    assert status == 0, err
    assert f"[Warning] skipping damaged checkpoint {moved}/run/model.ckpt-9: " in err
    assert not any(path.exists() for path in unfinished) and "removed 2 partial file(s) of a checkpoint save" in err
    assert f"resuming from {moved}/run/model.ckpt-2 at step 2\n" in out
    assert [int(s) for s in re.findall(r"^step (\d+), loss ", out, re.M)] == [3]
    assert 3 in numbers(moved / "run")


def test_a_second_run_on_the_same_folder_is_refused(short_run, small_market, tmp_path):
    run_dir = shutil.copytree(short_run[0] / "short", tmp_path / "short")
    before = sorted(os.listdir(run_dir))
    with run_safety.FolderLock(str(run_dir)):
        one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", f"--log_dir={tmp_path}",
                             "--run_id=short", *SHORT_ARGS), f"{run_dir} is in use by another run (pid={os.getpid()}")
    assert sorted(os.listdir(run_dir)) == before


def test_nan_loss_or_weights_write_nothing(short_run, small_market, tmp_path, monkeypatch):
    args = [f"--dataset_dir={small_market}", f"--log_dir={tmp_path}", "--batch_size=16",
            "--precision_mode=must_keep_origin_dtype"]
    # Adam moves every weight by about the learning rate in the first step: 1e30 overflows the next forward.
    status, out, err = call(train_market1501, *args, "--run_id=nan", "--number_of_steps=5", "--learning_rate=1e30")
    assert status == 1
    assert re.fullmatch(r"\[Error\] loss is (nan|inf) at step [2-5]; lower --learning_rate\n", err), err
    assert "Final Performance" not in out
    assert numbers(tmp_path / "nan") == [0]
    # A float32 learning rate of inf: step 1's loss (computed before its update) is finite, its weights not.
    status, out, err = call(train_market1501, *args, "--run_id=inf", "--number_of_steps=1", "--learning_rate=1e39")
    assert status == 1
    assert re.fullmatch(r"\[Error\] \S+ holds NaN or Inf after step 1; lower --learning_rate "
                        r"\(no checkpoint written\)\n", err), err
    assert numbers(tmp_path / "inf") == [0]

    # A checkpoint holding NaN weights (written elsewhere) is neither frozen nor warm-started from.
    reader = tf.train.load_checkpoint(str(short_run[0] / "short" / f"model.ckpt-{SHORT_STEPS}"))
    (tmp_path / "poisoned").mkdir()
    with tf.Graph().as_default():
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            tf.compat.v1.Variable(np.full_like(value, np.nan) if name == "fc1/weights" else value, name=name)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            poisoned = tf.compat.v1.train.Saver().save(sess, str(tmp_path / "poisoned" / "model.ckpt-4"))
    monkeypatch.chdir(tmp_path)
    one_error_line(*call(train_market1501, "--mode=freeze", f"--restore_path={poisoned}"),
                   f"{poisoned}: fc1/weights holds NaN or Inf values; nothing written")
    assert not (tmp_path / "market1501.pb").exists()


@pytest.fixture(scope="module")
def foreign_checkpoint(tmp_path_factory):
    """A checkpoint of another model (a LeNet-like pair of variables) as model.ckpt-7 in its own folder."""
    folder = tmp_path_factory.mktemp("foreign") / "run"
    with tf.Graph().as_default():
        tf.compat.v1.Variable(tf.zeros([5, 5, 1, 6]), name="conv1/weights")
        tf.compat.v1.train.get_or_create_global_step()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return tf.compat.v1.train.Saver().save(sess, str(folder / "model.ckpt"), global_step=7)


def test_a_checkpoint_of_another_model_is_one_line_in_every_mode(foreign_checkpoint, small_market, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = os.path.dirname(foreign_checkpoint)
    data = f"--dataset_dir={small_market}"
    restore = f"--restore_path={foreign_checkpoint}"
    network = rf"\[Error\] {re.escape(foreign_checkpoint)} is not a checkpoint of this network: it holds 0 of its " \
              r"\d+ variables; first missing: conv1_1/\S+"
    cases = {
        "warm start": [data, f"--log_dir={tmp_path}", "--run_id=warm", f"--warm_start_path={foreign_checkpoint}",
                       *SHORT_ARGS],
        "eval": ["--mode=eval", "--eval_once", data, f"--log_dir={os.path.dirname(folder)}", "--run_id=run",
                 f"--eval_log_dir={tmp_path}"],
        "export": ["--mode=export", data, restore, f"--sdk_dir={tmp_path / 'sdk'}"],
        "evaluate_test": ["--mode=evaluate_test", data, restore],
        "finalize": ["--mode=finalize", restore],
        "freeze": ["--mode=freeze", restore],
    }
    for mode, argv in cases.items():
        status, _, err = call(train_market1501, *argv)
        assert status == 1 and re.fullmatch(network + "\n", err) and len(err) < 320, (mode, err)
    # Resuming a run folder that holds it, or --restore_path: every variable of the training graph is looked for.
    run = rf"\[Error\] {re.escape(foreign_checkpoint)} is not a checkpoint of this training run: it holds 1 of its " \
          r"\d+ variables; first missing: \S+"
    status, _, err = call(train_market1501, data, f"--log_dir={os.path.dirname(folder)}", "--run_id=run",
                          *SHORT_ARGS)
    assert status == 1 and re.fullmatch(run + "\n", err), err
    status, _, err = call(train_market1501, data, f"--log_dir={tmp_path}", "--run_id=restored", restore, *SHORT_ARGS)
    assert status == 1 and re.fullmatch(run + r" \(--warm_start_path takes its network only\)\n", err), err
    assert not {"market1501.pb", "market1501.ckpt.index"} & set(os.listdir(tmp_path))
    assert numbers(folder) == [7]


def test_unwritable_folders_are_one_line(short_run, small_market, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    data, restore = f"--dataset_dir={small_market}", f"--restore_path={short_run[0] / 'short'}"
    one_error_line(*call(train_market1501, data, f"--log_dir={blocker}", "--run_id=run", *SHORT_ARGS),
                   f"--log_dir={blocker}/run: cannot write there: ")
    one_error_line(*call(train_market1501, data, "--mode=eval", "--eval_once", f"--log_dir={short_run[0]}",
                         "--run_id=short", f"--eval_log_dir={blocker}"),
                   f"--eval_log_dir={blocker}/short: cannot write there: ")
    one_error_line(*call(train_market1501, data, "--mode=export", restore, f"--sdk_dir={blocker}/sdk"),
                   f"--sdk_dir={blocker}/sdk: cannot write there: ")


def test_an_undecodable_jpeg_is_named(small_market, tmp_path):
    """Size header and end-of-image marker intact (the checks before training pass), a Huffman table whose
    code counts add up to more than 256 (the decoder's 'bogus table'): tf.data fails, the file is named."""
    market = shutil.copytree(small_market, tmp_path / "market")
    folder = market / "bounding_box_train"
    for name in os.listdir(folder):
        content = bytearray((folder / name).read_bytes())
        counts = content.index(b"\xff\xc4") + 5  # marker, 2 length bytes, table class/id, then 16 counts
        content[counts:counts + 16] = b"\xff" * 16
        (folder / name).write_bytes(bytes(content))
    status, _, err = call(train_market1501, f"--dataset_dir={market}", f"--log_dir={tmp_path}", "--run_id=run",
                          "--number_of_steps=2", *SHORT_ARGS)
    assert status == 1 and re.fullmatch(rf"\[Error\] {folder}/\d{{4}}_c\ds\d_\d{{6}}_\d\d\.jpg: not a decodable "
                                        r"JPEG image \(.+\)\n", err), err
