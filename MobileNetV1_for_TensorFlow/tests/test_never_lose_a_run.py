"""Never lose a run, in this process on small injected or synthetic data: a NaN/Inf total loss stops the run
before any checkpoint of it; the output folder is locked and must be writable; a checkpoint of another model
(resume, warm start, eval, export), a damaged checkpoint and a damaged or foreign TFRecord are one line. (Resume
from a moved folder past a damaged checkpoint: test_training.py; SIGTERM through the launcher: test_launchers.py.)
"""
import glob
import os
import re
import resource
import shutil
import types

import numpy as np
import tensorflow as tf

import eval_image_classifier_mobilenet
import export_inference_graph
import run_safety
import train
from conftest import SMALL, call, injected_input, one_error_line
from dataloader import data_provider


def args_for(model_dir, *extra, data="unused"):
    return [f"--dataset_dir={data}", f"--model_dir={model_dir}", "--num_train_samples=320", *SMALL, *extra]


def call_train(argv, input_fn):
    """train.run on injected input as its command line would end: (status, stdout, stderr)."""
    entry = types.SimpleNamespace(__name__="train", main=lambda a: train.run(
        train.build_parser().parse_args(a), environ={}, input_fn=input_fn) and 0)
    return call(entry, *argv)


def saved_steps(folder):
    return sorted(number for number, _ in run_safety.numbered_checkpoints(str(folder)))


def test_nan_total_loss_stops_the_run_before_any_checkpoint_of_it(tmp_path):
    """A learning rate that blows the weights up: the run ends at the first non-finite total loss, exit 1, and
    every checkpoint left (one per 2 steps here) holds finite weights only."""
    status, out, err = call_train(args_for(tmp_path, "--max_train_steps=200", "--num_train_samples=32",
                                           "--learning_rate=1e12", "--learning_rate_decay_type=fixed",
                                           "--warmup_epochs=0"), injected_input())
    line = one_error_line(status, out, err)
    match = re.fullmatch(r"\[Error\] (total_loss is (nan|inf)|the weights are not finite) at step (\d+); lower "
                         r"--learning_rate", line)
    assert status == 1 and match, line
    steps = saved_steps(tmp_path / "0")
    assert steps and max(steps) < int(match.group(3))
    for step in steps:
        reader = tf.train.load_checkpoint(str(tmp_path / "0" / f"model.ckpt-{step}"))
        for name in reader.get_variable_to_shape_map():
            assert np.isfinite(reader.get_tensor(name)).all(), (step, name)


def test_a_save_over_the_file_size_limit_is_one_line_not_a_finished_run(tmp_path):
    """TensorFlow raises OutOfRangeError for a file over the size limit (EFBIG), which the monitored session
    took for the end of the input: the run ended with exit 0, no step and the save's partial file left."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, hard))
    try:
        result = call_train(args_for(tmp_path, "--max_train_steps=4"), injected_input())
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert one_error_line(*result) == f"[Error] File too large writing {tmp_path}/0/model.ckpt-0.data-00000-of-" \
        "00001: raise the file size limit (ulimit -f), and run again (no checkpoint was written yet)"
    assert result[0] == 1 and sorted(os.listdir(tmp_path / "0")) == [run_safety.LOCK_NAME, "train"]  # summaries


def foreign_checkpoint(prefix):
    """A checkpoint of another model (a global step and one weight), as cosine_metric_learning's would be."""
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    with tf.Graph().as_default():
        tf.compat.v1.train.get_or_create_global_step()
        tf.compat.v1.get_variable("network/conv1_1/weights", [3, 3, 3, 32])
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return tf.compat.v1.train.Saver().save(session, str(prefix), global_step=5)


def test_locked_unwritable_or_foreign_folders_are_one_line_and_left_as_they_were(tmp_path):
    foreign = foreign_checkpoint(tmp_path / "other" / "0" / "model.ckpt")
    before = sorted(os.listdir(tmp_path / "other" / "0"))
    line = one_error_line(*call_train(args_for(tmp_path / "other", "--max_train_steps=2"), injected_input()))
    assert re.fullmatch(rf"\[Error\] {foreign} is not a checkpoint of this model: it holds 1 of its \d+ variables; "
                        r"first missing: MobilenetV1/\S+", line), line
    assert len(line) <= 310

    with run_safety.FolderLock(str(tmp_path / "other" / "0")):
        line = one_error_line(*call_train(args_for(tmp_path / "other", "--max_train_steps=2"), injected_input()))
    assert f"{tmp_path}/other/0 is in use by another run (pid={os.getpid()} " in line
    assert sorted(set(os.listdir(tmp_path / "other" / "0")) - {run_safety.LOCK_NAME}) == before

    (tmp_path / "file").write_text("not a folder")
    line = one_error_line(*call_train(args_for(tmp_path / "file", "--max_train_steps=2"), injected_input()))
    assert line == f"[Error] --model_dir={tmp_path}/file/0: cannot write there: Not a directory"

    # A warm start must load every model variable it does not exclude: from another model, nothing would be.
    line = one_error_line(*call_train(args_for(tmp_path / "warm", "--max_train_steps=2", f"--restore_path={foreign}",
                                               "--restore_exclude=MobilenetV1/Logits"), injected_input()))
    assert re.fullmatch(rf"\[Error\] {foreign} is not a checkpoint of this model: it holds 0 of its \d+ variables; "
                        r"first missing: MobilenetV1/Conv2d_0/\S+", line), line
    assert saved_steps(tmp_path / "warm" / "0") == []


def test_eval_and_export_of_a_foreign_or_damaged_checkpoint_are_one_line(small_data, tmp_path):
    foreign = foreign_checkpoint(tmp_path / "other" / "model.ckpt")
    common = ["--num_classes=11", f"--checkpoint_path={foreign}"]
    evaluated = call(eval_image_classifier_mobilenet, *common, f"--dataset_dir={small_data}", "--eval_image_size=32",
                     f"--eval_dir={tmp_path / 'eval'}", "--moving_average_decay=0.9999")
    assert re.fullmatch(rf"\[Error\] {foreign} is not a checkpoint of this model with --moving_average_decay \(EMA "
                        r"weights\): it holds 0 of its \d+ variables; first missing: MobilenetV1/\S+/"
                        r"ExponentialMovingAverage", one_error_line(*evaluated))
    exported = call(export_inference_graph, *common, "--image_size=32", f"--output_dir={tmp_path / 'export'}")
    assert f"[Error] {foreign} is not a checkpoint of this model: it holds 0 of its" in one_error_line(*exported)

    data, = glob.glob(f"{foreign}.data-*")
    os.truncate(data, 100)
    exported = call(export_inference_graph, *common, "--image_size=32", f"--output_dir={tmp_path / 'export'}")
    assert one_error_line(*exported).startswith(f"[Error] --checkpoint_path={foreign}: damaged checkpoint: ")
    assert not (tmp_path / "export" / "frozen_graph.pb").exists()


def test_damaged_or_foreign_tfrecords_name_the_file_and_record(small_data, tmp_path):
    def copy_of(name):
        folder = tmp_path / name
        folder.mkdir()
        for path in glob.glob(os.path.join(small_data, "train-*")):
            shutil.copy(path, folder)
        return folder

    def record(**features):
        example = tf.train.Example(features=tf.train.Features(feature={
            key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value])) for key, value in features.items()}))
        with tf.io.TFRecordWriter(str(tmp_path / "one.tfrecord")) as writer:
            writer.write(example.SerializeToString())
        return (tmp_path / "one.tfrecord").read_bytes()

    # One flipped byte in the first record: found before anything is written; in the middle of a file: the
    # error tf.data raises while training is traced to its file and record.
    flipped = copy_of("flipped") / "train-00002-of-00004"
    data = bytearray(flipped.read_bytes())
    data[100] ^= 0xFF
    flipped.write_bytes(bytes(data))
    line = one_error_line(*call(train, *args_for(tmp_path / "m1", "--max_train_steps=50", data=flipped.parent)))
    assert line.startswith(f"[Error] corrupt TFRecord {flipped}: record 0: "), line
    assert not (tmp_path / "m1").exists()
    data[100] ^= 0xFF
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    files = sorted(glob.glob(str(flipped.parent / "train-*")))
    data_provider.check_records(files)
    error = data_provider.diagnose(tf.errors.DataLossError(None, None, "corrupted record at 12345"), files)
    assert re.fullmatch(rf"corrupt TFRecord {flipped}: record [1-9]\d*: .+", str(error)), error

    other = tmp_path / "other" / "train-00000-of-00001"
    other.parent.mkdir()
    other.write_bytes(record(**{"image/raw": b"\0" * 12}) * 3)
    line = one_error_line(*call(train, *args_for(tmp_path / "m2", "--max_train_steps=50", data=other.parent)))
    assert line == f"[Error] not a slim ImageNet record: missing feature image/encoded in {other} (record 0)"
    assert not (tmp_path / "m2").exists()  # checked before anything is written

    # A label-less record in the middle of a file passes the check of first records: the parse error names it.
    unlabelled = copy_of("unlabelled") / "train-00001-of-00004"
    unlabelled.write_bytes(unlabelled.read_bytes() + record(**{"image/encoded": b"\xff\xd8"}))
    line = one_error_line(*call(train, *args_for(tmp_path / "m3", "--max_train_steps=50", data=unlabelled.parent)))
    assert line == f"[Error] not a slim ImageNet record: missing feature image/class/label in {unlabelled} (record 80)"
