"""Several workers off Ascend (distributed.py + the 8p launchers): exact all-reduce arithmetic, identical
weights on every rank, the contract of the 8p launcher, and bounded failure when a worker dies."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import distributed_worker
import netns_hosts
import train
from conftest import MODEL_DIR, call, environment, one_error_line, run


def tf_config(workers, index):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def one_process_on_the_global_batch(features, targets, start):
    """The reference in float64: momentum SGD on the mean squared error of the whole batch, and the statistic
    updated from the whole batch's mean."""
    weights, velocity, statistic = start.astype(np.float64), np.zeros_like(start, np.float64), np.zeros(4)
    for _ in range(distributed_worker.STEPS):
        gradient = 2.0 / len(features) * features.T @ (features @ weights - targets)
        velocity = distributed_worker.MOMENTUM * velocity + gradient
        weights = weights - distributed_worker.LEARNING_RATE * velocity
        statistic = 0.5 * statistic + 0.5 * features.mean(axis=0)
    return weights, statistic


@pytest.mark.slow
def test_two_workers_train_exactly_like_one_process_on_the_global_batch(tmp_path):
    """A linear model and a batch-mean statistic: 2 workers on halves of the batch, starting from different
    random weights, end where one process ends on the whole batch (broadcast + mean all-reduce + averaging),
    within float32 rounding of five steps. The workers are two hosts (network namespaces joined by veth, as
    root; localhost otherwise): the broadcast and all-reduce cross a network interface."""
    worker = os.path.join(MODEL_DIR, "tests", "distributed_worker.py")
    with netns_hosts.workers(2) as (workers, on_host):
        procs = [subprocess.Popen(on_host(i, [sys.executable, worker, str(tmp_path / f"rank{i}.npz")]),
                                  env=environment(TF_CONFIG=tf_config(workers, i)), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for i in range(2)]
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs[0][-2000:] + outputs[1][-2000:]
    ranks = [np.load(tmp_path / f"rank{i}.npz") for i in range(2)]
    for key in ("start", "weights", "statistic"):
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])
    weights, statistic = one_process_on_the_global_batch(ranks[0]["features"], ranks[0]["targets"], ranks[0]["start"])
    np.testing.assert_allclose(ranks[0]["weights"], weights, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ranks[0]["statistic"], statistic, rtol=0, atol=1e-6)
    assert not np.allclose(ranks[0]["start"], weights, atol=1e-3)  # it did train


@pytest.mark.slow
def test_performance_8p_launcher_checks_its_ranks_before_touching_the_output(model_copy, small_data):
    """Its training path is train_full_8p.sh's (test_multi_host.py, and run for real by the smoke harness); what is
    its own here: a bad RANK_SIZE is one line, and a previous run's output is left as it was."""
    kept = model_copy / "test" / "output" / "0" / "ckpt" / "model.ckpt-7.index"
    kept.parent.mkdir(parents=True)
    kept.write_text("a previous run")
    proc = run(["bash", "train_performance_8p.sh", f"--data_path={small_data}"], cwd=model_copy / "test",
               RANK_SIZE="two", timeout=60)
    assert proc.returncode == 1 and "RANK_SIZE=two is not a positive integer" in proc.stdout, proc.stdout
    assert kept.read_text() == "a previous run"


def test_a_worker_whose_rank_0_never_answers_stops_with_one_line(small_data, tmp_path, monkeypatch):
    """The worker-list check (distributed.agree_on_workers) fails in Cluster.connect, inside the training: its
    ClusterError is one [Error] line, not a traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        rank_0 = f"127.0.0.1:{probe.getsockname()[1]}"  # closed again: nobody answers there
    monkeypatch.setenv("TF_CONFIG", tf_config([rank_0, "127.0.0.1:0"], 1))
    error = one_error_line(*call(train, f"--dataset_dir={small_data}", f"--model_dir={tmp_path}",
                                 "--num_classes=11", "--train_image_size=32", "--batch_size=8",
                                 "--max_train_steps=2", "--num_train_samples=320", "--collective_timeout=2"))
    assert error == f"[Error] rank 1: rank 0 at {rank_0} did not answer within 2 s (not started, or given another list)"
