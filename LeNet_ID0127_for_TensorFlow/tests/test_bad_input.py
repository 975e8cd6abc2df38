"""User mistakes reach the user as one '[Error] ...' line naming the file or flag, with a non-zero exit.

The entry scripts' mains run in-process through lenet_cli.run, as their __main__ does; the slow tests run
the real command lines and launchers once each, where a traceback or TensorFlow's start-up noise would show.
"""
import gzip
import shutil
import struct

import pytest

import LeNet
import LeNet_frozen_graph
import LeNet_online_inference
import LeNet_preprocess
from conftest import MODEL_DIR, assert_one_line_error, run, run_in_process, run_python

SMALL = ["--validation_size=500", "--epochs=1", "--steps=2"]


@pytest.fixture
def broken(small_mnist, tmp_path):
    target = tmp_path / "mnist"
    shutil.copytree(small_mnist, target)
    return target


def train(data_path, tmp_path, capsys, *flags):
    return run_in_process(LeNet.main, [f"--data_path={data_path}", f"--output_path={tmp_path}/out", *flags], capsys)


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    result = train(tmp_path / "empty", tmp_path, capsys, *SMALL)
    assert_one_line_error(*result, str(tmp_path / "empty"), "missing train-images-idx3-ubyte.gz")


def test_missing_folder(tmp_path, capsys):
    assert_one_line_error(*train(tmp_path / "nope", tmp_path, capsys), "--data_path", "folder not found")


def test_wrong_magic_number(broken, tmp_path, capsys):
    path = broken / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path) as handle:
        data = handle.read()
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">I", 2049) + data[4:])
    result = train(broken, tmp_path, capsys, *SMALL)
    assert_one_line_error(*result, "t10k-images-idx3-ubyte.gz", "bad magic number 2049")


def test_truncated_gzip(broken, tmp_path, capsys):
    path = broken / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    assert_one_line_error(*train(broken, tmp_path, capsys, *SMALL), "train-images-idx3-ubyte.gz", "truncated")


def test_count_mismatch(broken, tmp_path, capsys):
    with gzip.open(broken / "train-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">II", 2049, 1999) + bytes(1999))
    assert_one_line_error(*train(broken, tmp_path, capsys, *SMALL), "2000 images", "1999 labels")


@pytest.mark.parametrize("flag, fragment", [
    ("--batch_size=abc", "argument --batch_size: invalid positive int value: 'abc'"),
    ("--batch_size=0", "argument --batch_size: must be a positive integer"),
    ("--learing_rata=fast", "argument --learing_rata/--learning_rate"),
    ("--precision_mode=fp8", "argument --precision_mode: invalid choice: 'fp8'"),
    ("--validation_size=-1", "argument --validation_size: must be >= 0"),
])
def test_bad_flag_values(flag, fragment, small_mnist, tmp_path, capsys):
    code, stdout, stderr = train(small_mnist, tmp_path, capsys, flag)
    assert code == 2
    assert_one_line_error(code, stdout, stderr, fragment)


def test_restore_path_without_checkpoint(small_mnist, tmp_path, capsys):
    result = train(small_mnist, tmp_path, capsys, *SMALL, f"--restore_path={tmp_path}")
    assert_one_line_error(*result, "--restore_path", "no checkpoint found")


def test_freeze_without_checkpoint(tmp_path, capsys):
    result = run_in_process(LeNet_frozen_graph.main, [f"--ckpt_path={tmp_path}", f"--output_path={tmp_path}/x.pb"],
                            capsys)
    assert_one_line_error(*result, "--ckpt_path", "no checkpoint found")


def test_inference_with_a_file_that_is_no_graph(tmp_path, capsys):
    (tmp_path / "x.pb").write_bytes(b"not a graph")
    result = run_in_process(LeNet_online_inference.main, [f"--model_path={tmp_path}/x.pb", f"--data_dir={tmp_path}"],
                            capsys)
    assert_one_line_error(*result, "--model_path", "not a GraphDef")


def test_preprocess_without_test_files(tmp_path, capsys):
    result = run_in_process(LeNet_preprocess.main, [f"--data_path={tmp_path}", f"--output_path={tmp_path}/b"], capsys)
    assert_one_line_error(*result, "missing t10k-images-idx3-ubyte.gz")


@pytest.mark.slow
@pytest.mark.parametrize("script, argv, fragments", [
    ("LeNet.py", ["--data_path={tmp}/nope"], ["--data_path", "folder not found"]),
    ("LeNet_frozen_graph.py", ["--ckpt_path={tmp}", "--output_path={tmp}/x.pb"], ["--ckpt_path"]),
])
def test_command_line_prints_one_line_and_no_traceback(script, argv, fragments, tmp_path):
    proc = run_python(MODEL_DIR, script, *(arg.format(tmp=tmp_path) for arg in argv))
    assert proc.returncode == 1
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, *fragments)


@pytest.mark.slow
def test_launcher_without_data_path_prints_the_original_error():
    proc = run(["bash", "train_full_1p.sh"], cwd=f"{MODEL_DIR}/test")
    assert proc.returncode == 1
    assert proc.stdout.strip() == '[Error] para "data_path" must be config'


@pytest.mark.slow
def test_launcher_reports_a_training_failure(model_copy, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run(["bash", "test/train_performance_1p.sh", f"--data_path={tmp_path / 'empty'}"], cwd=model_copy)
    assert proc.returncode == 1
    assert "[Error] LeNet.py failed with exit status 1" in proc.stdout
    assert "missing train-images-idx3-ubyte.gz" in proc.stdout
    assert not list((model_copy / "test" / "output" / "0").glob("*_perf.log")), "no summary for a failed run"
