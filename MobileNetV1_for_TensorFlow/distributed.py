"""Several processes training one tf.compat.v1 graph as one (data parallel): HCCL on Ascend, TensorFlow's own
collective runtime elsewhere. Vendored: AlexNet and MobileNetV1 hold byte-identical copies of
ci/canonical/distributed.py (ci/vendored.toml).

`ranks(rank_size, rank_id, on_ascend)` picks the way:
- one rank: None, the plain single-process run;
- Ascend (npu_bridge importable): `HcclRanks`, NPUDistributedOptimizer plus HCCL broadcast and all-reduce
  over the devices of the launcher's RANK_TABLE_FILE;
- elsewhere: `Cluster`, from TF_CONFIG, the variable tf.distribute reads
      {"cluster": {"worker": ["host0:port", ...]}, "task": {"type": "worker", "index": i}}
  Each worker serves its graph from a tf.distribute.Server (gRPC) and talks to the others only through
  collective ops (ring all-reduce, broadcast), each with a timeout, so that a worker whose peer is gone
  stops with an error (`describe_failure` names the lost worker) instead of waiting forever.

Both offer what a training script needs:
    ranks.connect(config)            -> (session config, session target) for this rank
    ranks.optimizer(opt)             applies the ranks' mean gradient, i.e. the gradient of the global batch
    ranks.broadcast(variables)       rank 0's values everywhere: run after initialisation or rank 0's restore
    ranks.mean(tensor)               the mean over ranks (epoch metrics, held-out counts)
    ranks.average_in_place(vars)     variables each rank updates alone (batch-norm statistics) -> their mean
    ranks.describe_failure(error)    one line for a collective op that failed

`agree_on_workers(workers, index, wait)` (called by `Cluster.connect`, and by MNIST TF2's distribution.py, which
holds a copy of this file for it) checks, before TensorFlow starts, that every worker was given the same list.
"""
import hashlib
import json
import os
import re
import socket
import time

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

GROUP_KEY = 1
CHIEF = 0

# What a collective op raises when a peer is gone or silent (other errors are this rank's own).
PEER_ERRORS = (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.AbortedError,
               tf.errors.CancelledError)


class ClusterError(ValueError):
    """The ranks cannot form a cluster (TF_CONFIG, rank flags, a busy port); one line for the user."""


def ranks(rank_size, rank_id, on_ascend, environ=None, timeout_seconds=300.0):
    """HcclRanks, Cluster or None (one rank). rank_size / rank_id: what the launcher asked for."""
    environ = os.environ if environ is None else environ
    if on_ascend:
        return HcclRanks(rank_size, rank_id) if rank_size > 1 else None
    cluster = Cluster.from_environ(environ, timeout_seconds)
    if cluster is None:
        if rank_size > 1:
            raise ClusterError(f"{rank_size} ranks off Ascend need TF_CONFIG (a tf.distribute cluster); start "
                               "them with the test/train_*_8p.sh launchers")
        return None
    if (cluster.size, cluster.index) != (rank_size, rank_id):
        raise ClusterError(f"rank {rank_id} of {rank_size} disagrees with TF_CONFIG (worker {cluster.index} of "
                           f"{cluster.size})")
    return cluster


class Cluster:
    """The workers of TF_CONFIG; this process is worker `index`."""

    def __init__(self, workers, index, timeout_seconds):
        self.workers = list(workers)
        self.index = index
        self.timeout_seconds = timeout_seconds
        self.server = None
        self._instance = 0

    @classmethod
    def from_environ(cls, environ=None, timeout_seconds=300.0):
        """The cluster of TF_CONFIG, or None when it is unset."""
        environ = os.environ if environ is None else environ
        text = environ.get("TF_CONFIG", "").strip()
        if not text:
            return None
        try:
            spec = json.loads(text)
            workers, task = spec["cluster"]["worker"], spec["task"]
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

    def rank_environ(self, environ):
        """environ with RANK_ID/RANK_SIZE of the cluster; values already set there must agree with TF_CONFIG."""
        for name, value in (("RANK_ID", self.index), ("RANK_SIZE", self.size)):
            if environ.get(name, str(value)) != str(value):
                raise ClusterError(f"{name}={environ[name]} disagrees with TF_CONFIG ({name} {value})")
        return {**environ, "RANK_ID": str(self.index), "RANK_SIZE": str(self.size)}

    def check_port_free(self):
        """gRPC aborts the whole process on a busy port, so the port is probed first."""
        bound_socket(self.workers, self.index).close()

    def session_config(self, config):
        """A copy of config that keeps this worker's ops on its own devices and names worker 0 as the leader
        that groups the collective ops."""
        config = tf.compat.v1.ConfigProto.FromString(config.SerializeToString())
        del config.device_filters[:]
        config.device_filters.append(self.device())
        config.experimental.collective_group_leader = self.device(CHIEF)
        rewrites = config.graph_options.rewrite_options
        if rewrites.auto_mixed_precision_onednn_bfloat16 == RewriterConfig.ON:
            # Behind a server, the remapper's bfloat16 Conv2D+BiasAdd fusion stops the run ("_FusedConv2D:
            # bfloat16 is not in the list of allowed values"); unfused, the bf16 ops run.
            rewrites.remapping = RewriterConfig.OFF
        return config

    def connect(self, config):
        """Starts this worker's server; returns (session config, session target)."""
        agree_on_workers(self.workers, self.index, self.timeout_seconds)
        self.check_port_free()
        config = self.session_config(config)
        self.server = tf.distribute.Server(tf.train.ClusterSpec({"worker": self.workers}), job_name="worker",
                                           task_index=self.index, protocol="grpc", config=config, start=True)
        return config, self.server.target

    def _common(self):
        """Collective ops pair up across workers by instance key: every worker builds the same graph in the
        same order, so the n-th collective op gets the same key everywhere."""
        self._instance += 1
        return dict(group_size=self.size, group_key=GROUP_KEY, instance_key=self._instance,
                    timeout_seconds=self.timeout_seconds)

    def mean(self, tensor):
        return tf.raw_ops.CollectiveReduce(input=tensor, merge_op="Add", final_op="Div", subdiv_offsets=[0],
                                           **self._common())

    def mean_all(self, tensors):
        """mean() of each tensor through one all-reduce of their concatenation (one ring pass per step)."""
        flat = self.mean(tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0))
        parts = tf.split(flat, [t.shape.num_elements() for t in tensors])
        return [tf.reshape(p, t.shape) for p, t in zip(parts, tensors)]

    def average_in_place(self, variables):
        means = self.mean_all([v.read_value() for v in variables])
        return tf.group(*[v.assign(m) for v, m in zip(variables, means)])

    def broadcast(self, variables):
        assigns = []
        for var in variables:
            common = dict(shape=var.shape, **self._common())
            if self.is_chief:
                assigns.append(tf.raw_ops.CollectiveBcastSend(input=var.read_value(), **common))
            else:
                assigns.append(var.assign(tf.raw_ops.CollectiveBcastRecv(T=var.dtype.base_dtype, **common)))
        return tf.group(*assigns)

    def optimizer(self, optimizer):
        return AllReduceOptimizer(optimizer, self)

    def unreachable_workers(self, timeout=3.0):
        """The other workers whose port refuses a TCP connection (their process is gone)."""
        lost = []
        for index, address in enumerate(self.workers):
            host, port = address.rsplit(":", 1)
            try:
                if index != self.index:
                    socket.create_connection((host, int(port)), timeout=timeout).close()
            except OSError:
                lost.append(f"worker {index} ({address})")
        return lost

    def describe_failure(self, error):
        """One line for a collective op that failed: which workers are gone, or that one stopped answering."""
        first = getattr(error, "message", str(error)).strip().splitlines()[0]
        lost = self.unreachable_workers()
        what = (f"lost {', '.join(lost)}: it no longer accepts connections (process ended?)" if lost else
                f"the other workers did not answer within {self.timeout_seconds:g} s (one is stuck or too slow)")
        return f"{what}; worker {self.index} stops ({type(error).__name__}: {first})"


class AllReduceOptimizer(tf.compat.v1.train.Optimizer):
    """A tf.compat.v1 optimizer that applies the workers' mean gradient (NPUDistributedOptimizer's role)."""

    def __init__(self, optimizer, cluster):
        super().__init__(use_locking=False, name="AllReduce")
        self._optimizer = optimizer
        self._cluster = cluster

    def compute_gradients(self, *args, **kwargs):
        pairs = [(g, v) for g, v in self._optimizer.compute_gradients(*args, **kwargs) if g is not None]
        means = self._cluster.mean_all([tf.convert_to_tensor(g) for g, _ in pairs])
        return list(zip(means, [v for _, v in pairs]))

    def apply_gradients(self, *args, **kwargs):
        return self._optimizer.apply_gradients(*args, **kwargs)

    def get_slot(self, *args, **kwargs):
        return self._optimizer.get_slot(*args, **kwargs)

    def get_slot_names(self, *args, **kwargs):
        return self._optimizer.get_slot_names(*args, **kwargs)

    def variables(self):
        return self._optimizer.variables()


class HcclRanks:
    """The Ascend way (npu_bridge, HCCL over the devices of RANK_TABLE_FILE)."""

    def __init__(self, size, index):
        self.size = size
        self.index = index
        self.is_chief = index == CHIEF

    def connect(self, config):
        return config, ""

    def optimizer(self, optimizer):
        from npu_bridge.estimator.npu.npu_optimizer import NPUDistributedOptimizer
        return NPUDistributedOptimizer(optimizer)

    def broadcast(self, variables):
        from npu_bridge.hccl import hccl_ops
        return tf.group(*[v.assign(hccl_ops.broadcast(tensor=[v], root_rank=CHIEF)[0]) for v in variables])

    def mean(self, tensor):
        from npu_bridge.hccl import hccl_ops
        return hccl_ops.allreduce(tensor, "sum") / self.size

    def average_in_place(self, variables):
        return tf.group(*[v.assign(self.mean(v.read_value())) for v in variables])

    def describe_failure(self, error):
        return f"rank {self.index}: a collective operation failed ({type(error).__name__})"


def digest(values):
    """A short hash of arrays: equal digests in every worker's log mean bit-identical weights."""
    sha = hashlib.sha256()
    for value in values:
        sha.update(value.tobytes())
    return sha.hexdigest()[:16]


# After a disagreement, how long rank 0 still answers the workers that have not checked in yet, so that they stop
# at once too instead of waiting for a rank 0 that is gone.
GRACE_SECONDS = 10.0


def agree_on_workers(workers, index, wait):
    """Checks that this worker's list (its TF_CONFIG) is rank 0's, before any TensorFlow server starts.

    With one launcher per host, each host is given its own copy of the list; copies that differ (a typo, a stale
    list, one host more) would leave TensorFlow waiting for workers that never come until a collective times
    out, minutes later. So every rank connects to rank 0's address and port (as its own list says) and sends
    its list; rank 0 listens there, with a plain socket, until every other rank has checked in, answers each
    with its own list, and closes the port for its TensorFlow server. Raises ClusterError (one line) when the
    lists differ (on rank 0 and on that rank), two workers claim the same index, or rank 0 / a rank does not
    show up within `wait` seconds."""
    host, port = workers[0].rsplit(":", 1)
    deadline = time.time() + wait
    if index != CHIEF:
        answer = _ask_rank_0(host, int(port), {"rank": index, "workers": workers}, deadline, wait)
        if answer is None:
            raise ClusterError(f"rank {index}: {workers[0]} does not answer as rank 0 of this cluster (another "
                               "program on that port?)")
        if answer["workers"] != workers:
            raise ClusterError(f"rank {index}: the worker list differs from rank 0's (rank 0: "
                               f"{','.join(map(str, answer['workers']))}; rank {index}: {','.join(workers)}); give "
                               "every worker the same list (--worker_hosts)")
        if answer.get("problem"):
            raise ClusterError(f"rank {index}: rank 0 stopped the cluster: {answer['problem']}")
        return
    with bound_socket(workers, CHIEF) as server:
        server.listen(len(workers))
        _serve_list(server, workers, deadline, wait)


def bound_socket(workers, index):
    """A socket bound to worker index's port on every interface (as TensorFlow's server binds it), or ClusterError.
    SO_REUSEADDR as gRPC sets it: a listening socket makes the port busy, connections closing on it do not."""
    host, port = workers[index].rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("", int(port)))
    except OSError as err:
        sock.close()
        raise ClusterError(f"TF_CONFIG: port {port} of worker {index} ({host}:{port}) cannot be used: "
                           f"{err.strerror}; choose another port") from None
    return sock


def _send(conn, message):
    conn.sendall((json.dumps(message) + "\n").encode())


def _receive(conn):
    """The peer's one-line JSON message (a dict with a list of workers), or None when it speaks otherwise."""
    try:
        message = json.loads(conn.makefile(encoding="utf-8").readline())
    except (OSError, ValueError):
        return None
    return message if isinstance(message, dict) and isinstance(message.get("workers"), list) else None


def _ask_rank_0(host, port, message, deadline, wait):
    """Rank 0's answer to message; retries until deadline, as rank 0 may start later than this worker."""
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise ClusterError(f"rank {message['rank']}: rank 0 at {host}:{port} did not answer within "
                                   f"{wait:g} s (not started, or given another list)") from None
            time.sleep(0.5)
    with conn:  # this side closes first: TIME_WAIT stays here, not on the port rank 0's server binds next
        conn.settimeout(30)
        _send(conn, message)
        return _receive(conn)


def _serve_list(server, workers, deadline, wait):
    """Rank 0's side: answers every rank that checks in; raises ClusterError on the first disagreement once the
    others have checked in too (or GRACE_SECONDS later)."""
    arrived, heard, problem = {}, set(), None  # heard: every index that checked in, agreeing or not
    while not heard >= set(range(1, len(workers))):
        if time.time() > deadline:
            break
        server.settimeout(max(0.1, deadline - time.time()))
        try:
            conn, (peer, _) = server.accept()
        except socket.timeout:
            continue
        with conn:
            conn.settimeout(30)
            message = _receive(conn)
            rank = message.get("rank") if message else None
            if not isinstance(rank, int):
                continue  # not a worker of this cluster (a port scan?)
            heard.add(rank)
            if message["workers"] != workers:
                found = (f"rank {rank}'s worker list differs from rank 0's (rank 0: {','.join(workers)}; rank "
                         f"{rank}: {','.join(map(str, message['workers']))})")
            elif rank in arrived:
                found = f"the workers at {arrived[rank]} and {peer} both are rank {rank}"
            else:
                found = None if 0 < rank < len(workers) else f"a worker at {peer} claims rank {rank}"
            _send(conn, {"workers": workers, "problem": problem or found})
            try:
                conn.recv(1)  # until the other side closes
            except OSError:
                pass
        if found is None:
            arrived[rank] = peer
        elif problem is None:
            problem = found
            deadline = min(deadline, time.time() + GRACE_SECONDS)
    if problem:
        raise ClusterError(f"rank 0: {problem}; give every worker the same list (--worker_hosts)")
    missing = [f"{r} ({workers[r]})" for r in range(1, len(workers)) if r not in arrived]
    if missing:
        raise ClusterError(f"rank 0: rank(s) {', '.join(missing)} did not check in within {wait:g} s (not "
                           "started, or given another rank 0)")
