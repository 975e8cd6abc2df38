"""main.py through its command line: user mistakes are one '[Error]' line, never a traceback."""
import pytest

from conftest import MODEL_DIR, main_py


def one_error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in lines if line.startswith("[Error]")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.mark.parametrize("args, code, words", [
    (["--data_path=/nonexistent/dogs"], 1, "is not a folder"),
    (["--batch_size=0"], 2, "--batch_size"),
    (["--epoch=two"], 2, "--epoch"),
    (["--precision_mode=fp8"], 2, "--precision_mode"),
    (["--init=zeros"], 2, "--init"),
    (["--pixels=rgb"], 2, "--pixels"),
    (["--val_photos=48"], 1, "--val_photos"),
    (["--batch_size=500", "--val_photos=8"], 1, "--batch_size: 500 is larger than the 40 training images"),
    (["--mul_rank_size=2", "--mul_device_id=2"], 2, "--mul_device_id"),
])
def test_bad_input_is_one_line(tmp_path, photos, args, code, words):
    full = [f"--data_path={photos}", f"--output_path={tmp_path}"] + args
    proc = main_py(MODEL_DIR, *full)
    assert proc.returncode == code
    assert words in one_error_line(proc)


def test_missing_data_path(tmp_path):
    proc = main_py(MODEL_DIR, f"--output_path={tmp_path}")
    assert proc.returncode == 2 and "--data_path" in one_error_line(proc)


def test_resume_past_the_requested_epochs_is_one_line(tmp_path, photos):
    args = [f"--data_path={photos}", f"--output_path={tmp_path}", "--val_photos=8", "--batch_size=8",
            "--step=1", "--epoch=1"]
    assert main_py(MODEL_DIR, *args).returncode == 0
    proc = main_py(MODEL_DIR, *args)
    assert proc.returncode == 1 and "already holds 1 epochs" in one_error_line(proc)
