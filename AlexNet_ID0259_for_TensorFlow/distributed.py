"""Several AlexNet processes training as one (data parallel): HCCL on Ascend, TensorFlow's own runtime elsewhere.

`ranks(args)` picks the way for --mul_rank_size / --mul_device_id and the environment:
- one rank: None, the plain single-process run;
- Ascend (npu_bridge importable): `HcclRanks`, the original's NPUDistributedOptimizer plus HCCL broadcast
  and all-reduce (the launcher's RANK_TABLE_FILE describes the devices);
- elsewhere: `Cluster`, from TF_CONFIG, the variable tf.distribute reads
      {"cluster": {"worker": ["host0:port", ...]}, "task": {"type": "worker", "index": i}}
  Each worker serves its graph from a tf.distribute.Server (gRPC) and talks to the others only through
  TensorFlow's collective ops (ring all-reduce and broadcast), each with a timeout, so that a worker whose
  peer is gone stops with an error (`describe_failure` names the lost worker) instead of waiting forever.

Both offer the three operations the training graph needs (training_graph.py, through alexnet_device.py for
the first two; AlexNet has no batch norm, so nothing else is per worker):
    ranks.optimizer(opt)       applies the workers' mean gradient, i.e. the gradient of the global batch
    ranks.broadcast(variables) worker 0's values everywhere; run after initialisation or worker 0's restore
    ranks.mean(tensor)         the mean over workers (the epoch's loss, accuracy and held-out counts)
"""
import hashlib
import json
import os
import re
import socket

import tensorflow as tf
from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

GROUP_KEY = 1
CHIEF = 0

# What a collective op raises when a peer is gone or silent (other errors are this worker's own).
PEER_ERRORS = (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.AbortedError,
               tf.errors.CancelledError)


class ClusterError(ValueError):
    """The ranks cannot form a cluster (TF_CONFIG, flags, a busy port); one line for the user."""


def ranks(args, on_ascend, environ=None, timeout_seconds=300.0):
    """HcclRanks, Cluster or None (one rank) for args.mul_rank_size / args.mul_device_id."""
    environ = os.environ if environ is None else environ
    if on_ascend:
        return HcclRanks(args.mul_rank_size, args.mul_device_id) if args.mul_rank_size > 1 else None
    cluster = Cluster.from_environ(environ, timeout_seconds)
    if cluster is None:
        if args.mul_rank_size > 1:
            raise ClusterError(f"--mul_rank_size {args.mul_rank_size}: several ranks off Ascend need TF_CONFIG "
                               "(a tf.distribute cluster); start them with test/train_*_8p.sh")
        return None
    if (cluster.size, cluster.index) != (args.mul_rank_size, args.mul_device_id):
        raise ClusterError(f"--mul_rank_size {args.mul_rank_size} / --mul_device_id {args.mul_device_id} disagree "
                           f"with TF_CONFIG (worker {cluster.index} of {cluster.size})")
    return cluster


class Cluster:
    def __init__(self, workers, index, timeout_seconds):
        self.workers = list(workers)
        self.index = index
        self.timeout_seconds = timeout_seconds
        self._instance = 0

    @classmethod
    def from_environ(cls, environ, timeout_seconds):
        """The cluster of TF_CONFIG, or None when it is unset."""
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

    def _device(self, index):
        return f"/job:worker/replica:0/task:{index}"

    def connect(self, config):
        """Starts this worker's server; returns (session config, session target). The config keeps this
        worker's ops on its own devices and names worker 0 as the leader that groups the collective ops."""
        host, port = self.workers[self.index].rsplit(":", 1)
        with socket.socket() as probe:  # gRPC would abort the whole process on a busy port
            try:
                probe.bind(("", int(port)))
            except OSError as err:
                raise ClusterError(f"TF_CONFIG: port {port} of worker {self.index} ({host}:{port}) cannot be "
                                   f"used: {err.strerror}; choose another port") from None
        config = tf.compat.v1.ConfigProto.FromString(config.SerializeToString())
        del config.device_filters[:]
        config.device_filters.append(self._device(self.index))
        config.experimental.collective_group_leader = self._device(CHIEF)
        rewrites = config.graph_options.rewrite_options
        if rewrites.auto_mixed_precision_onednn_bfloat16 == RewriterConfig.ON:
            # Behind a server, the remapper's bfloat16 Conv2D+BiasAdd fusion stops the run ("_FusedConv2D:
            # bfloat16 is not in the list of allowed values"); unfused, the bf16 ops run.
            rewrites.remapping = RewriterConfig.OFF
        server = tf.distribute.Server(tf.train.ClusterSpec({"worker": self.workers}), job_name="worker",
                                      task_index=self.index, protocol="grpc", config=config, start=True)
        return config, server.target

    def _key(self):
        """Collective ops pair up across workers by instance key: every worker builds the same graph in the
        same order, so the n-th collective op gets the same key everywhere."""
        self._instance += 1
        return self._instance

    def _common(self):
        return dict(group_size=self.size, group_key=GROUP_KEY, instance_key=self._key(),
                    timeout_seconds=self.timeout_seconds)

    def mean(self, tensor):
        return tf.raw_ops.CollectiveReduce(input=tensor, merge_op="Add", final_op="Div", subdiv_offsets=[0],
                                           **self._common())

    def mean_all(self, tensors):
        """mean() of each tensor through one all-reduce of their concatenation (one ring pass per step)."""
        flat = self.mean(tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0))
        parts = tf.split(flat, [t.shape.num_elements() for t in tensors])
        return [tf.reshape(p, t.shape) for p, t in zip(parts, tensors)]

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

    def describe_failure(self, error):
        """One line for a collective op that failed: which workers are gone, or that one stopped answering."""
        first = getattr(error, "message", str(error)).strip().splitlines()[0]
        lost = []
        for index, address in enumerate(self.workers):
            host, port = address.rsplit(":", 1)
            try:
                if index != self.index:
                    socket.create_connection((host, int(port)), timeout=3.0).close()
            except OSError:
                lost.append(f"worker {index} ({address})")
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
    """The Ascend way (npu_bridge, HCCL over the devices of RANK_TABLE_FILE). Not run in this project's CI."""

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

    def describe_failure(self, error):
        return f"rank {self.index}: a collective operation failed ({type(error).__name__})"


def digest(values):
    """A short hash of arrays: equal digests in every worker's log mean bit-identical weights."""
    sha = hashlib.sha256()
    for value in values:
        sha.update(value.tobytes())
    return sha.hexdigest()[:16]
