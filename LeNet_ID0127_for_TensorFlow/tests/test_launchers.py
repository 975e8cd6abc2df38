"""The real command lines: the accuracy launcher against the launcher contract, and LeNet.py killed with
SIGKILL then resumed (the in-process tests cover resuming from a finished run)."""
import re
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

import contract
from conftest import MODEL_DIR, environment, run

pytestmark = pytest.mark.slow


def test_full_launcher_meets_the_contract_and_learns(model_copy, smoke_mnist):
    # The launcher's default precision on purpose: bfloat16 on CPUs with native bf16, float32 elsewhere. Hence
    # the loose threshold: 2 x 120 steps at learning rate 0.003 leave the sigmoid net's plateau (about step
    # 150) and reach about 0.99 on the synthetic digits in float32; 0.5 leaves room for bf16's rounding.
    proc = run(["bash", "train_full_1p.sh", f"--data_path={smoke_mnist}", "--epochs=2", "--steps=120",
                "--learning_rate=0.003"], cwd=model_copy / "test")
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout + proc.stderr)
    assert contract.check(result, proc.returncode, min_accuracy=0.5, loss_must_fall=True) == []
    assert result.summary["CaseName"] == "LeNet_ID0127_for_TensorFlow_bs64_1p_acc"
    assert len(result.losses) == 240
    out = model_copy / "test" / "output" / "0"
    assert (out / "ckpt_npu" / "graph.pbtxt").is_file()
    assert tf.train.latest_checkpoint(str(out / "ckpt_npu")).endswith("model.ckpt-240")
    assert list((out / "logs").glob("events.out.tfevents.*"))


def test_resumes_after_sigkill(small_mnist, tmp_path):
    args = [sys.executable, "LeNet.py", f"--data_path={small_mnist}", f"--output_path={tmp_path}",
            "--validation_size=500", "--epochs=1", "--steps=60", "--save_checkpoints_steps=10"]
    proc = subprocess.Popen(args, cwd=MODEL_DIR, env=environment(), stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("epoch : 1----step : 35-"):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = tf.train.latest_checkpoint(str(tmp_path / "ckpt_npu"))
    last_step = int(saved.rsplit("-", 1)[1])
    assert 30 <= last_step < 60

    resumed = run(args, cwd=MODEL_DIR)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {saved} at global step {last_step}" in resumed.stdout
    steps = [int(s) for s in re.findall(r"^epoch : 1----step : (\d+)-", resumed.stdout, re.M)]
    assert steps == list(range(last_step + 1, 61))
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt_npu")).endswith("model.ckpt-60")
