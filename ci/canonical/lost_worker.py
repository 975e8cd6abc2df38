"""The 8p launchers' watchdog, tested the same way in every model that has one: SIGKILL rank 1 in the middle
of training and check that the launcher stops rank 0 and names rank 1. Vendored into the models' tests/
(ci/vendored.toml): edit ci/canonical/lost_worker.py, then python ci/vendor.py sync."""
import os
import re
import signal
import subprocess
import time


def kill_rank_one_mid_run(command, test_dir, env, step_marker, timeout=120):
    """Runs command (an 8p launcher with RANK_SIZE=2) in test_dir, waits until rank 1's log shows step_marker,
    SIGKILLs rank 1 (its pid from the launcher's 'rank R: pid P' line) and returns (exit code, stdout, pid of
    rank 0) once the launcher ends. Fails the test when that takes longer than timeout seconds."""
    launcher = subprocess.Popen(command, cwd=str(test_dir), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    log1 = os.path.join(str(test_dir), "output", "1", "train_1.log")
    header = ""
    try:
        while len(re.findall(r"^rank \d+: pid \d+", header, re.M)) < 2:
            line = launcher.stdout.readline()
            assert line, f"the launcher ended before starting two ranks:\n{header}"
            header += line
        pids = {int(r): int(p) for r, p in re.findall(r"^rank (\d+): pid (\d+)", header, re.M)}
        deadline = time.time() + 300
        while time.time() < deadline and not (os.path.isfile(log1) and step_marker in open(log1).read()):
            time.sleep(0.5)
        os.kill(pids[1], signal.SIGKILL)
        killed = time.time()
        stdout = header + launcher.communicate(timeout=timeout)[0]
        assert time.time() - killed < timeout
    finally:
        if launcher.poll() is None:
            launcher.kill()
    return launcher.returncode, stdout, pids[0]


def assert_rank_one_named(code, stdout, survivor, test_dir):
    assert code == 1
    assert "[Error] rank 1 failed (killed by signal 9); stopping ranks 0." in stdout, stdout[-2000:]
    assert not os.path.exists(f"/proc/{survivor}")
    with open(os.path.join(str(test_dir), "output", "0", "train_0.log")) as handle:
        assert "[Error] stopped by the launcher: rank 1 failed (killed by signal 9)" in handle.read()
