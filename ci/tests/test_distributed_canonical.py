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
