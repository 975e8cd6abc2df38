"""Synthetic MNIST in the on-disk layout `tensorflow-datasets` prepares: <out>/mnist/3.0.1/.

The folder holds one tfrecord shard per split (tf.train.Example: `image` = PNG bytes of a 28x28x1 uint8
image, `label` = int64), `dataset_info.json` (splits, shard lengths, version) and `features.json`, as
TFDS 4.x writes them. `write(...)` is the writer; `from_idx(...)` converts the real idx files with it.
"""
import gzip
import io
import json
import os
import struct

import numpy as np
from PIL import Image

from . import digits

VERSION = "3.0.1"
TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"

FEATURES = {
    "pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict",
    "featuresDict": {"features": {
        "image": {"pythonClassName": "tensorflow_datasets.core.features.image_feature.Image",
                  "image": {"shape": {"dimensions": ["28", "28", "1"]}, "dtype": "uint8",
                            "encodingFormat": "png"}},
        "label": {"pythonClassName": "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
                  "classLabel": {"numClasses": "10"}},
    }},
}


def shard_name(split, index, count):
    return f"mnist-{split}.tfrecord-{index:05d}-of-{count:05d}"


def _example(image, label):
    import tensorflow as tf

    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png.getvalue()])),
               "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write(out_dir, splits, shards=1):
    """splits: {"train": (uint8 images [n,28,28], labels [n]), "test": ...}; returns the version folder."""
    import tensorflow as tf

    folder = os.path.join(out_dir, "mnist", VERSION)
    os.makedirs(folder, exist_ok=True)
    info_splits = []
    for split, (images, labels) in splits.items():
        lengths, total_bytes = [], 0
        for index, part in enumerate(np.array_split(np.arange(len(labels)), shards)):
            path = os.path.join(folder, shard_name(split, index, shards))
            with tf.io.TFRecordWriter(path) as writer:
                for i in part:
                    writer.write(_example(images[i], labels[i]))
            lengths.append(str(len(part)))
            total_bytes += os.path.getsize(path)
        info_splits.append({"filepathTemplate": TEMPLATE, "name": split, "numBytes": str(total_bytes),
                            "shardLengths": lengths})
    info = {"description": "Synthetic MNIST-like digits (ci/datasets/digits.py) in the TFDS layout.",
            "fileFormat": "tfrecord", "moduleName": "tensorflow_datasets.image_classification.mnist",
            "name": "mnist", "splits": info_splits, "version": VERSION,
            "supervisedKeys": {"tuple": {"items": [{"featureKey": "image"}, {"featureKey": "label"}]}}}
    with open(os.path.join(folder, "dataset_info.json"), "w") as handle:
        json.dump(info, handle, indent=2)
    with open(os.path.join(folder, "features.json"), "w") as handle:
        json.dump(FEATURES, handle, indent=4)
    return folder


def generate(out_dir, seed=0, train_count=4096, test_count=1024, shards=1):
    """The smoke dataset: learnable digits, 4,096 train / 1,024 test; returns out_dir (the --data_dir)."""
    write(out_dir, {"train": digits.make(train_count, seed), "test": digits.make(test_count, seed + 1)}, shards)
    return out_dir


def _read_idx(path):
    with gzip.open(path) as handle:
        data = handle.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, count * rows * cols, 16).reshape(count, rows, cols)
    return np.frombuffer(data, np.uint8, count, 8)


def from_idx(idx_dir, out_dir, shards=1):
    """Converts the four gzip idx files (train-/t10k-) into the TFDS layout under out_dir."""
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        splits[split] = (_read_idx(os.path.join(idx_dir, f"{prefix}-images-idx3-ubyte.gz")),
                         _read_idx(os.path.join(idx_dir, f"{prefix}-labels-idx1-ubyte.gz")))
    write(out_dir, splits, shards)
    return out_dir
