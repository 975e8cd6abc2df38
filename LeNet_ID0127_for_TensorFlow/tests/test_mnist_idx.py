"""The idx reader: formats it accepts and damage it reports by file name."""
import gzip
import os
import shutil
import struct

import numpy as np
import pytest

import mnist_idx
from lenet_cli import UsageError


@pytest.fixture
def data_copy(small_mnist, tmp_path):
    target = tmp_path / "mnist"
    shutil.copytree(small_mnist, target)
    return target


def test_reads_all_splits_and_holds_out_the_last_images(small_mnist):
    train, validation, test = mnist_idx.load(small_mnist, validation_size=500)
    assert (len(train), len(validation), len(test)) == (1500, 500, 500)
    assert train.images.shape == (1500, 784) and train.images.dtype == np.uint8
    whole = mnist_idx.read_split(small_mnist, "train")
    np.testing.assert_array_equal(validation.images, whole.images[-500:])
    np.testing.assert_array_equal(train.labels, whole.labels[:1500])
    assert set(np.unique(test.labels)) == set(range(10))


def test_accepts_uncompressed_files(data_copy):
    for name in os.listdir(data_copy):
        with gzip.open(data_copy / name) as src, open(data_copy / name[:-3], "wb") as dst:
            dst.write(src.read())
        os.remove(data_copy / name)
    assert len(mnist_idx.read_split(str(data_copy), "test")) == 500


def test_wrong_magic_is_named(data_copy):
    path = data_copy / "train-images-idx3-ubyte.gz"
    with gzip.open(path) as handle:
        data = bytearray(handle.read())
    data[:4] = struct.pack(">I", 1234)
    with gzip.open(path, "wb") as handle:
        handle.write(bytes(data))
    with pytest.raises(UsageError, match=r"train-images-idx3-ubyte.gz: bad magic number 1234 \(expected 2051\)"):
        mnist_idx.read_split(str(data_copy), "train")


def test_truncated_gzip_is_named(data_copy):
    path = data_copy / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UsageError, match="t10k-images-idx3-ubyte.gz: truncated gzip"):
        mnist_idx.read_split(str(data_copy), "test")


def test_payload_shorter_than_header_promises(data_copy):
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path) as handle:
        data = handle.read()
    with gzip.open(path, "wb") as handle:
        handle.write(data[:-10])
    with pytest.raises(UsageError, match="header promises 500 items"):
        mnist_idx.read_split(str(data_copy), "test")


def test_image_label_count_mismatch(data_copy):
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">II", 2049, 499) + bytes(499))
    with pytest.raises(UsageError, match="has 500 images but .*t10k-labels-idx1-ubyte.gz has 499 labels"):
        mnist_idx.read_split(str(data_copy), "test")


def test_label_out_of_range(data_copy):
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">II", 2049, 500) + bytes([12]) * 500)
    with pytest.raises(UsageError, match="label 12 is outside 0..9"):
        mnist_idx.read_split(str(data_copy), "test")


def test_missing_file_and_folder(data_copy, tmp_path):
    os.remove(data_copy / "train-labels-idx1-ubyte.gz")
    with pytest.raises(UsageError, match="missing train-labels-idx1-ubyte.gz"):
        mnist_idx.read_split(str(data_copy), "train")
    with pytest.raises(UsageError, match="folder not found"):
        mnist_idx.load(str(tmp_path / "absent"), 0)


def test_validation_larger_than_training_set(small_mnist):
    with pytest.raises(UsageError, match="--validation_size 2000 leaves no training images"):
        mnist_idx.load(small_mnist, validation_size=2000)
