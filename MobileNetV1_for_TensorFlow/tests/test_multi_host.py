"""The documented several-machines command: the 8p launcher started once per host, each with the same
--worker_hosts and its own --task_index. The hosts are two network namespaces joined by veth links (netns_hosts;
as root), else both workers on localhost; each host has its own copy of the model folder, as separate machines
do. (The killed-host case is tested in AlexNet's suite: it is the same distributed.py.)"""
import os
import re
import shutil
import signal
import subprocess

import pytest

import contract
import netns_hosts
from conftest import environment
from test_launchers import SMOKE

LAUNCHER = "train_performance_8p.sh"


def digests(log_text):
    return dict(re.findall(r"^worker \d: weights digest (.+): (\w+)$", log_text, re.M))


@pytest.mark.slow
def test_two_hosts_one_launcher_each_train_one_model(model_copy, small_data, tmp_path):
    folders = [model_copy, tmp_path / "host1" / model_copy.name]
    shutil.copytree(model_copy, folders[1])
    with netns_hosts.workers(2) as (addresses, on_host):
        procs = [subprocess.Popen(on_host(rank, ["bash", f"{folder}/test/{LAUNCHER}", f"--data_path={small_data}",
                                                 *SMOKE, "--batch_size=8", "--max_train_steps=5",
                                                 f"--worker_hosts={','.join(addresses)}", f"--task_index={rank}"]),
                                  env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True) for rank, folder in enumerate(folders)]
        try:
            outs = [proc.communicate(timeout=300)[0] for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
    outputs = [folder / "test" / "output" / str(rank) for rank, folder in enumerate(folders)]
    for rank, folder in enumerate(folders):
        assert procs[rank].returncode == 0, f"rank {rank}: {outs[rank][-3000:]}"
        # Each host's folder holds its own rank's complete summary and training log, nothing of the other's.
        assert sorted(p.name for p in outputs[rank].parent.iterdir() if p.is_dir()) == [str(rank)]
        run = contract.Run(str(folder), LAUNCHER, outs[rank], device_id=str(rank))
        summary, problems = contract.find_summary(run)
        assert summary and contract.check_summary(run, summary) == [], problems
        assert run.summary["CaseName"] == "MobileNetV1_for_TensorFlow_bs8_2p_perf"
    logs = [(outputs[rank] / f"train_{rank}.log").read_text() for rank in (0, 1)]
    first, second = digests(logs[0]), digests(logs[1])
    assert set(first) == {"after broadcast", "at end"} and first == second, (first, second)
    assert first["after broadcast"] != first["at end"]
    assert (outputs[0] / "ckpt" / "0" / "model.ckpt-5.index").is_file()
    assert not list(outputs[1].glob("ckpt/*/model.ckpt*"))
