"""The accuracy launcher end to end: stopped by SIGTERM (exit 143, one line, a checkpoint), its model folder
moved elsewhere, then `--resume=True` continues from that checkpoint and the run meets the launcher contract.
(The in-process tests cover a damaged newest checkpoint, Ctrl-C and resuming a finished run.)"""
import shutil
import signal
import subprocess
import time

import pytest

import contract
import run_safety
from conftest import environment, run

pytestmark = pytest.mark.slow

# The launcher's default precision on purpose: bfloat16 where zoo_precision's table chooses it. Hence the
# loose threshold: 2 x 120 steps at learning rate 0.003 leave the sigmoid net's plateau (about step 150) and
# reach about 0.99 on the synthetic digits in float32; 0.5 leaves room for bf16's rounding.
SCHEDULE = ["--epochs=2", "--steps=120", "--learning_rate=0.003"]


def wait_for_line(path, text, proc, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    pytest.fail(f"{text!r} never appeared in {path} (launcher exit status {proc.poll()})")


def test_sigterm_then_resume_in_a_moved_folder_meets_the_contract(model_copy, smoke_mnist, tmp_path):
    data = f"--data_path={smoke_mnist}"
    proc = subprocess.Popen(["bash", "train_full_1p.sh", data, *SCHEDULE], cwd=model_copy / "test",
                            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = model_copy / "test" / "output" / "0" / "train_0.log"
    wait_for_line(log, "epoch : 1----step : 20-", proc)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143, stdout
    errors = [line for line in stdout.splitlines() if line.startswith("[Error]")]
    assert len(errors) == 1 and errors[0].startswith("[Error] stopped by SIGTERM at step "), stdout
    assert errors[0].endswith("saved, run again with --resume=True to continue")
    assert "Traceback" not in stdout + log.read_text()
    saved = run_safety.numbered_checkpoints(str(log.parent / "ckpt_npu"))
    stopped_at = saved[0][0]
    assert stopped_at >= 20 and [n for n, _ in saved] == [stopped_at, 0]

    moved = tmp_path / "elsewhere" / model_copy.name
    shutil.move(str(model_copy), str(moved))
    proc = run(["bash", "train_full_1p.sh", data, *SCHEDULE, "--resume=True"], cwd=moved / "test")
    result = contract.Run(str(moved), "train_full_1p.sh", proc.stdout + proc.stderr)
    assert contract.check(result, proc.returncode, min_accuracy=0.5, loss_must_fall=True) == []
    assert result.summary["CaseName"] == "LeNet_ID0127_for_TensorFlow_bs64_1p_acc"
    # One training log across both processes: every step once.
    assert len(result.losses) == 240
    log = (moved / "test" / "output" / "0" / "train_0.log").read_text()
    ckpt_dir = moved / "test" / "output" / "0" / "ckpt_npu"
    assert f"resuming from {ckpt_dir / f'model.ckpt-{stopped_at}'} at step {stopped_at}" in log
    assert run_safety.numbered_checkpoints(str(ckpt_dir))[0][0] == 240
    assert (ckpt_dir / "graph.pbtxt").is_file()
    for run_folder in ("train", "eval"):  # TensorBoard runs; their scalars are checked in test_training.py
        assert list((ckpt_dir.parent / "logs" / run_folder).glob("events.out.tfevents.*")), run_folder
