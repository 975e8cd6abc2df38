"""The vendored distributed.py (canonical copy): cluster description, rank checks, failure lines, Ascend way.

Two-worker training through it is tested in the AlexNet and MobileNetV1 suites, which use the copies."""
import json
import socket
import sys
import types

import pytest

tf = pytest.importorskip("tensorflow")
from ci.canonical import distributed  # noqa: E402


def tf_config(workers, index):
    return {"TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}


def test_no_tf_config_is_one_process_and_several_ranks_need_one():
    assert distributed.ranks(1, 0, on_ascend=False, environ={}) is None
    with pytest.raises(distributed.ClusterError, match="2 ranks off Ascend need TF_CONFIG"):
        distributed.ranks(2, 0, on_ascend=False, environ={})


def test_the_cluster_must_agree_with_the_ranks_asked_for():
    env = tf_config(["a:1", "b:2"], 1)
    cluster = distributed.ranks(2, 1, on_ascend=False, environ=env)
    assert (cluster.size, cluster.index, cluster.is_chief) == (2, 1, False)
    assert cluster.device() == "/job:worker/replica:0/task:1"
    with pytest.raises(distributed.ClusterError, match="rank 0 of 2 disagrees with TF_CONFIG"):
        distributed.ranks(2, 0, on_ascend=False, environ=env)
    assert cluster.rank_environ({"PATH": "/bin"}) == {"PATH": "/bin", "RANK_ID": "1", "RANK_SIZE": "2"}
    with pytest.raises(distributed.ClusterError, match="RANK_ID=0 disagrees"):
        cluster.rank_environ({"RANK_ID": "0"})


@pytest.mark.parametrize("text, message", [
    ("{not json", "expected"),
    (json.dumps({"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"index": 0}}), "only a cluster of 'worker'"),
    (json.dumps({"cluster": {"worker": ["a"]}, "task": {"index": 0}}), "host:port"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"index": 3}}), "task index 3 is not in 0..0"),
])
def test_bad_tf_config_is_one_line(text, message):
    with pytest.raises(distributed.ClusterError, match=message) as err:
        distributed.Cluster.from_environ({"TF_CONFIG": text})
    assert "\n" not in str(err.value)


def test_busy_port_and_lost_worker_are_named():
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            gone = closed.getsockname()[1]
        cluster = distributed.Cluster([f"localhost:{port}", f"127.0.0.1:{gone}"], 0, timeout_seconds=5)
        with pytest.raises(distributed.ClusterError, match=f"port {port} of worker 0"):
            cluster.check_port_free()
        line = cluster.describe_failure(tf.errors.UnavailableError(None, None, "peer down\nmore"))
    assert line == (f"lost worker 1 (127.0.0.1:{gone}): it no longer accepts connections (process ended?); "
                    "worker 0 stops (UnavailableError: peer down)")


def test_session_config_pins_the_worker_and_unfuses_bf16():
    from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig

    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = RewriterConfig.ON
    out = distributed.Cluster(["a:1", "b:2"], 1, 5).session_config(config)
    assert list(out.device_filters) == ["/job:worker/replica:0/task:1"]
    assert out.experimental.collective_group_leader == "/job:worker/replica:0/task:0"
    assert out.graph_options.rewrite_options.remapping == RewriterConfig.OFF
    assert config.graph_options.rewrite_options.remapping != RewriterConfig.OFF  # the caller's copy is untouched


def test_collective_keys_follow_graph_order():
    cluster = distributed.Cluster(["a:1", "b:2"], 0, 5)
    with tf.Graph().as_default():
        x = tf.compat.v1.get_variable("x", [3], initializer=tf.compat.v1.zeros_initializer())
        cluster.mean_all([x.read_value(), tf.ones([2, 2])])
        cluster.broadcast([x])
        keys = [op.get_attr("instance_key") for op in tf.compat.v1.get_default_graph().get_operations()
                if op.type.startswith("Collective")]
    assert keys == [1, 2]


@pytest.fixture
def fake_npu_bridge(monkeypatch):
    """Stub adapter modules that record calls: the Ascend code runs, no NPU is pretended at run time."""
    calls = []
    hccl_ops = types.SimpleNamespace(
        broadcast=lambda tensor, root_rank: calls.append(("broadcast", root_rank)) or [tf.identity(tensor[0])],
        allreduce=lambda tensor, op: calls.append(("allreduce", op)) or tensor * 2.0)
    optimizer_module = types.SimpleNamespace(NPUDistributedOptimizer=lambda opt: ("npu-distributed", opt))
    for name, module in {"npu_bridge": types.ModuleType("npu_bridge"),
                         "npu_bridge.hccl": types.SimpleNamespace(hccl_ops=hccl_ops),
                         "npu_bridge.hccl.hccl_ops": hccl_ops,
                         "npu_bridge.estimator": types.ModuleType("npu_bridge.estimator"),
                         "npu_bridge.estimator.npu": types.ModuleType("npu_bridge.estimator.npu"),
                         "npu_bridge.estimator.npu.npu_optimizer": optimizer_module}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_ascend_uses_hccl_and_the_npu_distributed_optimizer(fake_npu_bridge):
    assert distributed.ranks(1, 0, on_ascend=True) is None
    hccl = distributed.ranks(8, 3, on_ascend=True, environ=tf_config(["a:1"], 0))  # TF_CONFIG is not read
    assert (hccl.size, hccl.index, hccl.is_chief) == (8, 3, False)
    assert hccl.connect("config") == ("config", "")
    assert hccl.optimizer("adam") == ("npu-distributed", "adam")
    with tf.Graph().as_default():
        v = tf.compat.v1.get_variable("v", [2], initializer=tf.compat.v1.ones_initializer())
        hccl.broadcast([v])
        mean = hccl.mean(tf.constant([4.0]))
        hccl.average_in_place([v])
        with tf.compat.v1.Session() as sess:
            assert sess.run(mean).tolist() == [1.0]  # the stub sums to twice the value; mean divides by 8
    assert fake_npu_bridge == [("broadcast", 0), ("allreduce", "sum"), ("allreduce", "sum")]
    assert "rank 3" in hccl.describe_failure(RuntimeError("x"))


def test_digest_tells_equal_weights_from_different_ones():
    import numpy as np

    a = [np.arange(4, dtype=np.float32), np.ones(3, np.float32)]
    assert distributed.digest(a) == distributed.digest([x.copy() for x in a])
    assert distributed.digest(a) != distributed.digest([a[0], a[1] * 2])


def check_in(*workers_and_ranks, wait=5.0):
    """Runs agree_on_workers for each (worker list, rank) at once, as the workers of a cluster do; returns what
    each one raised (its ClusterError's line, or None) and the seconds all took."""
    import threading
    import time

    results = [None] * len(workers_and_ranks)

    def one(position, workers, rank):
        try:
            distributed.agree_on_workers(workers, rank, wait)
        except distributed.ClusterError as err:
            results[position] = str(err)

    threads = [threading.Thread(target=one, args=(i, *pair)) for i, pair in enumerate(workers_and_ranks)]
    start = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.time() - start


def free_ports(count):
    probes = [socket.socket() for _ in range(count)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in probes]
    for probe in probes:
        probe.close()
    return ports


def test_workers_with_the_same_list_agree_and_leave_rank_0s_port_free():
    ports = free_ports(3)
    workers = [f"localhost:{port}" for port in ports]
    assert check_in((workers, 2), (workers, 0), (workers, 1))[0] == [None, None, None]
    distributed.Cluster(workers, 0, 5).check_port_free()  # TensorFlow's server can bind it next


def test_a_worker_with_another_list_and_rank_0_stop_at_once_with_one_line_each():
    port, other = free_ports(2)
    ours, theirs = [f"localhost:{port}", f"localhost:{other}"], [f"localhost:{port}", f"localhost:{other + 1}"]
    (zero, one), seconds = check_in((ours, 0), (theirs, 1), wait=60)
    lists = f"(rank 0: {','.join(ours)}; rank 1: {','.join(theirs)})"
    assert one == f"rank 1: the worker list differs from rank 0's {lists}; give every worker the same list " \
                  "(--worker_hosts)"
    assert zero == f"rank 0: rank 1's worker list differs from rank 0's {lists}; give every worker the same list " \
                   "(--worker_hosts)"
    assert seconds < 10


def test_two_workers_with_one_rank_and_a_missing_rank_0_are_named():
    workers = [f"localhost:{port}" for port in free_ports(3)]
    # Rank 2 does not come: rank 0 waits for it (until `wait`) after it found the second rank 1.
    (zero, first, second), _ = check_in((workers, 0), (workers, 1), (workers, 1), wait=3.0)
    assert zero.startswith("rank 0: the workers at 127.0.0.1 and 127.0.0.1 both are rank 1")
    refused = "rank 1: rank 0 stopped the cluster: the workers at 127.0.0.1 and 127.0.0.1 both are rank 1"
    assert sorted([first, second], key=str) == [None, refused]  # the first to arrive was taken as rank 1
    (alone,), seconds = check_in((workers, 1), wait=1.0)
    assert alone == f"rank 1: rank 0 at {workers[0]} did not answer within 1 s (not started, or given another list)"
    (waiting,), _ = check_in((workers, 0), wait=1.0)
    assert waiting == (f"rank 0: rank(s) 1 ({workers[1]}), 2 ({workers[2]}) did not check in within 1 s (not "
                       "started, or given another rank 0)")
