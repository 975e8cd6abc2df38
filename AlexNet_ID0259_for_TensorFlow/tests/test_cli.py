"""main.py's command line, in-process: user mistakes are one '[Error]' line and exit status 1 (2 for a
malformed flag), never a traceback. (test_launchers.py runs main.py as a script, through a launcher.)"""
import pytest

import main


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
