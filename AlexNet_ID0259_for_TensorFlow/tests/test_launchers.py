"""The 1p launchers as users run them, through bash: the contract, a fresh start, SIGTERM, resume, an entry-script
error under the launcher's flag name, missing --data_path, a failing run, help. (The outputs themselves, and
the other ways a run stops, are checked in-process in test_never_lose_a_run.py.)"""
import json
import os
import signal
import subprocess
import time

import pytest

import contract
import run_safety
from conftest import environment, run

pytestmark = pytest.mark.slow
SMALL = ["--batch=4", "--val_photos=8", "--log_every=1"]


def launch(model_dir, launcher, photos, *args, from_test_dir=True):
    if from_test_dir:
        return run(["bash", launcher, f"--data_path={photos}", *SMALL, *args], model_dir / "test")
    return run(["bash", f"test/{launcher}", f"--data_path={photos}", *SMALL, *args], model_dir)


def edit_launcher(model_dir, launcher, **values):
    """As the original README says: set variables at the top of the launcher (before it sources its library)."""
    path = model_dir / "test" / launcher
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("source "))
    lines[at:at] = [f'{name}="{value}"\n' for name, value in values.items()]
    path.write_text("".join(lines))


def original_layout(tmp_path, photos):
    """The original README's data folder: <xxx>/data/dog_and_cat_25000_split/train holding the photos."""
    root = tmp_path / "datasets"
    (root / "data" / "dog_and_cat_25000_split").mkdir(parents=True)
    (root / "data" / "dog_and_cat_25000_split" / "train").symlink_to(photos)
    return root


def sigterm_after(proc, log, marker, timeout=240):
    """Sends SIGTERM to the launcher once marker is in its log; its exit status."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and marker in log.read_text():
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.2)
    return proc.wait(timeout=timeout)


def test_full_launcher_sigterm_then_perf_launcher_resumes(model_copy, photos, tmp_path):
    """train_full_1p.sh from the model root, its variables edited at the top (data_path too, the original's data
    layout) and run without arguments as the original README allows, a fresh start (the old folder kept as .prev),
    SIGTERMed in mid-epoch: exit 143 with one line and a checkpoint. Then train_performance_1p.sh from test/ with --resume=True: a bad
    --batch is relayed under the launcher's name and changes nothing; the next one continues from the step
    where the first stopped and meets the contract (beside the first one's log, which --resume keeps)."""
    out = model_copy / "test" / "output" / "0"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an earlier run")
    edit_launcher(model_copy, "train_full_1p.sh", data_path=original_layout(tmp_path, photos), batch=4, val_photos=8,
                  log_every=1, max_step=400)
    proc = subprocess.Popen(["bash", "test/train_full_1p.sh"], cwd=str(model_copy), env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert sigterm_after(proc, out / "train_0.log", "epoch 1 step: 2 ") == 143
    stdout = proc.stdout.read()
    errors = [line for line in stdout.splitlines() if line.startswith("[Error]")]
    assert len(errors) == 1 and errors[0].startswith("[Error] stopped by SIGTERM at step "), stdout + proc.stderr.read()
    stopped_at = int(errors[0].split("at step ")[1].split(";")[0])
    assert f"checkpoint {out}/model/model.ckpt-{stopped_at} saved" in errors[0] and "Traceback" not in stdout
    assert (model_copy / "test" / "output" / "0.prev" / "stale.txt").is_file()
    saved = sorted(os.listdir(out / "model"))

    proc = launch(model_copy, "train_performance_1p.sh", photos, "--resume=True", "--batch=500")
    errors = [line for line in proc.stdout.splitlines() if line.startswith("[Error]")]
    assert proc.returncode == 1 and len(errors) == 1 and errors[0].startswith(
        "[Error] --batch: 500 is larger than the 40 training images"), proc.stdout
    assert sorted(os.listdir(out / "model")) == saved

    proc = launch(model_copy, "train_performance_1p.sh", photos, "--resume=True", f"--max_step={stopped_at + 2}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = contract.Run(str(model_copy), "train_performance_1p.sh", proc.stdout)
    summary = out / "AlexNet_ID0259_for_TensorFlow_bs4_1p_perf.log"
    assert contract.check_summary(result, str(summary)) + contract.check_loss_file(result) + \
        contract.check_final_block(result) + contract.check_result(result) == []
    log = (out / "train_0.log").read_text()
    assert f"resuming from {out}/model/model.ckpt-{stopped_at} at step {stopped_at}, after epoch 0" in log
    assert f"epoch 1 step: {stopped_at + 1} " in log and f"epoch 1 step: {stopped_at + 3} " not in log
    # The summary's accuracy is a fraction; the log's line keeps the original's percentage.
    assert float(result.summary["TrainAccuracy"]) == pytest.approx(
        float(log.split("test accuracy ")[-1].split()[0]) / 100, abs=1e-4)
    assert result.result["launcher"] == "train_performance_1p.sh" and result.result["steps"] == 2
    history = json.loads((out / "history.json").read_text())
    assert history["steps"] == [stopped_at + 2] and history["partial"] is None
    assert run_safety.numbered_checkpoints(str(out / "model"))[0][0] == stopped_at + 2


def test_original_readme_commands_verbatim(model_copy, photos, tmp_path):
    """The original README's steps as written: export ASCEND_DEVICE_ID=X, then `bash test/train_full_1p.sh
    --data_path=xxx` from the model folder, xxx holding data/dog_and_cat_25000_split/train; the size of the run set
    by editing the variables at the top of the launcher, as the README allows. Outputs in test/output/X."""
    edit_launcher(model_copy, "train_full_1p.sh", batch=4, max_epoch=1, max_step=1, val_photos=8)
    xxx = original_layout(tmp_path, photos)
    proc = run(["bash", "-c", f"export ASCEND_DEVICE_ID=3 && bash test/train_full_1p.sh --data_path={xxx}"], model_copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout, device_id="3")
    out = model_copy / "test" / "output" / "3"
    assert contract.check_summary(result, str(out / "AlexNet_ID0259_for_TensorFlow_bs4_1p_acc.log")) + \
        contract.check_loss_file(result) + contract.check_final_block(result) + contract.check_result(result) == []
    assert f"data: 48 photos in {xxx}/data/dog_and_cat_25000_split/train" in (out / "train_3.log").read_text()
    assert run_safety.numbered_checkpoints(str(out / "model"))[0][0] == 1


def test_missing_data_path_and_failures_are_reported(model_copy, tmp_path):
    proc = run(["bash", "train_full_1p.sh"], model_copy / "test")
    assert proc.returncode == 1 and proc.stdout.strip() == '[Error] para "data_path" must be config'
    proc = run(["bash", "test/train_full_1p.sh", f"--data_path={tmp_path / 'nothing'}"], model_copy)
    assert proc.returncode != 0 and "is not a folder" in proc.stdout and "Traceback" not in proc.stdout
    assert "Final result" not in proc.stdout


def test_help(model_copy):
    proc = run(["bash", "train_performance_1p.sh", "--help"], model_copy / "test")
    assert proc.returncode == 0 and "--data_path" in proc.stdout and "--max_step" in proc.stdout
