"""The launchers' shared shell steps (ci/canonical/launcher_common.sh, workers.sh) on a toy model whose entry
script is a few lines of Python: flags, launcher-file defaults, checks before anything on disk changes, the
previous output kept as .prev, the summary and final block, and the workers' watchdog."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from ci.tests.conftest import REPO

CANONICAL = os.path.join(REPO, "ci", "canonical")

# Trains nothing: prints the markers the toy launcher reads. A file in the data folder changes that: "bad"
# fails with an [Error] line naming its flags, "crash" fails after TensorFlow-like start-up chatter, "slow"
# waits for SIGTERM and stops as the models do.
ENTRY = textwrap.dedent("""\
    import json, os, signal, sys, time
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    marker = lambda name: os.path.exists(os.path.join(args["data_path"], name))
    def record(ms, loss):
        os.makedirs(args["output_path"], exist_ok=True)
        batch = int(args["batch_size"])
        json.dump({"ms_per_step": ms, "images_per_sec": ms and batch * 1000 / ms, "accuracy": 0.75,
                   "final_loss": loss}, open(os.path.join(args["output_path"], "result.json"), "w"))
    if marker("bad"):
        print("[Error] toy.py: bad data in --dataset_dir; lower --learning_rate", file=sys.stderr)
        sys.exit(3)
    if marker("crash"):
        print("2026-12-01 00:00:00.000001: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.")
        print("something broke")
        sys.exit(4)
    if marker("norecord"):
        sys.exit(0)
    if marker("finished"):
        print("nothing left to train")
        record(None, None)
        sys.exit(0)
    if marker("progress"):
        import time
        for step in (1, 2):
            print(f"[progress] step {step}/2 every {os.environ['ZOO_PROGRESS_EVERY']}", flush=True)
            time.sleep(0.3)
    if marker("slow"):
        def stop(signum, frame):
            print(f"[Error] stopped by {signal.Signals(signum).name} at step 1", file=sys.stderr)
            sys.exit(143)
        signal.signal(signal.SIGTERM, stop)
        print("waiting", flush=True)
        time.sleep(60)
    os.makedirs(args["output_path"], exist_ok=True)
    open(os.path.join(args["output_path"], "ckpt"), "w").write(args.get("resume", ""))
    for step in range(1, int(args["steps"]) + 1):
        print(f"step {step} loss {1.0 / step:.4f}")
    record(50.0, 1.0 / int(args["steps"]))
    print("args " + " ".join(sys.argv[1:]))
""")

LIB = textwrap.dedent("""\
    source "$(dirname "${BASH_SOURCE[0]}")/launcher_common.sh"
    step_lines='^step '
    flag data_path "" text "toy data folder"
    flag batch_size 8 int "images per step"
    flag steps 2 int "steps"
    flag learning_rate 0.1 number "rate"
    flag precision_mode allow_mix_precision "$PRECISION_MODES" "precision"
    alias_flag lr learning_rate
    script_flag dataset_dir data_path
    parse_flags "$@"
    check_flags
    start_single "$batch_size"
    run_python toy.py "$log" --data_path="$data_path" --output_path="$out" --steps="$steps" \\
        --learning_rate="$learning_rate" --batch_size="$batch_size" --precision_mode="$precision_mode"
    grep '^step ' "$log" | awk '{print $4}' >"$out/train_${CaseName}_loss.txt"
    finish_from_result TrainAccuracy
""")

# Each worker writes its environment to its log; the one named by FAIL_RANK exits 5, the others wait.
WORKERS_LIB = textwrap.dedent("""\
    source "$(dirname "${BASH_SOURCE[0]}")/launcher_common.sh"
    source "$(dirname "${BASH_SOURCE[0]}")/workers.sh"
    flag data_path "" text "toy data folder"
    worker_flags
    parse_flags "$@"
    check_flags
    worker_command() {
        cd "$model_dir" && exec python3 -c '
    import json, os, sys, time
    print("rank", os.environ["RANK_ID"], "device", os.environ["ASCEND_DEVICE_ID"], "tf_config",
          json.dumps(json.loads(os.environ.get("TF_CONFIG", "{}"))), flush=True)
    if os.environ["RANK_ID"] == os.environ.get("FAIL_RANK"):
        sys.exit(5)
    time.sleep(float(os.environ.get("WORK_SECONDS", "60")))
    ' >>"$(rank_log "$1")" 2>&1
    }
    start_workers no_such_ascend_adapter_module 4
    echo "all done; report folder $ASCEND_DEVICE_ID"
""")


@pytest.fixture
def toy(tmp_path):
    """A model folder Toy/ with the vendored shell files, an entry script, and a data folder."""
    model = tmp_path / "Toy"
    (model / "test").mkdir(parents=True)
    for name in ("launcher_common.sh", "workers.sh"):
        shutil.copy(os.path.join(CANONICAL, name), model / "test" / name)
    (model / "toy.py").write_text(ENTRY)
    (model / "test" / "launcher_lib.sh").write_text(LIB)
    (model / "test" / "workers_lib.sh").write_text(WORKERS_LIB)
    (tmp_path / "data").mkdir()
    return model


def launcher(model, name="train_full_1p.sh", top="", lib="launcher_lib.sh"):
    """Writes a launcher file as the models do: variables first, then the library."""
    path = model / "test" / name
    path.write_text(f'#!/bin/bash\n{top}suffix=acc\nsource "$(dirname "${{BASH_SOURCE[0]}}")/{lib}"\n')
    return path


def run(model, *args, name="train_full_1p.sh", cwd=None, env=None, timeout=60):
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ASCEND_", "RANK_"))}
    return subprocess.run(["bash", str(model / "test" / name), *args], cwd=cwd or model, capture_output=True, text=True,
                          env={**environment, "PATH": path, **(env or {})}, timeout=timeout)


def entry_args(model):
    log = (model / "test" / "output" / "0" / "train_0.log").read_text()
    return dict(a[2:].split("=", 1) for a in log.split("args ")[-1].split())


def summary(model, case):
    lines = (model / "test" / "output" / "0" / f"{case}.log").read_text().splitlines()
    return [line.split(" = ", 1) for line in lines]


def test_summary_and_final_block(toy, tmp_path):
    launcher(toy)
    proc = run(toy, f"--data_path={tmp_path / 'data'}", "--steps=4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    case = "Toy_bs8_1p_acc"
    keys = [k for k, _ in summary(toy, case)]
    assert keys == ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
                    "TrainAccuracy", "ActualLoss", "E2ETrainingTime"]
    values = dict(summary(toy, case))
    assert values["Network"] == "Toy" and values["CaseName"] == case and values["ActualFPS"] == "160.00"
    assert values["TrainAccuracy"] == "0.7500" and values["ActualLoss"] == "0.25" and values["TrainingTime"] == "50.00"
    assert values["DeviceType"] == os.uname().machine and values["E2ETrainingTime"].isdigit()
    assert proc.stdout.splitlines()[-4:] == [
        "------------------ Final result ------------------", "Final Performance images/sec : 160.00",
        "Final Train Accuracy : 0.7500", f"E2E Training Duration sec : {values['E2ETrainingTime']}"]


def test_flags_aliases_unknown_arguments_and_relative_data_path(toy, tmp_path):
    launcher(toy)
    proc = run(toy, "--data_path=../../data", "--batch_size=16", "--lr=0.5", "--bogus=1", "stray", "--=1",
               cwd=toy / "test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Relative to where the user ran the launcher; the entry script runs in the model folder.
    assert os.path.realpath(entry_args(toy)["data_path"]) == str(tmp_path / "data")
    assert entry_args(toy)["batch_size"] == "16" and entry_args(toy)["learning_rate"] == "0.5"
    assert proc.stderr.splitlines() == ["[Warning] train_full_1p.sh: unknown argument --bogus=1 ignored",
                                        "[Warning] train_full_1p.sh: unknown argument stray ignored",
                                        "[Warning] train_full_1p.sh: unknown argument --=1 ignored"]


def test_launcher_file_values_are_the_defaults_and_arguments_override_them(toy, tmp_path):
    """The originals' documented way: edit the variables at the top of the launcher, run it without arguments."""
    launcher(toy, top=f'data_path="{tmp_path / "data"}"\nbatch_size=32\nsteps=3\n')
    proc = run(toy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert entry_args(toy)["batch_size"] == "32" and entry_args(toy)["steps"] == "3"
    assert "Toy_bs32_1p_acc" in proc.stdout + str(list((toy / "test" / "output" / "0").iterdir()))
    proc = run(toy, "--batch_size=4")
    assert proc.returncode == 0 and entry_args(toy)["batch_size"] == "4" and entry_args(toy)["steps"] == "3"
    helped = run(toy, "--help")
    assert helped.returncode == 0 and "(default: 32)" in helped.stdout and "--data_path=" in helped.stdout


def test_missing_data_path_is_the_original_error(toy):
    launcher(toy, top='data_path=""\n')
    proc = run(toy, "--steps=2")
    assert proc.returncode == 1 and proc.stdout.strip() == '[Error] para "data_path" must be config'
    assert not (toy / "test" / "output").exists()


@pytest.mark.parametrize("args, error", [
    (["--data_path={data}/nothing"], "--data_path={data}/nothing is not a folder"),
    (["--data_path={data}", "--batch_size=abc"], "--batch_size=abc is not a positive integer"),
    (["--data_path={data}", "--steps=0"], "--steps=0 is not a positive integer"),
    (["--data_path={data}", "--learning_rate=fast"], "--learning_rate=fast is not a number"),
    (["--data_path={data}", "--resume=yes"], "--resume=yes is not True or False"),
    (["--data_path={data}", "--precision_mode=fp8"], "--precision_mode=fp8 is not one of "
                                                 "allow_mix_precision|allow_fp32_to_fp16|force_fp16|must_keep_origin_dtype"),
])
def test_bad_input_touches_nothing(toy, tmp_path, args, error):
    """A previous run's folder stays as it was when the new run's flags or data folder are wrong."""
    launcher(toy)
    data = tmp_path / "data"
    assert run(toy, f"--data_path={data}").returncode == 0
    output = toy / "test" / "output"
    before = {p: p.read_bytes() for p in output.rglob("*") if p.is_file()}
    proc = run(toy, *[a.format(data=data) for a in args])
    assert proc.returncode == 1
    assert proc.stdout.strip() == f"[Error] train_full_1p.sh: {error.format(data=data)}"
    assert sorted(os.listdir(output)) == ["0", "0.lock"]
    assert {p: p.read_bytes() for p in output.rglob("*") if p.is_file()} == before
    assert (output / "0.lock").read_text() == ""  # the clean end of the first run named no holder


def test_unreadable_data_folder(toy, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    launcher(toy)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        proc = run(toy, f"--data_path={locked}")
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 1 and f"--data_path={locked} is not readable" in proc.stdout


def test_fresh_run_moves_the_previous_one_aside_and_resume_keeps_it(toy, tmp_path):
    launcher(toy)
    output = toy / "test" / "output"
    data = tmp_path / "data"
    assert run(toy, f"--data_path={data}", "--steps=1").returncode == 0
    (output / "0" / "marker").write_text("first run")
    assert run(toy, f"--data_path={data}", "--steps=2", "--resume=True").returncode == 0
    assert (output / "0" / "marker").is_file() and not (output / "0.prev").exists()
    proc = run(toy, f"--data_path={data}", "--steps=3")
    assert proc.returncode == 0 and "0.prev" in proc.stdout
    assert (output / "0.prev" / "marker").read_text() == "first run"
    assert not (output / "0" / "marker").exists()
    # One generation is kept: the next fresh run replaces 0.prev with the run just finished.
    assert run(toy, f"--data_path={data}", "--steps=4").returncode == 0
    assert not (output / "0.prev" / "marker").exists()
    assert (output / "0.prev" / "Toy_bs8_1p_acc.log").is_file()


def test_a_resume_without_a_checkpoint_says_there_is_nothing_to_continue_from(toy, tmp_path):
    """A run killed before its first save ended leaves no <prefix>-<n>.index: --resume=True says so (then the
    entry script starts over or refuses, as each model does); a rank that never saves says nothing."""
    launcher(toy)
    data, folder = tmp_path / "data", toy / "test" / "output" / "0"
    said = f"[Warning] train_full_1p.sh: --resume=True, but {folder} holds no checkpoint (none was written, or none"
    proc = run(toy, f"--data_path={data}", "--resume=True")
    assert proc.returncode == 0 and said in proc.stderr, proc.stdout + proc.stderr
    (folder / "model").mkdir()
    (folder / "model" / "model.ckpt-7.index.tempstate123").write_text("a save cut short")
    assert said in run(toy, f"--data_path={data}", "--resume=True").stderr
    (folder / "model" / "model.ckpt-6.index").write_text("")
    proc = run(toy, f"--data_path={data}", "--resume=True")
    assert proc.returncode == 0 and "holds no checkpoint" not in proc.stdout + proc.stderr

    launcher(toy, name="train_full_8p.sh", lib="workers_lib.sh")
    (toy / "test" / "output" / "1").mkdir()
    proc = run(toy, f"--data_path={data}", "--resume=True", name="train_full_8p.sh",
               env={"RANK_SIZE": "2", "WORK_SECONDS": "0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "holds no checkpoint" not in proc.stdout + proc.stderr  # rank 0's folder has one; rank 1 never saves
    (folder / "model" / "model.ckpt-6.index").unlink()
    proc = run(toy, f"--data_path={data}", "--resume=True", name="train_full_8p.sh",
               env={"RANK_SIZE": "2", "WORK_SECONDS": "0"})
    assert proc.stderr.count("holds no checkpoint") == 1 and f"{folder} holds no checkpoint" in proc.stderr


def test_a_run_that_wrote_only_its_log_does_not_replace_the_kept_one(toy, tmp_path):
    """A failed entry script: its status, its error and the log's end (without step lines), no summary; the
    next fresh run drops that log-only folder instead of replacing the .prev run that has results."""
    launcher(toy)
    output = toy / "test" / "output"
    good, bad = tmp_path / "data", tmp_path / "bad_data"
    bad.mkdir()
    (bad / "bad").write_text("x")
    assert run(toy, f"--data_path={good}").returncode == 0
    assert run(toy, f"--data_path={good}").returncode == 0
    proc = run(toy, f"--data_path={bad}")
    assert proc.returncode == 3
    assert proc.stdout.splitlines()[-2:] == ["[Error] toy.py: bad data in --data_path; lower --learning_rate",
                                             f"(full log: {output}/0/train_0.log)"]
    assert os.listdir(output / "0") == ["train_0.log"]
    assert (output / "0.prev" / "Toy_bs8_1p_acc.log").is_file()
    assert run(toy, f"--data_path={bad}").returncode == 3
    assert (output / "0.prev" / "Toy_bs8_1p_acc.log").is_file()


def test_workers_get_their_rank_environment_and_report_in_the_last_rank(toy, tmp_path):
    launcher(toy, name="train_full_8p.sh", lib="workers_lib.sh")
    proc = run(toy, f"--data_path={tmp_path / 'data'}", name="train_full_8p.sh",
               env={"RANK_SIZE": "2", "WORK_SECONDS": "0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].startswith("training Toy (Toy_bs4_2p_acc): ranks 0 1 of 2 on this host")
    assert proc.stdout.splitlines()[-1] == "all done; report folder 1"
    for rank in (0, 1):
        log = (toy / "test" / "output" / str(rank) / f"train_{rank}.log").read_text()
        assert f"rank {rank} device {rank} tf_config" in log and f'"index": {rank}' in log
        assert log.count("localhost:") == 2


def test_a_failed_worker_stops_the_others_and_the_launcher_names_it(toy, tmp_path):
    launcher(toy, name="train_full_8p.sh", lib="workers_lib.sh")
    proc = run(toy, f"--data_path={tmp_path / 'data'}", name="train_full_8p.sh",
               env={"RANK_SIZE": "3", "FAIL_RANK": "1"}, timeout=30)
    assert proc.returncode == 1
    errors = [line for line in proc.stdout.splitlines() if line.startswith("[Error]")]
    assert errors == [f"[Error] rank 1 failed (exit status 5); stopping ranks 0 2. The end of "
                      f"{toy}/test/output/1/train_1.log:"]
    for rank in (0, 2):
        log = (toy / "test" / "output" / str(rank) / f"train_{rank}.log").read_text()
        assert "[Error] stopped by the launcher: rank 1 failed (exit status 5)" in log
    assert "all done" not in proc.stdout


@pytest.mark.parametrize("env, args, error", [
    ({"RANK_SIZE": "two"}, [], "RANK_SIZE=two is not a positive integer"),
    ({}, ["--worker_hosts=h0:1,h1:1", "--task_index=2"], "--task_index=2 is not in 0..1 (--worker_hosts)"),
])
def test_bad_cluster_settings_touch_nothing(toy, tmp_path, env, args, error):
    launcher(toy, name="train_full_8p.sh", lib="workers_lib.sh")
    proc = run(toy, f"--data_path={tmp_path / 'data'}", *args, name="train_full_8p.sh", env=env)
    assert proc.returncode == 1 and proc.stdout.strip() == f"[Error] train_full_8p.sh: {error}"
    assert not (toy / "test" / "output").exists()


def test_a_script_error_names_the_flags_the_user_typed(toy, tmp_path):
    launcher(toy)
    bad = tmp_path / "bad_data"
    bad.mkdir()
    (bad / "bad").write_text("x")
    proc = run(toy, f"--data_path={bad}", "--lr=0.5")
    assert proc.returncode == 3
    assert [line for line in proc.stdout.splitlines() if line.startswith("[Error]")] == [
        "[Error] toy.py: bad data in --data_path; lower --lr"]


def test_a_failure_without_an_error_line_shows_the_log_end_without_the_banner(toy, tmp_path):
    launcher(toy)
    data = tmp_path / "data"
    (data / "crash").write_text("x")
    proc = run(toy, f"--data_path={data}")
    assert proc.returncode == 4
    assert proc.stdout.splitlines()[-2:] == [
        f"[Error] toy.py failed with exit status 4; the end of {toy}/test/output/0/train_0.log:", "something broke"]


def test_one_run_per_output_folder_and_sigterm_reaches_the_script(toy, tmp_path):
    """A second launcher on the same ASCEND_DEVICE_ID exits 1 naming the first and touching nothing; SIGTERM
    to the first launcher reaches its entry script, whose stop line and status 143 the launcher relays."""
    launcher(toy)
    data = tmp_path / "data"
    (data / "slow").write_text("x")
    output = toy / "test" / "output"
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    first = subprocess.Popen(["bash", str(toy / "test" / "train_full_1p.sh"), f"--data_path={data}"],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PATH": path, "ASCEND_DEVICE_ID": "0"})
    try:
        for _ in range(100):
            if "waiting" in (output / "0" / "train_0.log").read_text(errors="replace") if (output / "0" / "train_0.log").exists() else False:
                break
            time.sleep(0.1)
        second = run(toy, f"--data_path={tmp_path}")
        assert second.returncode == 1
        assert second.stdout.startswith(f"[Error] train_full_1p.sh: {output}/0 is in use by another run "
                                        f"(pid={first.pid} host=")
        assert not (output / "0.prev").exists() and (output / "0" / "train_0.log").exists()
        first.send_signal(signal.SIGTERM)
        stdout, _ = first.communicate(timeout=30)
    finally:
        first.kill()
    assert first.returncode == 143
    assert "[Error] stopped by SIGTERM at step 1" in stdout.splitlines()


def test_a_stale_lock_is_taken_over_with_a_notice(toy, tmp_path):
    launcher(toy)
    (toy / "test" / "output").mkdir()
    (toy / "test" / "output" / "0.lock").write_text(f"pid=999999999 host={socket.gethostname()} cmd=train_full_1p.sh\n")
    proc = run(toy, f"--data_path={tmp_path / 'data'}")
    assert proc.returncode == 0
    assert "[Warning] train_full_1p.sh: taking over the lock of a run that is no longer running (pid=999999999" in proc.stderr


def test_an_unwritable_output_folder_is_one_line_naming_it(toy, tmp_path):
    launcher(toy)
    (toy / "test" / "output").write_text("a file where the output folder should be")
    proc = run(toy, f"--data_path={tmp_path / 'data'}")
    assert proc.returncode == 1
    assert proc.stdout == f"[Error] train_full_1p.sh: cannot write in {toy}/test/output: File exists\n"


@pytest.mark.parametrize("tail_mode", ["inotify", "polling"])
def test_progress_lines_reach_the_console_and_the_log_keeps_them(toy, tmp_path, tail_mode):
    """Also where tail cannot use inotify (a machine out of inotify instances, as CI once was) and polls once a
    second: the run takes 0.6 s, and its lines must still reach the console. A resume shows only its own."""
    env = {}
    if tail_mode == "polling":
        shims = tmp_path / "shims"
        shims.mkdir()
        (shims / "tail").write_text(f'#!/bin/sh\nexec {shutil.which("tail")} ---disable-inotify "$@"\n')
        (shims / "tail").chmod(0o755)
        env["PATH"] = f"{shims}{os.pathsep}{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
    launcher(toy)
    data = tmp_path / "data"
    (data / "progress").write_text("x")
    for resume, logged in (("False", 2), ("True", 4)):
        proc = run(toy, f"--data_path={data}", "--progress_every=7", f"--resume={resume}", env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert [line for line in proc.stdout.splitlines() if line.startswith("[progress]")] == [
            "[progress] step 1/2 every 7", "[progress] step 2/2 every 7"]
        assert (toy / "test" / "output" / "0" / "train_0.log").read_text().count("[progress]") == logged


def test_a_resume_with_nothing_left_to_train_reports_na(toy, tmp_path):
    """A finished run resumed in a new folder records no timing and no loss: NA, not a launcher error."""
    launcher(toy)
    data = tmp_path / "data"
    (data / "finished").write_text("x")
    proc = run(toy, f"--data_path={data}", "--resume=True")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    values = dict(summary(toy, "Toy_bs8_1p_acc"))
    assert [values[k] for k in ("ActualFPS", "TrainingTime", "TrainAccuracy", "ActualLoss")] == [
        "NA", "NA", "0.7500", "NA"]


def test_a_script_that_wrote_no_result_record_fails_with_one_line(toy, tmp_path):
    launcher(toy)
    data = tmp_path / "data"
    (data / "norecord").write_text("x")
    proc = run(toy, f"--data_path={data}")
    assert proc.returncode == 1
    assert "[Error] train_full_1p.sh: the run wrote no result record" in proc.stdout, proc.stdout
