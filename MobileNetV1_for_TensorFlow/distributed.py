"""Data-parallel training across processes with TensorFlow's own runtime (CPU/GPU; Ascend uses HCCL).

Every worker is one process that builds the same tf.compat.v1 graph and trains it on its own shard of
the data. The cluster comes from TF_CONFIG, the variable tf.distribute reads:

    {"cluster": {"worker": ["host0:port", "host1:port", ...]}, "task": {"type": "worker", "index": i}}

Each worker serves its graph from a tf.distribute.Server (gRPC) and the workers talk only through
TensorFlow's collective ops (ring all-reduce and broadcast):

- `broadcast_from_chief(variables)`: after initialisation or a restore, worker 0's value of every
  variable overwrites the others', so all workers start identical and a resume needs only worker 0's
  checkpoint.
- `all_reduce_mean(tensors)`: the gradients, averaged over workers in one all-reduce per step (the mean
  of the per-worker batch means is the mean over the global batch).
- `average_in_place(variables)`: variables each worker updates on its own (batch-norm moving
  statistics) are averaged after every step, which is what MEAN aggregation of a mirrored variable does,
  so the workers' weights stay identical.

Nothing is shared but these ops: each worker initialises, checkpoints (worker 0 only) and logs itself.
Every collective op carries a timeout, so a worker whose peer died or hangs fails with an error instead
of waiting forever (`describe_failure` turns it into one line naming the lost worker). On one host the
launcher (test/launcher_lib.sh, start_workers) stops the survivors as soon as one worker exits badly.

Use in a tf.compat.v1 training script (mobilenet_device.py and session_loop.py do exactly this):

    cluster = Cluster.from_environ()                  # None: train as one process
    check_ports_free(cluster)
    config = session_config(cluster, config)
    target = start_server(cluster, config).target     # the session's master
    opt = AllReduceOptimizer(opt, cluster)            # then opt.minimize(...) as usual
    step = average_in_place(cluster, non-trainable model variables)  # after the optimizer step
    hooks = [BroadcastHook(cluster), ...]             # first hook of the monitored session
    # every worker runs SingularMonitoredSession(master=target, config=config, hooks=hooks, ...)
    # (each initialises its own variables); only worker 0 gets a checkpoint_dir and a CheckpointSaverHook
"""
import hashlib
import json
import os
import re
import socket

import tensorflow as tf

GROUP_KEY = 1
CHIEF = 0

# What a collective op raises when a peer is gone or silent (the rest are errors of this worker's own).
PEER_ERRORS = (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.AbortedError,
               tf.errors.CancelledError)


class ClusterError(ValueError):
    """TF_CONFIG (or the ranks around it) cannot describe a cluster; one line for the user."""


class Cluster:
    def __init__(self, workers, index, timeout_seconds):
        self.workers = list(workers)
        self.index = index
        self.timeout_seconds = timeout_seconds
        self._next_instance = 0

    @classmethod
    def from_environ(cls, environ=None, timeout_seconds=300.0):
        """The cluster of TF_CONFIG, or None when TF_CONFIG is unset (single-process training)."""
        environ = os.environ if environ is None else environ
        text = environ.get("TF_CONFIG", "").strip()
        if not text:
            return None
        try:
            spec = json.loads(text)
            workers = spec["cluster"]["worker"]
            task = spec["task"]
            index = int(task["index"])
        except (ValueError, KeyError, TypeError) as err:
            raise ClusterError(f"TF_CONFIG: expected {{\"cluster\": {{\"worker\": [...]}}, \"task\": "
                               f"{{\"type\": \"worker\", \"index\": i}}}}, got {text!r} ({err})") from None
        if set(spec["cluster"]) != {"worker"} or task.get("type", "worker") != "worker":
            raise ClusterError("TF_CONFIG: only a cluster of 'worker' tasks is supported (no chief/ps/evaluator)")
        if not workers or not all(isinstance(w, str) and re.fullmatch(r"[^:\s]+:\d+", w) for w in workers):
            raise ClusterError(f"TF_CONFIG: workers must be host:port strings, got {workers!r}")
        if not 0 <= index < len(workers):
            raise ClusterError(f"TF_CONFIG: task index {index} is not in 0..{len(workers) - 1}")
        return cls(workers, index, timeout_seconds)

    @property
    def size(self):
        return len(self.workers)

    @property
    def is_chief(self):
        return self.index == CHIEF

    def device(self, index=None):
        return f"/job:worker/replica:0/task:{self.index if index is None else index}"

    def next_instance_key(self):
        """Collective ops pair up across workers by instance key: every worker builds the same graph in the
        same order, so the n-th collective op gets the same key everywhere."""
        self._next_instance += 1
        return self._next_instance


def rank_environ(cluster, environ):
    """environ with RANK_ID/RANK_SIZE of the cluster; values already set there must agree with TF_CONFIG."""
    for name, value in (("RANK_ID", cluster.index), ("RANK_SIZE", cluster.size)):
        if environ.get(name, str(value)) != str(value):
            raise ClusterError(f"{name}={environ[name]} disagrees with TF_CONFIG ({name} {value})")
    return {**environ, "RANK_ID": str(cluster.index), "RANK_SIZE": str(cluster.size)}


def check_ports_free(cluster):
    """This worker's port must be free before the server starts (gRPC would abort the process)."""
    host, port = cluster.workers[cluster.index].rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", int(port)))
        except OSError as err:
            raise ClusterError(f"TF_CONFIG: port {port} of worker {cluster.index} ({host}:{port}) cannot be "
                               f"used: {err.strerror}; choose another port") from None


def start_server(cluster, config=None):
    spec = tf.train.ClusterSpec({"worker": cluster.workers})
    return tf.distribute.Server(spec, job_name="worker", task_index=cluster.index, protocol="grpc",
                                config=config, start=True)


def session_config(cluster, config):
    """A copy of config that keeps this worker's ops on its own devices and names worker 0 as the leader
    that groups the collective ops."""
    config = tf.compat.v1.ConfigProto.FromString(config.SerializeToString())
    del config.device_filters[:]
    config.device_filters.append(cluster.device())
    config.experimental.collective_group_leader = cluster.device(CHIEF)
    return config


def _reduce_mean(cluster, tensor):
    return tf.raw_ops.CollectiveReduce(
        input=tensor, group_size=cluster.size, group_key=GROUP_KEY, instance_key=cluster.next_instance_key(),
        merge_op="Add", final_op="Div", subdiv_offsets=[0], timeout_seconds=cluster.timeout_seconds)


def all_reduce_mean(cluster, tensors):
    """The mean over workers of each float32 tensor, through a single all-reduce of their concatenation."""
    flat = tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)
    mean = _reduce_mean(cluster, flat)
    sizes = [t.shape.num_elements() for t in tensors]
    return [tf.reshape(part, t.shape) for part, t in zip(tf.split(mean, sizes), tensors)]


def average_in_place(cluster, variables):
    """An op that replaces each variable by its mean over workers."""
    means = all_reduce_mean(cluster, [v.read_value() for v in variables])
    return tf.group(*[v.assign(m) for v, m in zip(variables, means)])


def broadcast_from_chief(cluster, variables):
    """An op that sets every variable to worker 0's value (worker 0 sends, the others receive)."""
    assigns = []
    for var in variables:
        key = cluster.next_instance_key()
        shape = var.shape
        common = dict(group_size=cluster.size, group_key=GROUP_KEY, instance_key=key, shape=shape,
                      timeout_seconds=cluster.timeout_seconds)
        if cluster.is_chief:
            assigns.append(tf.raw_ops.CollectiveBcastSend(input=var.read_value(), **common))
        else:
            assigns.append(var.assign(tf.raw_ops.CollectiveBcastRecv(T=var.dtype.base_dtype, **common)))
    return tf.group(*assigns)


class AllReduceOptimizer(tf.compat.v1.train.Optimizer):
    """Wraps a tf.compat.v1 optimizer so that it applies the workers' mean gradient (the counterpart of
    NPUDistributedOptimizer on Ascend)."""

    def __init__(self, optimizer, cluster):
        super().__init__(use_locking=False, name="AllReduce")
        self._optimizer = optimizer
        self._cluster = cluster

    def compute_gradients(self, *args, **kwargs):
        pairs = [(g, v) for g, v in self._optimizer.compute_gradients(*args, **kwargs) if g is not None]
        means = all_reduce_mean(self._cluster, [tf.convert_to_tensor(g) for g, _ in pairs])
        return list(zip(means, [v for _, v in pairs]))

    def apply_gradients(self, *args, **kwargs):
        return self._optimizer.apply_gradients(*args, **kwargs)

    def get_slot(self, *args, **kwargs):
        return self._optimizer.get_slot(*args, **kwargs)

    def get_slot_names(self, *args, **kwargs):
        return self._optimizer.get_slot_names(*args, **kwargs)

    def variables(self):
        return self._optimizer.variables()


class BroadcastHook(tf.compat.v1.train.SessionRunHook):
    """Runs broadcast_from_chief on all global variables once the session is initialised or restored, and
    prints a digest of the model variables then and at the end: equal digests in every worker's log show
    that the workers started from and ended with bit-identical weights."""

    def __init__(self, cluster):
        self._cluster = cluster
        self._op = None
        self._variables = None

    def begin(self):
        self._op = broadcast_from_chief(self._cluster, tf.compat.v1.global_variables())
        self._variables = tf.compat.v1.model_variables()

    def _print_digest(self, session, when):
        digest = hashlib.sha256()
        for value in session.run(self._variables):
            digest.update(value.tobytes())
        print(f"worker {self._cluster.index}: weights digest {when}: {digest.hexdigest()[:16]}", flush=True)

    def after_create_session(self, session, coord):
        session.run(self._op)
        self._print_digest(session, "after broadcast")

    def end(self, session):
        self._print_digest(session, "at end")


def unreachable_workers(cluster, timeout=3.0):
    """The other workers whose port refuses a TCP connection (their process is gone)."""
    lost = []
    for index, address in enumerate(cluster.workers):
        if index == cluster.index:
            continue
        host, port = address.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
        except OSError:
            lost.append(f"worker {index} ({address})")
    return lost


def describe_failure(cluster, error):
    """One line for a collective op that failed: which workers are gone, or that one stopped answering."""
    first = getattr(error, "message", str(error)).strip().splitlines()[0]
    lost = unreachable_workers(cluster)
    if lost:
        return f"lost {', '.join(lost)}: it no longer accepts connections (process ended?); worker " \
               f"{cluster.index} stops ({type(error).__name__}: {first})"
    return f"the other workers did not answer within {cluster.timeout_seconds:g} s (one is stuck or too slow); " \
           f"worker {cluster.index} stops ({type(error).__name__}: {first})"

