"""Synthetic MNIST in the four idx files (gzip) that LeNet's --data_path expects."""
import gzip
import os
import struct

from . import digits

NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def write_images(path, images):
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">IIII", 2051, len(images), images.shape[1], images.shape[2]))
        handle.write(images.tobytes())


def write_labels(path, labels):
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">II", 2049, len(labels)))
        handle.write(labels.tobytes())


def generate(out_dir, seed=0, train_count=7000, test_count=1000):
    """7,000 training images leave 2,000 after LeNet's default 5,000-image validation hold-out."""
    os.makedirs(out_dir, exist_ok=True)
    for split, count, split_seed in (("train", train_count, seed), ("test", test_count, seed + 1)):
        images, labels = digits.make(count, split_seed)
        image_name, label_name = NAMES[split]
        write_images(os.path.join(out_dir, image_name), images)
        write_labels(os.path.join(out_dir, label_name), labels)
    return out_dir
