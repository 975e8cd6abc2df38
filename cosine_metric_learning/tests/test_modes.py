"""Every mode through train_app.main in-process (quick tier): train, warm start, eval,
evaluate_test, export, freeze (loaded both ways deep_sort loads it), finalize, and MARS end to end."""
import json
import os
import re
import resource
import shutil

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from PIL import Image

import checkpoints
import contract
import readme
import run_report
import train_market1501
import train_mars
from conftest import SHORT_ARGS, SHORT_STEPS, call, value
from nets.deep_sort import network_definition as net_def

# Every op type of the frozen graph (no variables); README "freeze" says which TensorFlow versions have them.
FROZEN_OPS = {"Placeholder", "Const", "Identity", "Cast", "ReverseV2", "RealDiv", "Mul", "AddV2", "Conv2D",
              "BiasAdd", "FusedBatchNormV3", "Elu", "MaxPool", "Reshape", "MatMul", "Square", "Sum", "Sqrt"}


# TensorBoard scalars of a training run, the original's tag names (its train_app.py and network); the
# cross-entropy, its accuracy and the head's scale only with cosine-softmax, as in the original.
TRAIN_TAGS = {"magnet_loss", "triplet_loss", "total_loss", "weight_loss", "learning_rate", "images_per_sec"}
COSINE_TAGS = {"cross_entropy_loss", "classification_accuracy", "ball/scale"}


def progress_lines(out, unit):
    """The counts of the [progress] lines in unit (with ZOO_PROGRESS_EVERY tiny: one per update but the first)."""
    return [int(n) for n in re.findall(rf"^\[progress\] \S+ \S+ {unit} (\d+)/\d+ .*elapsed \S+ ETA \S+$", out, re.M)]


def checkpoint_features(checkpoint, bgr_uint8):
    """The training code's network in inference mode, restored from the checkpoint."""
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, 128, 64, 3])
        features, _ = net_def.create_network(net_def.preprocess_bgr_uint8(images), False)
        saver = tf.compat.v1.train.Saver(checkpoints.trunk_variables())
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, checkpoint)
            return sess.run(features, {images: bgr_uint8})


def test_training_prints_what_the_launchers_read(short_run):
    log_dir, out = short_run
    # The first line names device and precision; float32 was asked for, so float32 on every CPU kind.
    assert re.match(r"device: (CPU|GPU), precision: float32 \(must_keep_origin_dtype\)\n", out), out[:300]
    assert [int(s) for s in re.findall(r"^step (\d+), loss [\d.]+ \(cosine-softmax [\d.]+, magnet [\d.]+, "
                                       r"triplet [\d.]+\), [\d.]+ images/sec$", out, re.M)] == [1, 2, 3, 4]
    assert [int(s) for s in re.findall(r"^progress: step (\d+), ", out, re.M)] == [2, 4]
    assert value(out, "Final Performance images/sec :") > 0 and value(out, "Final Performance ms/step :") > 0
    assert tf.train.latest_checkpoint(str(log_dir / "short")).endswith(f"model.ckpt-{SHORT_STEPS}")
    assert progress_lines(out, "step") == [2, 3, 4]  # the first update starts the clock
    scalars = contract.read_scalars(str(log_dir))
    assert list(scalars) == ["short"] and set(scalars["short"]) == TRAIN_TAGS | COSINE_TAGS
    for tag, points in scalars["short"].items():
        assert [step for step, _ in points] == [2, 4], tag
    total = [value for _, value in scalars["short"]["total_loss"]]
    assert total[0] != total[1] and dict(scalars["short"]["learning_rate"])[4] == pytest.approx(0.01)
    # No --result_dir: the record goes to the run folder. float32, batch 16, 4 steps: the first 2 untimed.
    record = json.loads((log_dir / "short" / "result.json").read_text())
    assert record["model"] == "cosine_metric_learning" and record["launcher"] == "train_market1501.py"
    assert (record["precision"], record["batch_size"], record["steps"], record["warmup_steps"]) == ("float32", 16, 4, 2)
    assert record["images_per_sec"] == pytest.approx(value(out, "Final Performance images/sec :"), abs=0.005)
    assert record["final_loss"] == float(re.findall(r"^step 4, loss ([\d.]+) ", out, re.M)[0])
    assert (record["accuracy_name"], record["accuracy"]) == ("Precision@1", None)


def test_nothing_left_then_restore_then_warm_start(short_run, small_market, tmp_path):
    """Resume itself (Ctrl-C, a moved folder, a damaged checkpoint) is in test_never_lose.py."""
    shutil.copytree(short_run[0] / "short", tmp_path / "short")
    args = [f"--dataset_dir={small_market}", f"--log_dir={tmp_path}", *SHORT_ARGS]
    status, out, _ = call(train_market1501, *args, "--run_id=short", f"--number_of_steps={SHORT_STEPS}")
    assert status == 0 and f"resuming from {tmp_path}/short/model.ckpt-{SHORT_STEPS} at step {SHORT_STEPS}" in out
    assert "nothing left to train" in out and "Final Performance images/sec : NA\nFinal Performance ms/step : NA" in out
    record = json.loads((tmp_path / "short" / "result.json").read_text())
    assert record["steps"] == SHORT_STEPS and record["ms_per_step"] is record["final_loss"] is None

    # --restore_path, as in the original: every variable, step included; that run goes on in a new folder.
    source = tf.train.latest_checkpoint(str(short_run[0] / "short"))
    status, out, err = call(train_market1501, *args, "--run_id=restored", f"--number_of_steps={SHORT_STEPS + 1}",
                            f"--restore_path={short_run[0] / 'short'}")
    assert status == 0, err
    assert f"resuming from {source} at step {SHORT_STEPS}\n" in out
    assert re.findall(r"^step (\d+), ", out, re.M) == [str(SHORT_STEPS + 1)]
    restored, before = (tf.train.load_checkpoint(p) for p in (str(tmp_path / f"restored/model.ckpt-{SHORT_STEPS}"),
                                                              source))
    for name in ("ball/mean_vectors", "ball/scale", "fc1/weights/Adam_1", "beta1_power", "global_step"):
        np.testing.assert_array_equal(restored.get_tensor(name), before.get_tensor(name), err_msg=name)

    # --warm_start_path: the network only; a new run from step 1 with a new classifier and optimizer.
    status, out, err = call(train_market1501, *args, "--run_id=warm", "--number_of_steps=1",
                            f"--warm_start_path={short_run[0] / 'short'}")
    assert status == 0, err
    assert re.search(r"^initialised the network from \S+/short/model.ckpt-\d+$", out, re.M), out
    assert re.findall(r"^step (\d+), ", out, re.M) == ["1"]
    warm = tf.train.load_checkpoint(str(tmp_path / "warm/model.ckpt-0"))
    np.testing.assert_array_equal(warm.get_tensor("fc1/weights"), before.get_tensor("fc1/weights"))
    assert not np.array_equal(warm.get_tensor("ball/mean_vectors"), before.get_tensor("ball/mean_vectors"))
    assert warm.get_tensor("global_step") == 0 and not warm.get_tensor("fc1/weights/Adam_1").any()


def test_eval_once_without_run_id_reads_log_dir(short_run, small_market, tmp_path, monkeypatch):
    """As in the original: without --run_id, eval follows --log_dir itself and writes to --eval_log_dir."""
    monkeypatch.setenv(run_report.PROGRESS_ENV, "0.0001")
    status, out, err = call(train_market1501, "--mode=eval", "--eval_once", f"--dataset_dir={small_market}",
                            f"--log_dir={short_run[0] / 'short'}", f"--eval_log_dir={tmp_path / 'short'}")
    assert status == 0, err
    assert out.startswith("device: ") and "inference" in out.splitlines()[0]
    assert f"(global step {SHORT_STEPS}), 10 galleries of 6 identities:" in out
    ranks = [value(out, f"Precision@{k} :") for k in (1, 5, 10, 20)]
    assert 0 <= ranks[0] <= ranks[1] <= ranks[2] <= ranks[3] == 1  # 6 identities: rank 20 always hits
    assert progress_lines(out, "image")[-1] == 72  # the validation images encoded (12 per identity)
    scalars = contract.read_scalars(str(tmp_path))  # the eval run: eval_log_dir (here without a run id)
    assert list(scalars) == ["short"] and sorted(scalars["short"]) == sorted(f"Precision@{k}" for k in (1, 5, 10, 20))
    assert [scalars["short"][f"Precision@{k}"] for k in (1, 5, 10, 20)] == [
        [(SHORT_STEPS, pytest.approx(rank, abs=1e-4))] for rank in ranks]


def test_eval_once_without_a_checkpoint_or_a_training_record(short_run, small_market, tmp_path):
    status, _, err = call(train_market1501, "--mode=eval", "--eval_once", f"--dataset_dir={small_market}",
                          f"--log_dir={tmp_path}", "--run_id=none")
    assert status == 1 and err.startswith("[Error] --log_dir/--run_id: no checkpoint in "), err
    status, out, err = call(train_market1501, "--mode=eval", "--eval_once", f"--dataset_dir={small_market}",
                            f"--log_dir={short_run[0]}", "--run_id=short", f"--result_dir={tmp_path}")
    assert status == 1 and err.startswith(f"[Error] --result_dir: no readable result.json of a training run in "
                                          f"{tmp_path} "), err
    assert "Precision@1" not in out


def test_evaluate_test_runs_the_market_protocol(short_run, small_market, monkeypatch):
    monkeypatch.setenv(run_report.PROGRESS_ENV, "0.0001")
    status, out, err = call(train_market1501, "--mode=evaluate_test", f"--dataset_dir={small_market}",
                            f"--restore_path={short_run[0] / 'short'}")
    assert status == 0, err
    # 20 test identities, 2 queries each on different cameras.
    assert "market1501 test protocol (single query, 40 queries, cosine distance):" in out
    rank1, rank5, rank_map = (value(out, f"{k} :") for k in ("rank1", "rank5", "mAP"))
    assert 0 <= rank1 <= rank5 <= 1 and 0 < rank_map <= 1
    assert 40 in progress_lines(out, "image")  # the queries' pass, then the gallery's


def readme_command(script, mode, **paths):
    """The README's command (tests/readme.py), its data path and PATH_TO_CHECKPOINT filled in."""
    replace = [("./Market-1501-v15.09.15/", paths.get("market")), ("./MARS-evaluation-master", paths.get("mars")),
               ("PATH_TO_CHECKPOINT", paths.get("checkpoint"))]
    return readme.command(script, mode, [pair for pair in replace if pair[1] is not None])


def test_export_market_mat_files(short_run, small_market, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(run_report.PROGRESS_ENV, "0.0001")
    status, out, err = call(train_market1501, *readme_command("train_market1501.py", "export", market=small_market,
                                                              checkpoint=short_run[0] / "short"))
    assert status == 0, err
    assert progress_lines(out, "image") and "elapsed" in out  # one pass per .mat file
    tmp_path = tmp_path / "Market-1501_baseline-v16.01.14"  # the README's --sdk_dir
    checkpoint = tf.train.latest_checkpoint(str(short_run[0] / "short"))
    for mat, subset in (("feat_test.mat", "bounding_box_test"), ("feat_query.mat", "query")):
        data = scipy.io.loadmat(tmp_path / mat)
        assert [k for k in data if not k.startswith("__")] == ["features"]
        features = data["features"]
        names = sorted(n for n in os.listdir(os.path.join(small_market, subset)) if n.endswith(".jpg"))
        assert features.dtype == np.float32 and features.shape == (len(names), 128)
        if subset == "bounding_box_test":
            assert names[0].startswith("-1_") and any(n.startswith("0000_") for n in names)
        picks = [0, len(names) - 1]
        rgb = np.stack([tf.io.decode_jpeg(tf.io.read_file(os.path.join(small_market, subset, names[i]))).numpy()
                        for i in picks])  # the same JPEG decoder as the export pipeline
        # Both sides float32 on the same CPU: only summation order differs.
        np.testing.assert_allclose(features[picks], checkpoint_features(checkpoint, rgb[..., ::-1]), atol=1e-4)


def load_like_deep_sort_tf1(graph_def, batches):
    """deep_sort's ImageEncoder: import_graph_def(name="net"), feed net/images:0, fetch net/features:0."""
    with tf.Graph().as_default() as graph, tf.compat.v1.Session() as session:
        tf.import_graph_def(graph_def, name="net")
        images, features = graph.get_tensor_by_name("net/images:0"), graph.get_tensor_by_name("net/features:0")
        assert images.get_shape().as_list() == [None, 128, 64, 3] and features.get_shape().as_list() == [None, 128]
        return np.concatenate([session.run(features, {images: batch}) for batch in batches])


def load_like_deep_sort_tf2(graph_def, batches):
    """deep_sort's TF2 port: wrap_function + prune from images:0 to features:0."""
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    encode = wrapped.prune(wrapped.graph.get_tensor_by_name("images:0"),
                           wrapped.graph.get_tensor_by_name("features:0"))
    return np.concatenate([encode(tf.constant(batch)).numpy() for batch in batches])


def test_freeze_loads_like_deep_sort(short_run, small_market, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(run_report.PROGRESS_ENV, "0.0001")
    status, out, err = call(train_market1501, *readme_command("train_market1501.py", "freeze",
                                                              checkpoint=short_run[0] / "short"))
    assert status == 0, err
    assert progress_lines(out, "stage") == [1, 2, 3]  # restored, converted, written
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((tmp_path / "market1501.pb").read_bytes())
    assert {n.op for n in graph_def.node} <= FROZEN_OPS  # README "freeze": the TensorFlow versions that load it

    folder = os.path.join(small_market, "bounding_box_test")
    names = sorted(os.listdir(folder))[:70]
    rgb = np.stack([np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names])
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    expected = checkpoint_features(tf.train.latest_checkpoint(str(short_run[0] / "short")), bgr)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1, atol=1e-5)
    batches = [bgr[:32], bgr[32:64], bgr[64:]]  # deep_sort encodes in batches of 32, the last one short
    for load in (load_like_deep_sort_tf1, load_like_deep_sort_tf2):
        np.testing.assert_allclose(load(graph_def, batches), expected, atol=1e-5)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session() as session:  # float RGB in [0, 1] fed directly
        tf.compat.v1.import_graph_def(graph_def, name="")
        alone = session.run("features:0", {"network_input:0": rgb[:32].astype(np.float32) / 255.0})
    np.testing.assert_allclose(alone, expected[:32], atol=1e-5)


def test_finalize_keeps_only_the_network(short_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = call(train_market1501, *readme_command("train_market1501.py", "finalize",
                                                              checkpoint=short_run[0] / "short"))
    assert status == 0, err
    names = {name for name, _ in tf.train.list_variables(str(tmp_path / "market1501.ckpt"))}
    assert "fc1/weights" in names and "conv1_1/conv1_1/bn/moving_mean" in names
    assert not any(n.startswith("ball/") or "Adam" in n or n == "global_step" for n in names)
    # The meta graph, as the original wrote it: import, restore, encode.
    bgr = np.random.RandomState(0).randint(0, 256, (3, 128, 64, 3)).astype(np.uint8)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session() as sess:
        tf.compat.v1.train.import_meta_graph(str(tmp_path / "market1501.ckpt.meta")).restore(
            sess, str(tmp_path / "market1501.ckpt"))
        features = sess.run("features:0", {graph.get_tensor_by_name("images:0"): bgr})
    expected = checkpoint_features(tf.train.latest_checkpoint(str(short_run[0] / "short")), bgr)
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_finalize_that_finds_no_room_is_one_line(short_run, tmp_path, monkeypatch):
    """A file size limit below the checkpoint's size (EFBIG: the same code path as a full disk's ENOSPC)."""
    monkeypatch.chdir(tmp_path)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        status, out, err = call(train_market1501, *readme_command("train_market1501.py", "finalize",
                                                                  checkpoint=short_run[0] / "short"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert status == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"[Error] File too large writing {tmp_path}/market1501.ckpt.data-00000-" \
                                           "of-00001: raise the file size limit (ulimit -f), and run again"


@pytest.fixture
def mars_copy(small_mars, tmp_path):
    return shutil.copytree(small_mars, tmp_path / "mars")


def test_mars_train_export_evaluate(mars_copy, tmp_path):
    data, log_dir = mars_copy, tmp_path / "logs"
    status, out, err = call(train_mars, f"--dataset_dir={data}", f"--log_dir={log_dir}", "--run_id=m",
                            "--number_of_steps=2", "--batch_size=16", "--loss_mode=triplet",
                            "--precision_mode=must_keep_origin_dtype")
    assert status == 0, err
    assert "324 training images of 36 identities" in out and "loss triplet" in out
    assert set(contract.read_scalars(str(log_dir))["m"]) == TRAIN_TAGS  # log_every 10: the last step's

    status, _, err = call(train_mars, *readme_command("train_mars.py", "export", mars=data, checkpoint=log_dir / "m"))
    assert status == 0, err
    features = scipy.io.loadmat(data / "feat_test.mat")["features"]
    listed = (data / "info" / "test_name.txt").read_text().split()
    assert features.dtype == np.float32 and features.shape == (len(listed), 128)
    assert listed[0].startswith("00-1") and any(n.startswith("0000") for n in listed)

    status, out, err = call(train_mars, "--mode=evaluate_test", f"--dataset_dir={data}", "--loss_mode=triplet",
                            f"--restore_path={log_dir / 'm'}")
    assert status == 0, err
    assert "mars test protocol (single query, 10 queries, sqeuclidean distance):" in out
    assert 0 <= value(out, "mAP :") <= 1
