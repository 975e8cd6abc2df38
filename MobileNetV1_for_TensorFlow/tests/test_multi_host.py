"""The documented several-machines command: the 8p launcher started once per host, each with the same
--worker_hosts and its own --task_index. The hosts are two network namespaces joined by veth links (netns_hosts;
as root), else both workers on localhost; each host has its own copy of the model folder, as separate machines
do. No launcher sees the other host's worker: a lost peer must be noticed by the worker itself."""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import contract
import netns_hosts
from conftest import environment
from test_launchers import SMOKE

@contextlib.contextmanager
def one_launcher_per_host(model_copy, tmp_path, data, launcher, *args):
    """([(launcher process, its host's model folder)] for hosts 0 and 1, [host:port of each worker]); whatever
    still runs on the way out is killed."""
    folders = [model_copy, tmp_path / "host1" / model_copy.name]
    shutil.copytree(model_copy, folders[1])
    with netns_hosts.workers(2) as (addresses, on_host):
        procs = [subprocess.Popen(on_host(rank, ["bash", f"{folder}/test/{launcher}", f"--data_path={data}",
                                                 *SMOKE, "--batch_size=8", *args,
                                                 f"--worker_hosts={','.join(addresses)}", f"--task_index={rank}"]),
                                  env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True) for rank, folder in enumerate(folders)]
        try:
            yield list(zip(procs, folders)), addresses
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


def digests(log_text):
    return dict(re.findall(r"^worker \d: weights digest (.+): (\w+)$", log_text, re.M))


@pytest.mark.slow
def test_two_hosts_one_launcher_each_train_one_model(model_copy, small_data, tmp_path):
    """The accuracy launcher: identical weights on both ranks, rank 0 alone checkpoints and evaluates (its EMA
    weights), each host's summary and record are complete for its own rank."""
    launcher = "train_full_8p.sh"
    with one_launcher_per_host(model_copy, tmp_path, small_data, launcher, "--max_train_steps=5") as (hosts, _):
        outs = [proc.communicate(timeout=300)[0] for proc, _ in hosts]
    outputs = [folder / "test" / "output" / str(rank) for rank, (_, folder) in enumerate(hosts)]
    for rank, (proc, folder) in enumerate(hosts):
        assert proc.returncode == 0, f"rank {rank}: {outs[rank][-3000:]}"
        # Each host's folder holds its own rank's complete summary, record and training log, nothing of the other's.
        assert sorted(p.name for p in outputs[rank].parent.iterdir() if p.is_dir()) == [str(rank)]
        run = contract.Run(str(folder), launcher, outs[rank], device_id=str(rank))
        summary, problems = contract.find_summary(run)
        assert summary, problems
        # Rank 0 evaluates, on its own host; the other host's accuracy is NA by design.
        expected = [] if rank == 0 else ["summary TrainAccuracy = 'NA' is not a number (NA only in a perf run)"]
        assert contract.check_summary(run, summary) == expected
        assert contract.check_result(run) == []
        assert run.summary["CaseName"] == "MobileNetV1_for_TensorFlow_bs8_2p_acc"
    records = [json.loads((outputs[rank] / "result.json").read_text()) for rank in (0, 1)]
    assert [(r["rank_id"], r["batch_size"], r["steps"]) for r in records] == [(0, 16, 5), (1, 16, 5)]
    assert 0.0 <= records[0]["accuracy"] <= 1.0 and records[1]["accuracy"] is None
    assert "weights: EMA" in (outputs[0] / "eval_0.log").read_text()
    assert "rank 0 runs on another host; it evaluates there (TrainAccuracy NA here)" in outs[1]
    logs = [(outputs[rank] / f"train_{rank}.log").read_text() for rank in (0, 1)]
    first, second = digests(logs[0]), digests(logs[1])
    assert set(first) == {"after broadcast", "at end"} and first == second, (first, second)
    assert first["after broadcast"] != first["at end"]
    assert "worker 1 of 2" in logs[1] and "ips:" in logs[1]
    assert (outputs[0] / "ckpt" / "0" / "model.ckpt-5.index").is_file()
    assert not list(outputs[1].glob("ckpt/*/model.ckpt*"))


@pytest.mark.slow
def test_the_survivor_of_a_killed_host_stops_within_the_collective_timeout_naming_it(model_copy, small_data,
                                                                                      tmp_path):
    """Rank 1's worker is killed (SIGKILL: its host's launcher sees that, rank 0's does not): rank 0's worker
    stops by itself with one line naming rank 1's host:port, and rank 0's launcher exits 1."""
    with one_launcher_per_host(model_copy, tmp_path, small_data, "train_performance_8p.sh", "--max_train_steps=5000",
                               "--collective_timeout=20") as (hosts, addresses):
        (survivor, folder0), (victim, folder1) = hosts
        deadline = time.time() + 180
        log = folder1 / "test" / "output" / "1" / "train_1.log"
        while not (log.is_file() and "weights digest after broadcast" in log.read_text()):
            assert time.time() < deadline and survivor.poll() is None, "rank 1 did not start training"
            time.sleep(0.5)
        header = "".join(victim.stdout.readline() for _ in range(2))
        os.kill(int(re.search(r"^rank 1: pid (\d+),", header, re.M).group(1)), signal.SIGKILL)
        killed = time.time()
        out = survivor.communicate(timeout=120)[0]
        waited = time.time() - killed
    assert survivor.returncode == 1 and waited < 20 + 15, f"rank 0's launcher ended {waited:.0f} s after the kill"
    assert "[Error] rank 0 failed (exit status 1)" in out
    log0 = (folder0 / "test" / "output" / "0" / "train_0.log").read_text()
    errors = [line for line in log0.splitlines() if line.startswith("[Error]")]
    assert len(errors) == 1 and f"lost worker 1 ({addresses[1]})" in errors[0], errors
