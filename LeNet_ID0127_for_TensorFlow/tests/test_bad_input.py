"""User mistakes reach the user as one '[Error] ...' line naming the file or flag, with a non-zero exit."""
import gzip
import shutil
import struct

import pytest

from conftest import MODEL_DIR, run, run_python

SMALL = ["--validation_size=500", "--epochs=1", "--steps=2"]


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("[Error]")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0]


@pytest.fixture
def broken(small_mnist, tmp_path):
    target = tmp_path / "mnist"
    shutil.copytree(small_mnist, target)
    return target


def test_launcher_without_data_path_prints_the_original_error():
    proc = run(["bash", "train_full_1p.sh"], cwd=f"{MODEL_DIR}/test")
    assert proc.returncode == 1
    assert proc.stdout.strip() == '[Error] para "data_path" must be config'


def test_launcher_reports_a_training_failure(model_copy, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run(["bash", "test/train_performance_1p.sh", f"--data_path={tmp_path / 'empty'}"], cwd=model_copy)
    assert proc.returncode == 1
    assert "[Error] LeNet.py failed with exit status 1" in proc.stdout
    assert "missing train-images-idx3-ubyte.gz" in proc.stdout
    assert not list((model_copy / "test" / "output" / "0").glob("*_perf.log")), "no summary for a failed run"


def test_empty_folder(tmp_path):
    proc = run_python(MODEL_DIR, "LeNet.py", f"--data_path={tmp_path}", f"--output_path={tmp_path}/out", *SMALL)
    assert_one_line_error(proc, str(tmp_path), "missing train-images-idx3-ubyte.gz")


def test_missing_folder(tmp_path):
    proc = run_python(MODEL_DIR, "LeNet.py", f"--data_path={tmp_path}/nope", f"--output_path={tmp_path}/out")
    assert_one_line_error(proc, "--data_path", "folder not found")


def test_wrong_magic_number(broken, tmp_path):
    path = broken / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path) as handle:
        data = handle.read()
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">I", 2049) + data[4:])
    proc = run_python(MODEL_DIR, "LeNet.py", f"--data_path={broken}", f"--output_path={tmp_path}/out", *SMALL)
    assert_one_line_error(proc, "t10k-images-idx3-ubyte.gz", "bad magic number 2049")


def test_truncated_gzip(broken, tmp_path):
    path = broken / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    proc = run_python(MODEL_DIR, "LeNet.py", f"--data_path={broken}", f"--output_path={tmp_path}/out", *SMALL)
    assert_one_line_error(proc, "train-images-idx3-ubyte.gz", "truncated")


def test_count_mismatch(broken, tmp_path):
    with gzip.open(broken / "train-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">II", 2049, 1999) + bytes(1999))
    proc = run_python(MODEL_DIR, "LeNet.py", f"--data_path={broken}", f"--output_path={tmp_path}/out", *SMALL)
    assert_one_line_error(proc, "2000 images", "1999 labels")


@pytest.mark.parametrize("flag, fragment", [
    ("--batch_size=abc", "argument --batch_size: invalid positive int value: 'abc'"),
    ("--batch_size=0", "argument --batch_size: must be a positive integer"),
    ("--learing_rata=fast", "argument --learing_rata/--learning_rate"),
    ("--precision_mode=fp8", "argument --precision_mode: invalid choice: 'fp8'"),
])
def test_bad_flag_values(flag, fragment, small_mnist, tmp_path):
    proc = run_python(MODEL_DIR, "LeNet.py", f"--data_path={small_mnist}", f"--output_path={tmp_path}/out", flag)
    assert_one_line_error(proc, fragment)


def test_nan_loss_stops_with_a_message(small_mnist, tmp_path):
    proc = run_python(MODEL_DIR, "LeNet.py", f"--data_path={small_mnist}", f"--output_path={tmp_path}/out",
                      "--learning_rate=1e38", "--validation_size=500", "--epochs=1", "--steps=50")
    assert_one_line_error(proc, "loss is nan at global step", "Lower --learing_rata")
    assert "Final Accuracy" not in proc.stdout


def test_freeze_without_checkpoint(tmp_path):
    proc = run_python(MODEL_DIR, "LeNet_frozen_graph.py", f"--ckpt_path={tmp_path}", f"--output_path={tmp_path}/x.pb")
    assert_one_line_error(proc, "--ckpt_path", "no checkpoint found")


def test_inference_without_bins(tmp_path):
    (tmp_path / "x.pb").write_bytes(b"not a graph")
    proc = run_python(MODEL_DIR, "LeNet_online_inference.py", f"--model_path={tmp_path}/x.pb",
                      f"--data_dir={tmp_path}")
    assert_one_line_error(proc, "--model_path", "not a GraphDef")
