"""Data-parallel training: the step's arithmetic in this process (quick), the 8p launcher with 2 workers
(stopped by SIGTERM, then resumed) and losing a worker (slow). Float32 throughout (bitwise comparisons between
replicas)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import contract
import mnist_main
import netns_hosts
import training
from conftest import finish, launched, run, start, wait_for_step

LAUNCHER = "train_performance_8p_static_eval.sh"
ARGS = ["--batch_size=64", "--momentum=0.9", "--seed=1", "--precision_mode=must_keep_origin_dtype"]


def rank_log(model_copy, rank):
    return (model_copy / "test" / "output" / str(rank) / f"train_{rank}.log").read_text()


def markers(log, name):
    return re.findall(rf"^weights sha256 {name}: (\w+)$", log, re.M)


@pytest.mark.slow
def test_two_workers_stop_together_resume_meet_the_contract_and_stay_bitwise_in_sync(model_copy, tiny_data):
    command = ["bash", LAUNCHER, f"--data_path={tiny_data}", *ARGS]
    with launched((command + ["--train_epochs=100"], model_copy / "test", {"RANK_SIZE": "2"})) as (launcher,):
        wait_for_step(model_copy / "test" / "output" / "1" / "train_1.log", 3)
        launcher.send_signal(signal.SIGTERM)
        code, out = finish(launcher, 120)
    assert code == 143, out  # workers.sh: a launcher stopped by SIGTERM exits 143 once its ranks have saved
    # The request rode on a step's all-reduce: both ranks stopped after the same step, rank 0 saved.
    stops = [re.findall(r"^\[Error\] stopped by SIGTERM at step (\d+); checkpoint (\S+) saved", rank_log(model_copy, r),
                        re.M) for r in (0, 1)]
    assert len(stops[0]) == 1 and stops[0] == stops[1], stops
    stopped_at = int(stops[0][0][0])
    assert stops[0][0][1] == str(model_copy / "test" / "output" / "0" / "ckpt" / f"model.ckpt-{stopped_at}")
    epochs = stopped_at // 8 + 2  # each worker trains on half of the 1,024 images: 512 // 64 = 8 steps per epoch

    proc = run(command + [f"--train_epochs={epochs}", "--resume=True"], cwd=model_copy / "test",
               env={"RANK_SIZE": "2"})
    # As in the original, the summary and the metrics come from the last rank's folder.
    result = contract.Run(str(model_copy), LAUNCHER, proc.stdout, device_id="1")
    assert contract.check(result, proc.returncode, min_accuracy=0.5, loss_must_fall=True) == [], proc.stdout
    assert result.summary["CaseName"] == "MNIST_ID2481_for_TensorFlow2.X_bs64_2p_static_eval_perf"
    assert result.summary["RankSize"] == "2"
    logs = [rank_log(model_copy, rank) for rank in (0, 1)]
    assert "multi-worker: rank 0 of 2, 2 replicas, batch 64 per replica" in logs[0]
    assert all(f"resuming from {stops[0][0][1]} at step {stopped_at}" in log for log in logs)
    assert [int(n) for n in re.findall(r"^step:(\d+) ", logs[1], re.M)] == list(range(1, 8 * epochs + 1))
    assert len(result.losses) == 8 * epochs
    # Every rank's result.json in its own folder, with the global batch and images/sec; imgs/s in the log is
    # the rank's own share.
    records = [json.loads((model_copy / "test" / "output" / str(r) / "result.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["batch_size"], r["rank_size"]) for r in records] == [(0, 128, 2), (1, 128, 2)]
    assert records[0]["final_loss"] == records[1]["final_loss"] == result.losses[-1]
    own_fps = float(re.findall(r"^imgs/s: ([\d.]+)$", logs[1], re.M)[-1])
    assert result.value("ActualFPS") == pytest.approx(2 * own_fps, abs=0.02)
    # Same start (rank 0's values broadcast), same all-reduced updates: bitwise-equal weights and losses.
    assert markers(logs[0], "initial") == markers(logs[1], "initial") != []
    assert markers(logs[0], "final") == markers(logs[1], "final") != []
    assert markers(logs[0], "final") != markers(logs[0], "initial")
    steps = [re.findall(r"^step:\d+ ,loss: \S+", log, re.M) for log in logs]
    assert steps[0] == steps[1]
    # Only rank 0 writes checkpoints, TensorBoard files (training resumed at the stop) and the SavedModel.
    output = model_copy / "test" / "output"
    assert (output / "0" / "ckpt" / f"model.ckpt-{8 * epochs}.index").is_file()
    assert (output / "0" / "ckpt" / "saved_model" / "saved_model.pb").is_file()
    losses = contract.read_scalars(str(output / "0" / "ckpt"))["train"]["loss"]
    assert losses[-1][0] == 8 * epochs and losses[0][0] <= stopped_at + 10 and losses[-1][1] < losses[0][1]
    assert sorted(p.name for p in (output / "1").iterdir()) == sorted(
        ["train_1.log", "result.json", f"{result.summary['CaseName']}.log",
         f"train_{result.summary['CaseName']}_loss.txt"])


def test_two_replicas_step_like_one_replica_on_the_union_of_their_batches():
    """In this process: two replicas (the conftest's two logical CPUs) against one, 4 steps of the training loop
    in float32 with dropout off (its masks are drawn per replica, so they cannot match)."""
    rng = np.random.RandomState(0)
    images, labels = rng.rand(256, 28, 28, 1).astype("float32"), rng.randint(0, 10, 256)

    def train(devices):
        keras.utils.set_random_seed(1)
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            model = mnist_main.create_model()
            model.layers[-2].rate = 0.0
            optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
            optimizer.build(model.trainable_variables)
        initial = model.get_weights()
        # Consecutive per-replica batches of one stream: the union of a step's batches is 64 consecutive images.
        data = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(64 // len(devices))
        loop = training.TrainingLoop(strategy, model, optimizer, data, data, global_batch=64)
        logs = loop.fit([], epochs=1, first_step=0, train_steps=4, eval_steps=1, epochs_between_evals=1)
        return initial, model.get_weights(), logs["loss"]

    start, one, loss_one = train(["/cpu:0"])
    _, two, loss_two = train(["/cpu:0", "/cpu:1"])
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)) < 1e-6
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(one, start)) > 1e-3  # the 4 steps moved the weights
    assert loss_one == pytest.approx(loss_two, abs=1e-6) and loss_one > 0


def worker_pid(launcher_output, rank):
    return int(re.search(rf"^rank {rank}: pid (\d+),", launcher_output, re.M).group(1))


LONG = ["--batch_size=32", "--train_epochs=100", "--precision_mode=must_keep_origin_dtype"]


@pytest.mark.slow
def test_killing_a_worker_stops_the_launcher_and_the_other_worker(model_copy, tiny_data):
    output = model_copy / "test" / "output"
    with launched((["bash", LAUNCHER, f"--data_path={tiny_data}", *LONG], model_copy / "test",
                   {"RANK_SIZE": "2"})) as (launcher,):
        wait_for_step(output / "1" / "train_1.log", 5)
        header = "".join(launcher.stdout.readline() for _ in range(3))
        survivor = worker_pid(header, 0)
        os.kill(worker_pid(header, 1), signal.SIGKILL)
        killed_at = time.time()
        code, out = finish(launcher, 120)
        print(f"launcher ended {time.time() - killed_at:.1f} s after the kill")
    assert code != 0
    assert "[Error] rank 1 failed (killed by signal 9); stopping ranks 0." in out
    assert not os.path.exists(f"/proc/{survivor}"), "the surviving worker still runs"
    assert "[Error] stopped by the launcher: rank 1 failed (killed by signal 9)" in rank_log(model_copy, 0)
    assert not list((output / "1").glob("*_perf.log")), "no summary for a failed run"


@pytest.mark.slow
def test_a_worker_on_another_host_notices_its_hung_peer(tmp_path, model_copy, tiny_data):
    """The documented multi-host command, one launcher per host. The hosts are two network namespaces joined by
    a veth link (netns_hosts; as root), else both on localhost. No launcher sees the other host's worker, so the
    survivor must notice by itself that its peer stopped answering (frozen with SIGSTOP, as a host that hangs
    or drops off the network: no socket is closed), within --collective_timeout, and name it with its host."""
    other = tmp_path / "host1"
    subprocess.run(["cp", "-r", str(model_copy), str(other)], check=True)
    with netns_hosts.workers(2) as (addresses, on_host):
        specs = [(on_host(index, ["bash", f"{folder}/test/{LAUNCHER}", f"--data_path={tiny_data}", *LONG,
                                  "--collective_timeout=30", f"--worker_hosts={','.join(addresses)}",
                                  f"--task_index={index}"]), folder, None)
                 for index, folder in enumerate((model_copy, other))]
        with launched(*specs) as tasks:
            wait_for_step(other / "test" / "output" / "1" / "train_1.log", 5)
            peer = worker_pid("".join(tasks[1].stdout.readline() for _ in range(2)), 1)
            os.kill(peer, signal.SIGSTOP)
            stopped_at = time.time()
            code, out = finish(tasks[0], 120)
            waited = time.time() - stopped_at
            os.kill(peer, signal.SIGKILL)
            assert finish(tasks[1], 30)[0] != 0
    assert code != 0 and waited < 30 + 60, f"rank 0's launcher ended {waited:.0f} s after rank 1 froze"
    assert "[Error] rank 0 failed (exit status 1). The end of" in out
    assert (f"[Error] rank 0: lost contact with worker rank 1 at {addresses[1]}: it died or stopped answering"
            in rank_log(model_copy, 0))
