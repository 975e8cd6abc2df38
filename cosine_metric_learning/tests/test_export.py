"""Freeze (deep_sort loading both ways), export .mat files, finalize, and MARS end to end."""
import os
import sys

import numpy as np
import scipy.io
import tensorflow as tf
from PIL import Image

from conftest import run, run_script, value

VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp", "ReadVariableOp", "AssignVariableOp",
                "VarIsInitializedOp"}

LOADER = r'''
import sys
import numpy as np
import tensorflow as tf

pb, images_npy, out_npy, way = sys.argv[1:]
graph_def = tf.compat.v1.GraphDef()
with open(pb, "rb") as handle:
    graph_def.ParseFromString(handle.read())
images = np.load(images_npy)
if way == "tf1":  # deep_sort's ImageEncoder
    tf.compat.v1.disable_eager_execution()
    session = tf.compat.v1.Session()
    tf.import_graph_def(graph_def, name="net")
    inp = tf.compat.v1.get_default_graph().get_tensor_by_name("net/images:0")
    out = tf.compat.v1.get_default_graph().get_tensor_by_name("net/features:0")
    assert len(inp.get_shape()) == 4 and inp.get_shape().as_list()[1:] == [128, 64, 3]
    assert len(out.get_shape()) == 2 and out.get_shape().as_list()[-1] == 128
    run = lambda batch: session.run(out, {inp: batch})
else:  # deep_sort's TF2 port: wrap_function + prune
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    fn = wrapped.prune(wrapped.graph.get_tensor_by_name("images:0"), wrapped.graph.get_tensor_by_name("features:0"))
    run = lambda batch: fn(tf.constant(batch)).numpy()
parts = [run(images[i:i + 32]) for i in range(0, len(images), 32)]
assert [len(p) for p in parts] == [32, 32, 6]
np.save(out_npy, np.concatenate(parts))
'''


def checkpoint_features(checkpoint, bgr_uint8):
    """The training-code network in inference mode, restored from the checkpoint."""
    from nets.deep_sort import network_definition as net_def
    import train_app
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, 128, 64, 3])
        features, _ = net_def.create_network(net_def.preprocess_bgr_uint8(images), False)
        saver = tf.compat.v1.train.Saver(train_app.trunk_variables())
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, checkpoint)
            return sess.run(features, {images: bgr_uint8})


def test_freeze_loads_like_deep_sort(trained_market, market100, tmp_path):
    log_dir, _ = trained_market
    proc = run_script("train_market1501.py", "--mode=freeze", f"--restore_path={log_dir / 'accept'}",
                      f"--dataset_dir={market100}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pb = tmp_path / "market1501.pb"
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    assert not {n.op for n in graph_def.node} & VARIABLE_OPS

    folder = os.path.join(market100, "bounding_box_test")
    names = sorted(os.listdir(folder))[:70]
    rgb = np.stack([np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names])
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    np.save(tmp_path / "images.npy", bgr)
    expected = checkpoint_features(tf.train.latest_checkpoint(str(log_dir / "accept")), bgr)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1, atol=1e-5)
    for way in ("tf1", "tf2"):
        out = tmp_path / f"{way}.npy"
        loaded = run([sys.executable, "-c", LOADER, str(pb), str(tmp_path / "images.npy"), str(out), way],
                     cwd=tmp_path)
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        np.testing.assert_allclose(np.load(out), expected, atol=1e-5)


def test_export_market_mat_files(trained_market, market100, tmp_path):
    log_dir, _ = trained_market
    sdk = tmp_path / "sdk"
    proc = run_script("train_market1501.py", "--mode=export", f"--restore_path={log_dir / 'accept'}",
                      f"--dataset_dir={market100}", f"--sdk_dir={sdk}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    checkpoint = tf.train.latest_checkpoint(str(log_dir / "accept"))
    for mat, subset in (("feat_test.mat", "bounding_box_test"), ("feat_query.mat", "query")):
        data = scipy.io.loadmat(sdk / mat)
        assert [k for k in data if not k.startswith("__")] == ["features"]
        features = data["features"]
        names = sorted(n for n in os.listdir(os.path.join(market100, subset)) if n.endswith(".jpg"))
        assert features.dtype == np.float32 and features.shape == (len(names), 128)
        if subset == "bounding_box_test":
            assert names[0].startswith("-1_") and any(n.startswith("0000_") for n in names)
        picks = [0, len(names) - 1]
        rgb = np.stack([tf.io.decode_jpeg(tf.io.read_file(os.path.join(market100, subset, names[i]))).numpy()
                        for i in picks])  # the same JPEG decoder as the export pipeline
        np.testing.assert_allclose(features[picks], checkpoint_features(checkpoint, rgb[..., ::-1]), atol=1e-4)


def test_mars_train_export_evaluate_finalize(small_mars, tmp_path):
    import shutil
    data = tmp_path / "mars"
    shutil.copytree(small_mars, data)
    log_dir = tmp_path / "logs"
    proc = run_script("train_mars.py", f"--dataset_dir={data}", f"--log_dir={log_dir}", "--run_id=m",
                      "--number_of_steps=3", "--batch_size=16", "--loss_mode=triplet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "324 training images of 36 identities" in proc.stdout

    proc = run_script("train_mars.py", "--mode=export", f"--dataset_dir={data}", f"--restore_path={log_dir / 'm'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    features = scipy.io.loadmat(data / "feat_test.mat")["features"]
    listed = (data / "info" / "test_name.txt").read_text().split()
    assert features.dtype == np.float32 and features.shape == (len(listed), 128)
    assert listed[0].startswith("00-1") and any(n.startswith("0000") for n in listed)

    proc = run_script("train_mars.py", "--mode=evaluate_test", f"--dataset_dir={data}", "--loss_mode=triplet",
                      f"--restore_path={log_dir / 'm'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "10 queries" in proc.stdout and "sqeuclidean" in proc.stdout
    assert 0 <= value(proc.stdout, "mAP :") <= 1

    proc = run_script("train_mars.py", "--mode=finalize", f"--dataset_dir={data}",
                      f"--restore_path={log_dir / 'm'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {name for name, _ in tf.train.list_variables(str(tmp_path / "mars.ckpt"))}
    assert "fc1/weights" in names and "conv1_1/conv1_1/bn/moving_mean" in names
    assert not any(n.startswith("ball/") or "Adam" in n or n == "global_step" for n in names)
