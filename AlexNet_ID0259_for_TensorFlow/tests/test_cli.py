"""main.py's command line, in-process: user mistakes are one '[Error]' line and exit status 1 (2 for a
malformed flag), never a traceback; every entry script parses its flags before it imports TensorFlow.
(test_launchers.py runs main.py as a script, through a launcher.)"""
import subprocess
import sys

import pytest

import main
from conftest import MODEL_DIR, environment


def cli(capsys, *argv):
    """(exit status, the one [Error] line) of main.main(argv)."""
    try:
        code = main.main(list(argv))
    except SystemExit as stop:  # argparse
        code = stop.code
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("[Error]")]
    assert len(errors) == 1, stderr
    return code, errors[0]


@pytest.mark.parametrize("args, code, words", [
    (["--data_path=/nonexistent/dogs"], 1, "is not a folder"),
    (["--batch_size=0"], 2, "--batch_size"),
    (["--epoch=two"], 2, "--epoch"),
    (["--precision_mode=fp8"], 2, "--precision_mode"),
    (["--init=zeros"], 2, "--init"),
    (["--pixels=rgb"], 2, "--pixels"),
    (["--over_dump=maybe"], 2, "--over_dump"),
    (["--val_photos=48"], 1, "--val_photos"),
    (["--batch_size=500", "--val_photos=8"], 1, "--batch_size: 500 is larger than the 40 training images"),
    (["--mul_rank_size=2", "--mul_device_id=2"], 2, "--mul_device_id"),
    (["--mul_rank_size=2", "--val_photos=8", "--batch_size=4"], 1, "2 ranks off Ascend need TF_CONFIG"),
])
def test_bad_input_is_one_line(tmp_path, photos, capsys, monkeypatch, args, code, words):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    status, error = cli(capsys, f"--data_path={photos}", f"--output_path={tmp_path}", *args)
    assert status == code and words in error


def test_missing_data_path(tmp_path, capsys):
    status, error = cli(capsys, f"--output_path={tmp_path}")
    assert status == 2 and "--data_path" in error


@pytest.mark.slow
@pytest.mark.parametrize("script, flag, bad", [
    ("main.py", "--data_path", ["--data_path=x", "--epoch=two"]),
    ("export.py", "--checkpoint_path", ["--checkpoint_path=x", "--pixels=rgb"]),
    ("predict.py", "--checkpoint_path", ["--checkpoint_path=x", "--pixels=rgb", "photo.jpg"]),
    ("data_preprocessor.py", "--data_path", ["--output_path=x"]),
])
def test_help_and_a_bad_flag_answer_without_tensorflow(tmp_path, script, flag, bad):
    """With a tensorflow package that cannot be imported first on the path: -h is the usage text, a bad flag one
    [Error] line naming the script, both without touching TensorFlow."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('TensorFlow imported')\n")
    env = environment(PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, script, "--help"], cwd=MODEL_DIR, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ") and flag in proc.stdout, proc.stderr
    proc = subprocess.run([sys.executable, script, *bad], cwd=MODEL_DIR, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith(f"[Error] {script}: ") and \
        len(proc.stderr.splitlines()) == 1, proc.stderr
