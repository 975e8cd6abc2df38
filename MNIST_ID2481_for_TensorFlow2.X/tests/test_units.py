"""Units: the TFDS-folder reader (current and older metadata), the network, the learning-rate rule,
checkpoint pruning, strategy placement and the flags' choice lists."""
import json
import os
import shutil
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import checkpoints
import distribution
from errors import UsageError
import mnist_data
import mnist_main
import training
import zoo_precision
from synthetic import digits, tfds_mnist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import step_vs_fit  # noqa: E402


def test_reads_the_generated_folder_with_shards_from_the_metadata(tiny_data):
    data = mnist_data.describe(tiny_data)
    assert [os.path.basename(f) for f in data["train"][0]] == [
        "mnist-train.tfrecord-00000-of-00002", "mnist-train.tfrecord-00001-of-00002"]
    assert data["train"][1] == 1024 and data["test"][1] == 256
    images, labels = zip(*mnist_data.load_split(data["test"][0]).as_numpy_iterator())
    images, labels = np.stack(images), np.array(labels)
    want_images, want_labels = digits.make(256, 1)
    assert images.shape == (256, 28, 28, 1) and images.dtype == np.uint8  # scaled per batch by pipelines()
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(images[..., 0], want_images)


def test_pipelines_cache_uint8_and_give_float32_batches_in_0_1(tiny_data):
    splits = {split: (mnist_data.load_split(files), count)
              for split, (files, count) in mnist_data.describe(tiny_data).items()}
    train, test, train_steps, eval_steps = mnist_data.pipelines(splits, 64, 64, eval_static=True, seed=1)
    assert (train_steps, eval_steps) == (1024 // 64, 256 // 64)
    images, labels = next(iter(test))
    assert images.dtype == tf.float32 and images.shape == (64, 28, 28, 1) and labels.dtype == tf.int64
    want_images, want_labels = digits.make(256, 1)
    np.testing.assert_allclose(images.numpy()[..., 0], want_images[:64] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(labels.numpy(), want_labels[:64])
    batch, _ = next(iter(train))
    assert batch.dtype == tf.float32 and 0.0 <= float(tf.reduce_min(batch)) <= float(tf.reduce_max(batch)) <= 1.0


def test_reads_the_older_tfds_layout(tiny_data, tmp_path):
    """TFDS 1.x-3.x: numShards + statistics.numExamples, image.image.json instead of features.json."""
    folder = tmp_path / "mnist" / "3.0.1"
    shutil.copytree(os.path.join(tiny_data, "mnist", "3.0.1"), folder)
    info = json.loads((folder / "dataset_info.json").read_text())
    for split in info["splits"]:
        count = sum(int(n) for n in split.pop("shardLengths"))
        split.pop("filepathTemplate")
        split.update(numShards="2", statistics={"numExamples": str(count)})
    (folder / "dataset_info.json").write_text(json.dumps(info))
    (folder / "features.json").unlink()
    (folder / "image.image.json").write_text('{"encoding_format": "png", "shape": [28, 28, 1]}')
    data = mnist_data.describe(str(tmp_path))
    assert data["train"][1] == 1024 and len(data["test"][0]) == 2


@pytest.mark.parametrize("damage, message", [
    ("lengths", "train split should have [500, 512] examples, the files hold [512, 512]"),
    ("missing", "lists mnist-test.tfrecord-00001-of-00002, which is missing"),
    ("truncated", "truncated"),
    ("json", "not a TFDS dataset_info.json"),
    ("features", "neither features.json nor image.image.json"),
])
def test_metadata_that_does_not_match_the_files(tiny_data, tmp_path, damage, message):
    folder = tmp_path / "mnist" / "3.0.1"
    shutil.copytree(os.path.join(tiny_data, "mnist", "3.0.1"), folder)
    info_path = folder / "dataset_info.json"
    if damage == "lengths":
        info = json.loads(info_path.read_text())
        info["splits"][0]["shardLengths"][0] = "500"
        info_path.write_text(json.dumps(info))
    elif damage == "missing":
        (folder / "mnist-test.tfrecord-00001-of-00002").unlink()
    elif damage == "truncated":
        shard = folder / "mnist-train.tfrecord-00001-of-00002"
        shard.write_bytes(shard.read_bytes()[:-10])
    elif damage == "json":
        info_path.write_text("{not json")
    else:
        (folder / "features.json").unlink()
    with pytest.raises(mnist_data.DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        mnist_data.describe(str(tmp_path))


def test_from_idx_round_trip(tmp_path):
    from synthetic import mnist_idx

    images, labels = digits.make(50, 3)
    idx = tmp_path / "idx"
    idx.mkdir()
    for prefix in ("train", "t10k"):
        mnist_idx.write_images(str(idx / f"{prefix}-images-idx3-ubyte.gz"), images)
        mnist_idx.write_labels(str(idx / f"{prefix}-labels-idx1-ubyte.gz"), labels)
    tfds_mnist.from_idx(str(idx), str(tmp_path / "out"))
    data = mnist_data.describe(str(tmp_path / "out"))
    got = list(mnist_data.load_split(data["train"][0]).as_numpy_iterator())
    assert [int(y) for _, y in got] == labels.tolist()
    np.testing.assert_array_equal(got[7][0][..., 0], images[7])


def test_network_matches_the_original():
    model = mnist_main.create_model()
    assert model.name == "mnist" and model.count_params() == 1643370
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    assert model.layers[6].rate == 0.4 and model.output_shape == (None, 10)


def test_learning_rate_rule_is_the_originals_exponential_decay():
    assert training.learning_rate(0, 0.05) == 0.05
    assert training.learning_rate(100000, 0.05) == pytest.approx(0.048)
    assert training.learning_rate(250000, 0.1) == pytest.approx(0.1 * 0.96 ** 2.5)
    original = keras.optimizers.schedules.ExponentialDecay(0.05, 100000, 0.96)  # the original's schedule
    optimizer = training.create_optimizer(0.05, 0.9)
    for step in (0, 1, 220, 99999, 300000):
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(float(original(step)), rel=1e-6)


def test_save_keeps_the_newest_checkpoints_and_leaves_higher_numbers_alone(tmp_path):
    checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
    (tmp_path / "model.ckpt-99.index").write_text("damaged")  # what a resume skipped: left for the user
    for step in (0, 8, 16, 20, 24):
        assert checkpoints.save(checkpoint, str(tmp_path), step) == str(tmp_path / f"model.ckpt-{step}")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "model.ckpt-99.index") == [
        f"model.ckpt-{n}.{ext}" for n in (16, 20, 24) for ext in ("data-00000-of-00001", "index")]
    assert (tmp_path / "model.ckpt-99.index").is_file() and checkpoints.KEEP >= 2


def test_flag_choices_come_from_the_implementations():
    assert mnist_main.FLAGS["distribution_strategy"].parser.enum_values == list(distribution.FACTORIES)
    assert mnist_main.FLAGS["precision_mode"].parser.enum_values == list(zoo_precision.PRECISION_MODES)


def test_placement_of_one_process(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    placement = distribution.place("one_device", 0, 1, 0, 120, ascend=False)
    assert placement.name == "one_device" and placement.chief and placement.workers == 1
    assert placement.describe(64) == "one_device: rank 0 of 1, 1 replicas, batch 64 per replica"
    with pytest.raises(UsageError, match="parameter_server: not supported here; use off, one_device, mirrored, "
                                         "multi_worker_mirrored"):
        distribution.place("parameter_server", 0, 1, 0, 120, ascend=False)


def test_an_unset_strategy_is_the_default_one_on_a_machine_without_gpus(monkeypatch):
    """`off` trains like one_device on a CPU at less CPU time per step; several GPUs keep official's mirrored."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert not tf.config.list_physical_devices("GPU")
    placement = distribution.place(None, 0, 1, 0, 120, ascend=False)
    assert placement.name == "off" and placement.strategy is tf.distribute.get_strategy()
    assert distribution.default_strategy(2) == "mirrored" and distribution.default_strategy(1) == "one_device"


def test_placement_refuses_flags_that_contradict_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1", "localhost:2"]}, '
                                    '"task": {"type": "worker", "index": 1}}')
    assert distribution.cluster_from_env() == (1, 2)
    with pytest.raises(UsageError, match="--mul_rank_size=4 --mul_device_id=1: TF_CONFIG makes this worker 1 of 2"):
        distribution.place(None, 0, 4, 1, 120, ascend=False)
    with pytest.raises(UsageError, match="--distribution_strategy=mirrored: TF_CONFIG is set"):
        distribution.place("mirrored", 0, 1, 0, 120, ascend=False)


def test_step_benchmark_times_both_steps_and_refuses_too_few_steps(capsys):
    assert step_vs_fit.main(["--batch", "16", "--steps", "12", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("round 1 project: ") == 1 and out.count("round 1 fit: ") == 1
    ratio = float(out.rstrip().split("project / fit ")[1].split()[0])
    assert ratio > 0
    assert step_vs_fit.main(["--steps", "10"]) == 1
    assert capsys.readouterr().out.startswith("[Error] step_vs_fit.py: ")
