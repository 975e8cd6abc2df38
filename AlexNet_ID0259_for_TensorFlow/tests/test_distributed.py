"""Several workers off Ascend (distributed.py + the 8p launchers): the all-reduce arithmetic on the real graph,
identical weights on every rank, the contract and resume of the 8p launcher, bounded failure of a lost worker."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import contract
import distributed
import distributed_worker
import netns_hosts
from conftest import MODEL_DIR, environment

SMALL = ["--batch=4", "--val_photos=8", "--log_every=1"]


def tf_config(workers, index):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


@pytest.mark.slow
def test_two_workers_train_alexnet_exactly_like_one_process_on_the_global_batch(tmp_path):
    """The AlexNet graph without dropout, in float32 in every process (distributed_worker.py): 2 workers on
    halves of a batch of 4, from different random weights, start (after the broadcast) and end bit-identical,
    and end where one process ends on the whole batch, to 1e-6 (float32 sums in another order). The workers
    are two hosts (network namespaces joined by veth, as root; localhost otherwise): the all-reduce crosses a
    network interface."""
    worker = os.path.join(MODEL_DIR, "tests", "distributed_worker.py")
    with netns_hosts.workers(2) as (workers, on_host):
        procs = [subprocess.Popen(on_host(i, [sys.executable, worker, str(tmp_path / f"rank{i}.npz")]),
                                  env=environment(TF_CONFIG=tf_config(workers, i)), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for i in range(2)]
        distributed_worker.train(str(tmp_path / "single.npz"), cluster=None)
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs[0][-2000:] + outputs[1][-2000:]
    ranks = [np.load(tmp_path / f"rank{i}.npz") for i in range(2)]
    reference = np.load(tmp_path / "single.npz")
    half = len(reference.files) // 2  # the first half holds the weights before training, the second after
    for key in reference.files:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])
        np.testing.assert_allclose(ranks[1][key], reference[key], rtol=0, atol=1e-6)
    moved = [np.abs(reference[f"arr_{i + half}"] - reference[f"arr_{i}"]).max() for i in range(half)]
    assert min(moved) > 1e-4, moved  # the steps changed every kept tensor, by far more than the tolerance


def launch(model_copy, launcher, photos, *args):
    return subprocess.run(["bash", launcher, f"--data_path={photos}", *SMALL, *args], cwd=str(model_copy / "test"),
                          env=environment(RANK_SIZE="2"), capture_output=True, text=True, timeout=400)


def digests(log_text):
    return {line.split("weights digest ")[1].split(":")[0]: line.rsplit(" ", 1)[1]
            for line in log_text.splitlines() if "weights digest " in line}


@pytest.mark.slow
def test_full_8p_launcher_two_workers_and_resume(model_copy, photos):
    """RANK_SIZE=2 through the contract, twice (the second run resumes and appends to the logs): both ranks
    start and end with bit-identical weights and log the same global epoch figures; rank 0 alone writes
    checkpoints and images."""
    out = model_copy / "test" / "output"
    for run_args in (["--max_epoch=1", "--max_step=1"], ["--max_epoch=2", "--max_step=1", "--resume=True"]):
        proc = launch(model_copy, "train_full_8p.sh", photos, *run_args)
        result = contract.Run(str(model_copy), "train_full_8p.sh", proc.stdout)
        assert contract.check(result, proc.returncode) == [], proc.stdout[-3000:] + proc.stderr[-2000:]
        assert result.device_id == "1"
        assert result.summary["CaseName"] == "AlexNet_ID0259_for_TensorFlow_bs4_2p_acc"
        logs = [(out / str(r) / f"train_{r}.log").read_text() for r in range(2)]
        first, second = digests(logs[0]), digests(logs[1])
        assert set(first) == {"after broadcast", "at end"} and first == second, (first, second)
        assert first["after broadcast"] != first["at end"]
        epoch_lines = [[line for line in log.splitlines() if line.startswith(("test accuracy", "train accuracy"))]
                       for log in logs]
        assert epoch_lines[0] == epoch_lines[1] and len(epoch_lines[0]) == 2 * int(run_args[0].split("=")[1])
    assert "resuming from" in logs[0] and "after epoch 1" in logs[1] and "learning rate 0.002" in logs[1]
    assert "worker 1 of 2" in logs[1]
    assert (out / "0" / "model" / "model.ckpt-2.index").is_file() and (out / "0" / "acc.png").is_file()
    assert (out / "0" / "first_kernel_visualization" / "epoch_2.png").is_file()
    assert not glob.glob(str(out / "1" / "model*")) and not glob.glob(str(out / "1" / "*.png"))
    # Every rank keeps its own record (global batch, global held-out accuracy); rank 0 alone writes events.
    records = [json.loads((out / str(r) / "result.json").read_text()) for r in range(2)]
    assert [r["batch_size"] for r in records] == [8, 8] and records[0]["accuracy"] == records[1]["accuracy"]
    assert set(contract.read_scalars(str(out / "0"))) == {"train", "validation"}
    assert contract.read_scalars(str(out / "1")) == {}
    assert len(json.loads((out / "1" / "history.json").read_text())["loss"]) == 2


@pytest.mark.slow
def test_8p_help_and_bad_cluster_arguments(model_copy, photos):
    proc = launch(model_copy, "train_full_8p.sh", photos, "--help")
    assert proc.returncode == 0 and "--worker_hosts" in proc.stdout and "RANK_SIZE (default 8)" in proc.stdout
    proc = launch(model_copy, "train_full_8p.sh", photos, "--worker_hosts=h0:2222,h1:2222", "--task_index=2")
    assert proc.returncode == 1 and "--task_index=2 is not in 0..1" in proc.stdout, proc.stdout
    proc = subprocess.run(["bash", "train_performance_8p.sh", f"--data_path={photos}"], cwd=str(model_copy / "test"),
                          env=environment(RANK_SIZE="two"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "RANK_SIZE=two is not a positive integer" in proc.stdout, proc.stdout
