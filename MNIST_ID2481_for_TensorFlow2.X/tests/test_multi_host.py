"""The documented several-machines command: the 8p launcher started once per host, each with the same
--worker_hosts and its own --task_index. The hosts are network namespaces joined by veth links (netns_hosts; as
root), else every worker on localhost; each host has its own copy of the model folder, as separate machines do.
No launcher sees another host's worker."""
import re
import shutil
import time

import pytest

import contract
import netns_hosts
from conftest import finish, launched

LAUNCHER = "train_performance_8p_static_eval.sh"
# The smallest run: 1,024 images over 3 workers of batch 64 is 5 steps each.
ARGS = ["--batch_size=64", "--train_epochs=1", "--seed=1", "--precision_mode=must_keep_origin_dtype"]


def host_folders(model_copy, tmp_path, count):
    """The model folder of each host: host 0 uses model_copy, the others a copy of it."""
    folders = [model_copy]
    for index in range(1, count):
        folders.append(tmp_path / f"host{index}" / model_copy.name)
        shutil.copytree(model_copy, folders[-1])
    return folders


def launcher_per_host(folders, addresses, on_host, data, *args):
    return [(on_host(index, ["bash", f"{folder}/test/{LAUNCHER}", f"--data_path={data}", *ARGS, *args,
                             f"--worker_hosts={','.join(addresses)}", f"--task_index={index}"]), folder, None)
            for index, folder in enumerate(folders)]


def rank_log(folder, rank):
    return (folder / "test" / "output" / str(rank) / f"train_{rank}.log").read_text()


@pytest.mark.slow
def test_three_hosts_one_launcher_each_train_one_model(model_copy, tiny_data, tmp_path):
    folders = host_folders(model_copy, tmp_path, 3)
    with netns_hosts.workers(3) as (addresses, on_host):
        with launched(*launcher_per_host(folders, addresses, on_host, tiny_data)) as tasks:
            results = [finish(task, 300) for task in tasks]
    for rank, (code, out) in enumerate(results):
        assert code == 0, f"rank {rank}: {out[-3000:]}"
        # Each host's folder holds its own rank's complete summary, record and training log, nothing of the others.
        output = folders[rank] / "test" / "output"
        assert sorted(p.name for p in output.iterdir() if p.is_dir()) == [str(rank)]
        run = contract.Run(str(folders[rank]), LAUNCHER, out, device_id=str(rank))
        summary, problems = contract.find_summary(run)
        assert summary and contract.check_summary(run, summary) == [], problems
        assert contract.check_result(run) == []
        assert run.summary["CaseName"] == f"{folders[rank].name}_bs64_3p_static_eval_perf"
        assert run.summary["RankSize"] == "3"
    logs = [rank_log(folder, rank) for rank, folder in enumerate(folders)]
    assert "multi-worker: rank 2 of 3, 3 replicas" in logs[2]
    finals = [re.findall(r"^weights sha256 final: (\w+)$", log, re.M) for log in logs]
    assert finals[0] == finals[1] == finals[2] and len(finals[0]) == 1, finals
    assert re.findall(r"^weights sha256 initial: (\w+)$", logs[0], re.M) != finals[0]
    # Rank 0 alone writes checkpoints (into its own host's folder).
    assert list((folders[0] / "test" / "output" / "0" / "ckpt").glob("model.ckpt-*.index"))
    assert not any((folder / "test" / "output" / str(rank) / "ckpt").exists()
                   for rank, folder in enumerate(folders) if rank)


@pytest.mark.slow
def test_a_host_given_another_worker_list_stops_at_once_with_one_line(model_copy, tiny_data, tmp_path):
    """Rank 1's launcher was given another port for a third worker: both launchers end within seconds (not after
    --collective_timeout), each worker's log with one [Error] line that shows both lists."""
    folders = host_folders(model_copy, tmp_path, 2)
    with netns_hosts.workers(2) as (addresses, on_host):
        specs = launcher_per_host(folders, addresses, on_host, tiny_data, "--collective_timeout=120")
        other = [*addresses, addresses[1].replace(":2222", ":2223")]
        specs[1][0][-2] = f"--worker_hosts={','.join(other)}"
        started = time.time()
        with launched(*specs) as tasks:
            results = [finish(task, 120) for task in tasks]
        waited = time.time() - started
    assert [code for code, _ in results] == [1, 1], results
    assert waited < 60, f"the launchers ended {waited:.0f} s after they started"
    lists = f"(rank 0: {','.join(addresses)}; rank 1: {','.join(other)})"
    errors = [[line for line in rank_log(folder, rank).splitlines() if line.startswith("[Error]")]
              for rank, folder in enumerate(folders)]
    assert errors[1] == [f"[Error] rank 1: the worker list differs from rank 0's {lists}; give every worker the "
                         "same list (--worker_hosts)"], errors
    assert errors[0] == [f"[Error] rank 0: rank 1's worker list differs from rank 0's {lists}; give every worker "
                         "the same list (--worker_hosts)"], errors
