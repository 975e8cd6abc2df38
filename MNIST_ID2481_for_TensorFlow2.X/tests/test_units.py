"""Units: the TFDS-folder reader (current and older metadata), the network, step timing, precision mapping."""
import json
import os
import shutil

import numpy as np
import pytest

import common
import mnist_data
from synthetic import digits, tfds_mnist


def test_reads_the_generated_folder_with_shards_from_the_metadata(tiny_data):
    data = mnist_data.describe(tiny_data)
    assert [os.path.basename(f) for f in data["train"][0]] == [
        "mnist-train.tfrecord-00000-of-00002", "mnist-train.tfrecord-00001-of-00002"]
    assert data["train"][1] == 1024 and data["test"][1] == 256
    images, labels = zip(*mnist_data.load_split(data["test"][0]).as_numpy_iterator())
    images, labels = np.stack(images), np.array(labels)
    want_images, want_labels = digits.make(256, 1)
    assert images.shape == (256, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(images[..., 0] * 255.0, want_images, atol=1e-3)


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
    np.testing.assert_array_equal(np.round(got[7][0][..., 0] * 255).astype(np.uint8), images[7])


def test_network_matches_the_original():
    import mnist_main

    model = mnist_main.create_model()
    assert model.name == "mnist" and model.count_params() == 1643370
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    assert model.layers[6].rate == 0.4 and model.output_shape == (None, 10)


def test_steady_step_time_skips_warm_up_and_outliers():
    assert common.steady_step_seconds([[5.0, 1.0], [1.0, 2.0, 30.0], [3.0]]) == pytest.approx(2.0)
    assert common.steady_step_seconds([[9.0, 1.0, 3.0]]) == pytest.approx(2.0)
    assert common.steady_step_seconds([]) is None


def test_precision_mapping(monkeypatch):
    monkeypatch.setattr(common, "cpu_has_bf16", lambda: False)
    policy, reason = common.keras_precision("allow_mix_precision", False, 0)
    assert policy == "float32" and "no native bf16" in reason
    assert common.keras_precision("allow_fp32_to_fp16", False, 1)[0] == "mixed_float16"
    assert common.keras_precision("must_keep_origin_dtype", False, 1)[0] == "float32"
    monkeypatch.setattr(common, "cpu_has_bf16", lambda: True)
    assert common.keras_precision("force_fp16", False, 0)[0] == "mixed_bfloat16"


def test_latest_checkpoint(tmp_path):
    assert common.latest_checkpoint(str(tmp_path)) == (None, 0)
    for name in ("model.ckpt-0002.index", "model.ckpt-0010.index", "model.ckpt-0003.index", "other.index"):
        (tmp_path / name).write_text("")
    assert common.latest_checkpoint(str(tmp_path)) == (str(tmp_path / "model.ckpt-0010"), 10)
