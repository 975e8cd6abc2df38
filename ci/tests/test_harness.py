"""The harness discovers launchers, reports one row each and fails when any launcher fails."""
import glob
import os
import tomllib
import xml.etree.ElementTree as ET

from ci import smoke
from ci.tests.conftest import REPO

GOOD = r'''#!/bin/bash
for a in "$@"; do case $a in --data_path=*) d=${a#*=};; --steps=*) s=${a#*=};; esac; done
test -f "$d/data.txt" || { echo "[Error] no data"; exit 1; }
out=$(dirname "$0")/output/0; rm -rf $out; mkdir -p $out
printf '2026-01-01 00:00:00.000001: I tensorflow/core/banner\ndevice: CPU, precision: bfloat16 mixed (why)\nstep 1\n' > $out/train_0.log
c=Toy_bs4_1p_SUFFIX; printf '2.0\n1.0\n0.5\n' > $out/train_${c}_loss.txt
t=$(awk -v s=$s 'BEGIN {printf "%.2f", 4000 / s}')
printf 'Network = Toy\nRankSize = 1\nBatchSize = 4\nDeviceType = %s\nCaseName = %s\nActualFPS = %s\nTrainingTime = %s\nACC = 0.9\nActualLoss = 0.5\nE2ETrainingTime = 1\n' "$(uname -m)" $c $s $t > $out/$c.log
printf '{"model": "Toy", "launcher": "x", "device": "CPU", "precision": "bfloat16", "batch_size": 4, "rank_size": 1, "steps": %s, "warmup_steps": 0, "ms_per_step": %s, "images_per_sec": %s, "accuracy_name": "a", "accuracy": 0.9, "final_loss": 0.5, "e2e_seconds": 1}\n' $s $t $s > $out/result.json
echo "------------------ Final result ------------------"
echo "Final Performance images/sec : $s"; echo "Final Train Accuracy : 0.9"; echo "E2E Training Duration sec : 1"
'''
CONFIG = '''
[Toy]
dataset = "toy"
args = ["--steps=5"]
[Toy.launchers."train_performance_1p.sh"]
args = ["--steps=7"]
min_accuracy = 0.95
'''


def make_tree(tmp_path):
    test_dir = tmp_path / "root" / "Toy" / "test"
    test_dir.mkdir(parents=True)
    (test_dir / "train_full_1p.sh").write_text(GOOD.replace("SUFFIX", "acc").replace("ACC", "TrainAccuracy"))
    (test_dir / "train_performance_1p.sh").write_text(GOOD.replace("SUFFIX", "perf").replace("ACC", "Accuracy"))
    (test_dir / "launcher_lib.sh").write_text("exit 1\n")  # not a launcher: never run
    (tmp_path / "smoke.toml").write_text(CONFIG)
    return tmp_path / "root"


def fake_generator(out_dir, seed=0):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "data.txt"), "w") as handle:
        handle.write("x")


def run_harness(tmp_path, monkeypatch, capsys, *extra):
    monkeypatch.setitem(smoke.GENERATORS, "toy", fake_generator)
    monkeypatch.setattr(smoke.device, "detect", lambda: "CPU")  # the toy launchers need no TensorFlow
    code = smoke.main(["--root", str(tmp_path / "root"), "--config", str(tmp_path / "smoke.toml"),
                       "--work_dir", str(tmp_path / "work"), *extra])
    return code, capsys.readouterr().out


def test_rows_pass_and_fail_per_launcher(tmp_path, monkeypatch, capsys):
    make_tree(tmp_path)
    code, out = run_harness(tmp_path, monkeypatch, capsys)
    assert code == 1
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("Toy ")}
    assert sorted(rows) == ["train_full_1p.sh", "train_performance_1p.sh"]
    assert rows["train_full_1p.sh"].rstrip().endswith("PASS")
    assert "| 5 " in rows["train_full_1p.sh"]  # the model's args reached the launcher
    assert "FAIL: Accuracy 0.9 below 0.95" in rows["train_performance_1p.sh"]
    assert "(log: " in rows["train_performance_1p.sh"] and "train_performance_1p.sh/output/0/train_0.log" in out
    assert "| bfloat16 mixed |" in rows["train_full_1p.sh"] and "| 0.5000 |" in rows["train_full_1p.sh"]
    assert "      step 1" in out and "tensorflow/core/banner" not in out  # the failure's tail, banner filtered
    assert "smoke: 1 passed, 1 failed" in out
    assert os.path.isfile(tmp_path / "work" / "datasets" / "toy" / ".complete")
    runs = tmp_path / "work" / "runs" / "Toy"
    for launcher in rows:  # each launcher's output kept, the second did not overwrite the first's
        assert (runs / launcher / "output" / "0" / "train_0.log").is_file()
    assert (runs / "train_full_1p.sh" / "output" / "0" / "Toy_bs4_1p_acc.log").is_file()
    suite = ET.parse(tmp_path / "work" / "smoke-junit.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert sorted(cases) == sorted(rows) and suite.get("failures") == "1"
    assert cases["train_full_1p.sh"].find("failure") is None
    failure = cases["train_performance_1p.sh"].find("failure")
    assert "below 0.95" in failure.get("message") and "step 1" in failure.text


def test_a_users_own_output_folder_is_put_back(tmp_path, monkeypatch, capsys):
    root = make_tree(tmp_path)
    mine = root / "Toy" / "test" / "output" / "0" / "ckpt"
    mine.mkdir(parents=True)
    (mine / "model.ckpt-100.index").write_text("weights")
    run_harness(tmp_path, monkeypatch, capsys)
    assert (mine / "model.ckpt-100.index").read_text() == "weights"
    assert not (root / "Toy" / "test" / "output.before-smoke").exists()


def test_a_launcher_that_hangs_is_reported_with_what_it_printed(tmp_path, monkeypatch, capsys):
    root = make_tree(tmp_path)
    (root / "Toy" / "test" / "train_full_1p.sh").write_text("echo started training; sleep 30\n")
    (tmp_path / "smoke.toml").write_text(CONFIG.replace('args = ["--steps=5"]', 'args = ["--steps=5"]\ntimeout = 1'))
    code, out = run_harness(tmp_path, monkeypatch, capsys, "--only", "full")
    assert code == 1
    assert "timed out after 1 s" in out and "      started training" in out


def test_new_launcher_and_unconfigured_model_are_picked_up(tmp_path, monkeypatch, capsys):
    root = make_tree(tmp_path)
    extra = root / "Toy" / "test" / "train_full_8p.sh"
    extra.write_text(GOOD.replace("SUFFIX", "acc").replace("ACC", "TrainAccuracy"))
    (root / "Other" / "test").mkdir(parents=True)
    (root / "Other" / "test" / "train_full_1p.sh").write_text("exit 0\n")
    code, out = run_harness(tmp_path, monkeypatch, capsys, "--only", "full")
    assert code == 1
    assert "train_full_8p.sh" in out and "FAIL: no [Other] table in ci/smoke.toml" in out
    assert "smoke: 2 passed, 1 failed" in out


def test_every_launcher_of_the_repository_has_smoke_settings_and_a_model_test():
    """The full smoke run is the main job (ci/smoke.sh), not a test: each model's own tests run each of its
    launchers through bash and check the contract, so running the smoke job here again would only double the
    suite's time. This guards that pairing: a launcher without smoke settings, or that no test of its model
    names, fails here."""
    with open(os.path.join(REPO, "ci", "smoke.toml"), "rb") as handle:
        config = tomllib.load(handle)
    launchers = smoke.discover(REPO)
    assert len(launchers) >= 13
    for path in launchers:
        model_dir = os.path.dirname(os.path.dirname(path))
        model, launcher = os.path.basename(model_dir), os.path.basename(path)
        cfg = smoke.settings(config, model, launcher)
        assert cfg is not None and cfg["dataset"] in smoke.GENERATORS, f"{model}/{launcher}: no smoke settings"
        tests = "".join(open(t).read() for t in glob.glob(os.path.join(model_dir, "tests", "test_*.py")))
        assert launcher in tests, f"no test in {model}/tests names {launcher}"
