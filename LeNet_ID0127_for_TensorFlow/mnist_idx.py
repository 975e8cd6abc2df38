"""Reader for the four MNIST idx files, gzip-compressed or plain, with strict format checks.

The TF1 `input_data` helper the original used is gone; this reader validates what it reads so that a
wrong or damaged file is reported by name instead of surfacing later as a shape error.
"""
import gzip
import os
import struct
import zlib

import numpy as np

from lenet_cli import UsageError

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class Split:
    """Images as uint8 [n, 784] and labels as uint8 [n]; scaling to [0, 1] happens in the graph."""

    def __init__(self, images, labels):
        self.images = images
        self.labels = labels

    def __len__(self):
        return len(self.labels)


def locate(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise UsageError(f"{data_dir}: missing {stem}.gz (or un-gzipped {stem})")


def read_bytes(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        with open(path, "rb") as handle:
            return handle.read()
    except EOFError:
        raise UsageError(f"{path}: truncated gzip file (ends before its end-of-stream marker)") from None
    except (OSError, zlib.error) as err:
        raise UsageError(f"{path}: cannot read ({err})") from None


def parse_idx(path, data, magic, header_dims):
    """Checks magic number and size; returns the header dimensions and the payload as uint8."""
    header_size = 4 * (1 + header_dims)
    if len(data) < header_size:
        raise UsageError(f"{path}: {len(data)} bytes is too short for an idx header")
    found, *dims = struct.unpack(">" + "I" * (1 + header_dims), data[:header_size])
    if found != magic:
        raise UsageError(f"{path}: bad magic number {found} (expected {magic}); not an MNIST idx file of this kind")
    expected = header_size + int(np.prod(dims))
    if len(data) != expected:
        raise UsageError(f"{path}: header promises {dims[0]} items ({expected} bytes) but the file has {len(data)} bytes")
    return dims, np.frombuffer(data, dtype=np.uint8, offset=header_size)


def read_images(path):
    (count, rows, cols), pixels = parse_idx(path, read_bytes(path), IMAGE_MAGIC, 3)
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise UsageError(f"{path}: images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    return pixels.reshape(count, PIXELS)


def read_labels(path):
    _, labels = parse_idx(path, read_bytes(path), LABEL_MAGIC, 1)
    if labels.size and labels.max() >= NUM_CLASSES:
        raise UsageError(f"{path}: label {labels.max()} is outside 0..{NUM_CLASSES - 1}")
    return labels


def read_split(data_dir, split):
    image_stem, label_stem = SPLIT_FILES[split]
    image_path, label_path = locate(data_dir, image_stem), locate(data_dir, label_stem)
    images, labels = read_images(image_path), read_labels(label_path)
    if len(images) != len(labels):
        raise UsageError(f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    if len(images) == 0:
        raise UsageError(f"{image_path}: holds no images")
    return Split(images, labels)


def check_folder(data_dir, flag="--data_path"):
    if not data_dir:
        raise UsageError(f"{flag} is empty; point it at the folder holding the MNIST idx files")
    if not os.path.isdir(data_dir):
        raise UsageError(f"{flag} {data_dir}: folder not found")


def load(data_dir, validation_size):
    """Returns train, validation and test splits; validation is the last `validation_size` training images."""
    check_folder(data_dir)
    train, test = read_split(data_dir, "train"), read_split(data_dir, "test")
    if validation_size >= len(train):
        raise UsageError(f"--validation_size {validation_size} leaves no training images "
                         f"({len(train)} images in {locate(data_dir, SPLIT_FILES['train'][0])})")
    cut = len(train) - validation_size
    validation = Split(train.images[cut:], train.labels[cut:])
    return Split(train.images[:cut], train.labels[:cut]), validation, test
