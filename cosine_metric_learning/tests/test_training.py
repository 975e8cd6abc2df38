"""Slow tier: both launchers through bash (the zoo contract; SIGTERM -> 143 -> --resume=True in a moved folder;
the script's error relayed with the launcher's flag names) and an entry script as a user runs it."""
import re
import shutil
import signal
import subprocess
import time

import pytest
import tensorflow as tf

import contract
import device_config
import zoo_precision
from conftest import run, run_script, subprocess_env, value

pytestmark = pytest.mark.slow

SMOKE = ["--batch_size=16", "--steps=3"]
ASCEND_OPTIONS = ["--over_dump=False", "--data_dump_flag=False", "--data_dump_step=5", "--profiling=False",
                  "--autotune=False"]


def test_full_launcher_meets_the_contract(model_copy, small_market):
    proc = run(["bash", "train_full_1p.sh", f"--data_path={small_market}", *SMOKE, "--bogus=1",
                "--precision_mode=must_keep_origin_dtype", *ASCEND_OPTIONS], cwd=model_copy / "test")
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == [], proc.stderr[-2000:]
    assert result.summary["CaseName"] == "cosine_metric_learning_bs16_1p_acc"
    assert len(result.losses) == 3
    assert 0 <= result.value("TrainAccuracy") <= 1
    warnings = [line for line in proc.stderr.splitlines() if "unknown argument" in line]
    assert len(warnings) == 1 and "--bogus=1" in warnings[0]
    out = model_copy / "test" / "output" / "0"
    assert re.search(r"^device: (CPU|GPU), precision: float32 \(must_keep_origin_dtype\)$",
                     (out / "train_0.log").read_text(), re.M) or device_config.is_ascend()
    assert tf.train.latest_checkpoint(str(out / "ckpt" / "run")).endswith("model.ckpt-3")
    # TrainAccuracy: eval's validation Precision@1, added to the training's result.json.
    assert result.result["accuracy"] == pytest.approx(value((out / "eval_0.log").read_text(), "Precision@1 :"),
                                                      abs=1e-4)
    assert (result.result["launcher"], result.result["steps"], result.result["warmup_steps"]) == ("train_full_1p.sh", 3, 1)
    scalars = contract.read_scalars(str(out))  # README: tensorboard --logdir test/output/0
    assert set(scalars) == {"ckpt/run", "eval/run"}
    assert [step for step, _ in scalars["ckpt/run"]["total_loss"]] == [3]  # log_every 10: the last step
    assert [step for step, _ in scalars["eval/run"]["Precision@1"]] == [3]


def wait_for_line(path, pattern, proc, timeout=600):
    """Polls a growing log until a line matches (the launcher still running), without a fixed sleep."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and re.search(pattern, path.read_text(errors="replace"), re.M):
            return
        time.sleep(0.5)
    raise AssertionError(f"no line {pattern!r} in {path} (launcher status {proc.poll()})")


def test_performance_launcher_sigterm_then_resume_in_a_moved_folder(model_copy, small_market, tmp_path):
    """SIGTERM to the launcher (a scheduler's stop): the script saves and exits 143, the launcher relays its
    one line; the model folder is then moved and a resume continues from that checkpoint, set up the
    original way (variables edited at the top of the launcher, no arguments)."""
    log = model_copy / "test" / "output" / "0" / "train_0.log"
    proc = subprocess.Popen(["bash", "test/train_performance_1p.sh", f"--data_path={small_market}",
                             "--batch_size=16", "--steps=1000", "--save_interval_secs=3600"], cwd=model_copy,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        wait_for_line(log, r"^step 2, loss ", proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143, stdout + stderr[-2000:]
    errors = [line for line in stdout.splitlines() if line.startswith("[Error]")]
    match = re.fullmatch(r"\[Error\] stopped by SIGTERM at step (\d+); checkpoint (\S+) saved, run again with "
                         r"--resume=True to continue", errors[0]) if len(errors) == 1 else None
    assert match and f"(full log: {log})" in stdout, stdout
    assert "Traceback" not in stdout + stderr + log.read_text()
    stopped = int(match.group(1))
    assert match.group(2) == str(log.parent / "ckpt" / "run" / f"model.ckpt-{stopped}")
    assert "checkpoints (every 3600 s and at the end, the last 5 kept)" in log.read_text()

    moved = tmp_path / "moved" / model_copy.name
    shutil.move(str(model_copy), str(moved))
    # The launcher's documented other way: its variables edited at the top, then run with no arguments.
    launcher = moved / "test" / "train_performance_1p.sh"
    text = launcher.read_text()
    for old, new in (('data_path=""', f'data_path="{small_market}"'), ("batch_size=128", "batch_size=16"),
                     ("steps=100", f"steps={stopped + 2}\nresume=True")):
        assert old in text
        text = text.replace(old, new, 1)
    launcher.write_text(text)
    proc = run(["bash", "train_performance_1p.sh"], cwd=moved / "test")
    result = contract.Run(str(moved), "train_performance_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == [], proc.stdout[-2000:] + proc.stderr[-2000:]
    assert result.summary["TrainAccuracy"] == "NA" and result.value("ActualFPS") > 0
    text = (moved / "test" / "output" / "0" / "train_0.log").read_text()
    assert f"resuming from {moved}/test/output/0/ckpt/run/model.ckpt-{stopped} at step {stopped}\n" in text
    assert re.findall(r"^step (\d+), loss ", text, re.M)[-2:] == [str(stopped + 1), str(stopped + 2)]
    if device_config.device() == "CPU":
        # The launchers' default precision_mode, allow_mix_precision, as the measured table (and any
        # ZOO_CPU_BF16 of this environment) gives it on this CPU: bf16 only where it was measured faster.
        assert zoo_precision.resolve("allow_mix_precision", "CPU", device_config.MODEL).describe() + "\n" in text


def test_launcher_relays_the_scripts_error_with_its_own_flag_names(model_copy, small_market):
    """--batch_size=256 passes the launcher's checks; the script's line names --dataset_dir, shown as --data_path."""
    proc = run(["bash", "train_full_1p.sh", f"--data_path={small_market}", "--batch_size=256"],
               cwd=model_copy / "test")
    log = model_copy / "test" / "output" / "0" / "train_0.log"
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-2:] == [
        f"[Error] --data_path={small_market}: 54 training identities after the validation split; need at least 64 "
        "(batch_size/4 per step, 32 minimum)", f"(full log: {log})"], proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr + log.read_text()


def test_entry_script_as_a_user_runs_it(short_run, tmp_path):
    """train_mars.py itself (the launchers run train_market1501.py): finalize writes ./mars.ckpt."""
    proc = run_script("train_mars.py", "--mode=finalize", f"--restore_path={short_run[0] / 'short'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"wrote {tmp_path / 'mars.ckpt'} and {tmp_path / 'mars.ckpt.meta'} (network ")
    assert "fc1/weights" in {name for name, _ in tf.train.list_variables(str(tmp_path / "mars.ckpt"))}
