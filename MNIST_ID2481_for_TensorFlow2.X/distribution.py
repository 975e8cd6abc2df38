"""Which tf.distribute strategy trains, and this process's place among the ranks.

One process: the strategy of --distribution_strategy (tensorflow/models `official` names). With TF_CONFIG set
(test/train_performance_8p_static_eval.sh writes it) this process is one worker of a MultiWorkerMirroredStrategy
cluster: gradients are summed over all replicas by the strategy's collective all-reduce. On Ascend the ranks
are separate processes joined by HCCL (--mul_rank_size, --mul_device_id) and each runs the default strategy.
"""
import hashlib
import json
import os
import re

import numpy as np
import tensorflow as tf

import distributed
from errors import UsageError


def _default(num_gpus):
    return tf.distribute.get_strategy()


def _one_device(num_gpus):
    return tf.distribute.OneDeviceStrategy("device:GPU:0" if num_gpus else "device:CPU:0")


def _mirrored(num_gpus):
    return tf.distribute.MirroredStrategy([f"device:GPU:{i}" for i in range(num_gpus)] or ["device:CPU:0"])


def _needs_cluster(num_gpus):
    raise UsageError("--distribution_strategy=multi_worker_mirrored: needs TF_CONFIG describing the workers (the "
                     "8p launcher test/train_performance_8p_static_eval.sh writes it)")


def _refused(num_gpus):
    usable = ", ".join(name for name, factory in FACTORIES.items() if factory is not _refused)
    raise UsageError(f"--distribution_strategy=parameter_server: not supported here; use {usable}")


# --distribution_strategy: name -> strategy for num_gpus local GPUs (the official flag's choices).
FACTORIES = {"off": _default, "one_device": _one_device, "mirrored": _mirrored,
             "multi_worker_mirrored": _needs_cluster, "parameter_server": _refused}
STRATEGIES = tuple(FACTORIES)


class Placement:
    """The strategy, this process's rank among rank_size, and how many of those processes the strategy itself
    spans (a TF_CONFIG cluster: all of them; otherwise 1, and other ranks, if any, are Ascend HCCL ranks)."""

    def __init__(self, name, strategy, rank, rank_size, workers):
        self.name, self.strategy = name, strategy
        self.rank, self.rank_size, self.workers = rank, rank_size, workers

    @property
    def chief(self):
        """Only rank 0 writes checkpoints, summaries and the SavedModel."""
        return self.rank == 0

    @property
    def local_replicas(self):
        return self.strategy.num_replicas_in_sync // self.workers

    def replica_batch(self, batch_size):
        """Each process takes batch_size images per step, split over its local replicas."""
        if batch_size % self.local_replicas:
            raise UsageError(f"--batch_size={batch_size}: not divisible by the {self.local_replicas} local replicas")
        return batch_size // self.local_replicas

    def describe(self, batch_size):
        return (f"{self.name}: rank {self.rank} of {self.rank_size}, {self.strategy.num_replicas_in_sync} "
                f"replicas, batch {self.replica_batch(batch_size)} per replica")


def place(strategy_name, num_gpus, mul_rank_size, mul_device_id, collective_timeout, ascend):
    """The Placement for these flags, TF_CONFIG (ignored on Ascend, whose ranks are the --mul_* flags) and
    num_gpus local GPUs."""
    cluster = None if ascend else cluster_from_env()
    if cluster is None:
        if ascend:
            return Placement("Ascend", tf.distribute.get_strategy(), mul_device_id, mul_rank_size, 1)
        if strategy_name is None:
            strategy_name = default_strategy(num_gpus)
        return Placement(strategy_name, FACTORIES[strategy_name](num_gpus), mul_device_id, mul_rank_size, 1)
    rank, size = cluster
    if (mul_rank_size, mul_device_id) not in ((1, 0), (size, rank)):
        raise UsageError(f"--mul_rank_size={mul_rank_size} --mul_device_id={mul_device_id}: TF_CONFIG makes this "
                         f"worker {rank} of {size}")
    if strategy_name not in (None, "multi_worker_mirrored"):
        raise UsageError(f"--distribution_strategy={strategy_name}: TF_CONFIG is set, which needs "
                         "multi_worker_mirrored")
    return Placement("multi-worker", create_cluster_strategy(collective_timeout), rank, size, size)


def default_strategy(num_gpus):
    """An unset --distribution_strategy in one process: official's (mirrored on several GPUs, else one_device),
    except on a machine without GPUs: `off`, the default strategy. It places every op on the CPU as one_device
    does, but one_device's step took about 1.35x the CPU time of the default strategy's (and of Keras `fit`'s)
    on this network (README). With GPUs visible but --num_gpus=0, one_device pins the ops to the CPU."""
    if num_gpus > 1:
        return "mirrored"
    return "one_device" if num_gpus or tf.config.list_physical_devices("GPU") else "off"


# What a collective raises when a worker died or stopped answering.
COLLECTIVE_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError)


def cluster_from_env():
    """(rank, number of workers) from TF_CONFIG, or None when it is unset (single-process training)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        workers, task = config["cluster"]["worker"], config["task"]
        rank = int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"TF_CONFIG: not a worker cluster description ({err})") from None
    if task.get("type") != "worker" or not 0 <= rank < len(workers):
        raise UsageError(f"TF_CONFIG: task {task} is not one of the {len(workers)} workers")
    return rank, len(workers)


def create_cluster_strategy(timeout_seconds):
    """A collective all-reduce strategy whose collectives fail after timeout_seconds instead of waiting forever
    for a worker that hangs; a worker that dies is detected sooner by the strategy's peer health check."""
    config = json.loads(os.environ["TF_CONFIG"])
    try:
        # Before the strategy starts this worker's server: one launcher per host gives every host its own copy
        # of the worker list, and copies that differ would otherwise hang until a collective times out.
        distributed.agree_on_workers(config["cluster"]["worker"], int(config["task"]["index"]), timeout_seconds)
    except distributed.ClusterError as err:
        raise UsageError(str(err)) from None
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (tf.errors.UnknownError, tf.errors.InvalidArgumentError) as err:
        address = json.loads(os.environ["TF_CONFIG"])
        address = address["cluster"]["worker"][address["task"]["index"]]
        raise UsageError(f"TF_CONFIG: cannot start this worker's server on {address} (port in use?): "
                         f"{first_line(err)}") from None


def first_line(err):
    return " ".join(str(getattr(err, "message", err)).split("\n")[0].split())


def lost_peer_message(err):
    """Names the lost worker and its host:port when TensorFlow's message says which
    (/job:worker/replica:0/task:<n>)."""
    task = re.search(r"/job:worker/replica:\d+/task:(\d+)", str(err.message))
    who = "another worker"
    if task:
        rank = int(task.group(1))
        workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
        who = f"worker rank {rank}" + (f" at {workers[rank]}" if rank < len(workers) else "")
    return f"lost contact with {who}: it died or stopped answering ({type(err).__name__} in a collective)"


def weights_digest(model):
    """sha256 of every weight's bytes: equal digests mean bitwise-equal replicas."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def check_same_start(placement, model):
    """Logs the weights' digest; across the workers of a cluster all must agree (a resume from a model_dir
    that only some workers see would otherwise train diverged replicas without a word)."""
    digest = weights_digest(model)
    print(f"weights sha256 initial: {digest}", flush=True)
    strategy = placement.strategy
    value = float(int(digest[:12], 16))  # 48 bits: sums over a few replicas stay exact in float64
    replicas = strategy.run(lambda: tf.constant(value, tf.float64))
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, replicas, axis=None)
    if float(total) != value * strategy.num_replicas_in_sync:
        raise UsageError(f"rank {placement.rank}: the workers start from different weights (a --model_dir "
                         "checkpoint that not every worker can read?)")
