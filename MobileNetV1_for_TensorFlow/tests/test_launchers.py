"""The 1p launchers through bash, checked with the vendored contract checker (tests/contract.py): the full
launcher learns a synthetic set to >= 90 % top-1; the performance launcher, killed, resumes."""
import glob
import os
import signal
import subprocess
import time

import pytest
import tensorflow as tf

import contract
from conftest import environment, run, steps_logged
from synthetic import slim_imagenet

pytestmark = pytest.mark.slow

# The smoke settings (ci/smoke.toml): 32 px, 10 classes + background, batch 16, a few steps.
SMOKE = ["--image_size=32", "--num_classes=11", "--batch_size=16", "--num_train_samples=320",
         "--iterations_per_loop=5", "--learning_rate=0.05", "--warmup_epochs=1", "--batch_norm_decay=0.9"]
LEARN_STEPS = 120


def test_missing_data_path_and_help(model_copy):
    proc = run(["bash", "test/train_full_1p.sh"], cwd=model_copy)
    assert proc.returncode == 1
    assert proc.stdout.strip() == '[Error] para "data_path" must be config'
    helped = run(["bash", "train_performance_1p.sh", "--help"], cwd=model_copy / "test")
    assert helped.returncode == 0 and "--data_path" in helped.stdout


def test_full_launcher_learns_to_90_percent_top1(model_copy, tmp_path):
    """10 classes, 640 training / 200 validation images at 48x48, LEARN_STEPS steps of batch 32, evaluated by
    the launcher on the EMA weights. Holds on every CPU kind: the precision is float32 by request (MobileNet
    trains float32 on every CPU anyway), and the seeded input stream is the same on every run, so runs differ
    only by float32 rounding. Measured (RESULTS.md): 90 steps gave 0.94-0.975 over three seeds, too close to
    the threshold for a rounding-level difference, so 120. At 32x32 the last feature map is 1x1 and learning
    is much slower."""
    data = slim_imagenet.generate(str(tmp_path / "data"), train_count=640, validation_count=200, image_size=48)
    proc = run(["bash", "train_full_1p.sh", f"--data_path={data}", f"--max_train_steps={LEARN_STEPS}", "--bogus=1",
                "--image_size=48", "--num_classes=11", "--batch_size=32", "--num_train_samples=640",
                "--learning_rate=0.1", "--warmup_epochs=1", "--batch_norm_decay=0.9", "--iterations_per_loop=10",
                "--precision_mode=must_keep_origin_dtype"], cwd=model_copy / "test")
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode, min_accuracy=0.9) == [], proc.stdout[-3000:]
    case = "MobileNetV1_for_TensorFlow_bs32_1p_acc"
    assert result.summary["CaseName"] == case
    assert "unknown argument --bogus=1" in proc.stderr
    out = model_copy / "test" / "output" / "0"
    assert (out / "train_0.log").read_text().startswith("device: CPU, precision: float32 (must_keep_origin_dtype)")
    eval_log = (out / "eval_0.log").read_text()
    assert "weights: EMA" in eval_log and "images: 200" in eval_log and "acc: [" in eval_log
    top1 = [l for l in eval_log.splitlines() if l.startswith("top1: ")][-1].split()[1]
    assert result.summary["TrainAccuracy"] == top1
    assert len((out / f"train_{case}_loss.txt").read_text().split()) == LEARN_STEPS // 10
    assert os.path.isfile(out / "ckpt" / "0" / f"model.ckpt-{LEARN_STEPS}.index")


def test_performance_launcher_killed_then_resumed(model_copy, small_data):
    """From the model root: SIGKILL of the launcher and its worker once checkpoint 10 exists (80 samples /
    batch 16: a checkpoint every 5 steps), then --resume=True continues after the last saved step."""
    launch = ["bash", "test/train_performance_1p.sh", f"--data_path={small_data}", *SMOKE, "--num_train_samples=80"]
    ckpt_dir = model_copy / "test" / "output" / "0" / "ckpt" / "0"
    proc = subprocess.Popen([*launch, "--max_train_steps=100000"], cwd=str(model_copy), env=environment(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not glob.glob(str(ckpt_dir / "model.ckpt-10.index")):
            time.sleep(0.5)
        assert proc.poll() is None, "training ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = int(tf.train.latest_checkpoint(str(ckpt_dir)).rsplit("-", 1)[1])
    assert 10 <= saved < 100000

    resumed = run([*launch, f"--max_train_steps={saved + 5}", "--resume=True"], cwd=model_copy)
    result = contract.Run(str(model_copy), "train_performance_1p.sh", resumed.stdout)
    assert contract.check(result, resumed.returncode) == [], resumed.stdout[-3000:]
    assert result.summary["TrainAccuracy"] == "NA"
    assert result.value("TrainingTime") == pytest.approx(16 * 1000 / result.value("ActualFPS"), rel=1e-2)
    log = (model_copy / "test" / "output" / "0" / "train_0.log").read_text()
    second_run = log[log.rindex("device: "):]  # --resume=True appends to the killed run's log
    assert steps_logged(second_run) == [saved + 5]
    assert tf.train.latest_checkpoint(str(ckpt_dir)).endswith(f"model.ckpt-{saved + 5}")
