"""Reads a TFDS-prepared MNIST folder (<data_dir>/mnist/3.0.1) without needing tensorflow-datasets, and builds
the original input pipelines.

Shard names and counts come from dataset_info.json (TFDS 4.x `shardLengths` + `filepathTemplate`, or the
older `numShards` + `statistics.numExamples`); the features file may be `features.json` (current TFDS) or
`image.image.json` (older TFDS). Every mismatch between the metadata and the files is a DataError.
"""
import json
import os
import struct

import tensorflow as tf

from errors import UsageError, op_error_cause
import run_safety

VERSION = "3.0.1"
SHUFFLE_BUFFER = 50000
DEFAULT_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"


class DataError(Exception):
    """The data folder is missing or does not match what dataset_info.json describes."""


def _shard_files(folder, split_info):
    name = split_info.get("name", "?")
    lengths = [int(n) for n in split_info.get("shardLengths", [])]
    count = len(lengths) or int(split_info.get("numShards", 0) or 0)
    if count == 0:
        raise DataError(f"{folder}/dataset_info.json: split {name!r} lists no shards")
    template = split_info.get("filepathTemplate") or DEFAULT_TEMPLATE
    names = [template.replace("{DATASET}", "mnist").replace("{SPLIT}", name).replace("{FILEFORMAT}", "tfrecord")
             .replace("{SHARD_INDEX}", f"{i:05d}").replace("{NUM_SHARDS}", f"{count:05d}")
             .replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{count:05d}") for i in range(count)]
    if not lengths:  # older TFDS: only the split total is recorded
        total = int(split_info.get("statistics", {}).get("numExamples", -1))
        return [os.path.join(folder, n) for n in names], None, total
    return [os.path.join(folder, n) for n in names], lengths, sum(lengths)


def count_records(path):
    """Counts the records of a tfrecord file from its framing; a truncated file raises DataError."""
    size, offset, count = os.path.getsize(path), 0, 0
    with open(path, "rb") as handle:
        while offset < size:
            header = handle.read(8)
            if len(header) < 8:
                raise DataError(f"{path}: truncated tfrecord (record {count} header cut off)")
            offset += 8 + 4 + struct.unpack("<Q", header)[0] + 4
            if offset > size:
                raise DataError(f"{path}: truncated or corrupt tfrecord (record {count} runs past the end)")
            handle.seek(offset)
            count += 1
    return count


def describe(data_dir):
    """Checks <data_dir>/mnist/3.0.1 against its metadata; returns {split: (files, number of examples)}."""
    if not os.path.isdir(data_dir):
        raise DataError(f"--data_dir: folder not found: {data_dir}")
    folder = os.path.join(data_dir, "mnist", VERSION)
    info_path = os.path.join(folder, "dataset_info.json")
    if not os.path.isfile(info_path):
        raise DataError(f"--data_dir: {data_dir} has no TFDS-prepared mnist/{VERSION}/dataset_info.json")
    try:
        with open(info_path) as handle:
            info = json.load(handle)
        splits_info = {s["name"]: s for s in info["splits"]}
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{info_path}: not a TFDS dataset_info.json ({err})") from None
    if info.get("fileFormat", "tfrecord") != "tfrecord":
        raise DataError(f"{info_path}: file format {info['fileFormat']!r} is not supported (tfrecord only)")
    if not any(os.path.isfile(os.path.join(folder, n)) for n in ("features.json", "image.image.json")):
        raise DataError(f"--data_dir: {folder} has neither features.json nor image.image.json")
    result = {}
    for split in ("train", "test"):
        if split not in splits_info:
            raise DataError(f"{info_path}: no {split!r} split")
        files, lengths, total = _shard_files(folder, splits_info[split])
        counts = []
        for path in files:
            if not os.path.isfile(path):
                raise DataError(f"{info_path}: lists {os.path.basename(path)}, which is missing")
            counts.append(count_records(path))
        if (lengths is not None and counts != lengths) or (total >= 0 and sum(counts) != total):
            raise DataError(f"{info_path}: {split} split should have {lengths or total} examples, "
                            f"the files hold {counts}")
        result[split] = (files, sum(counts))
    return result


def _decode(record):
    parsed = tf.io.parse_single_example(record, {"image": tf.io.FixedLenFeature([], tf.string),
                                                 "label": tf.io.FixedLenFeature([], tf.int64)})
    image = tf.ensure_shape(tf.io.decode_png(parsed["image"], channels=1), [28, 28, 1])
    return image, parsed["label"]


def _scale(images, labels):
    return tf.cast(images, tf.float32) / 255.0, labels


def first_bad_example(path):
    """(record number, cause) of the first record of path that does not decode as an MNIST example, or None."""
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path).map(_decode):
            count += 1
    except tf.errors.OpError as err:
        return count, op_error_cause(err)
    return None


def raise_located(files):
    """After tf.data failed while training on files ({split: (paths, count)}): DataError naming
    the file and record that caused it, damaged or of another schema; returns when no record is to blame."""
    paths = [path for split_paths, _ in files.values() for path in split_paths]
    damaged = run_safety.locate_bad_tfrecord(paths)
    if damaged:
        path, record, reason = damaged
        raise DataError(f"{path}: record {record} is damaged ({reason})") from None
    for path in paths:
        bad = first_bad_example(path)
        if bad:
            raise DataError(f"{path}: record {bad[0]} is not an MNIST example: {bad[1]}") from None


def load_split(files):
    """(image uint8 [28,28,1], int64 label) examples of one split, in file order."""
    return tf.data.TFRecordDataset(files).map(_decode, num_parallel_calls=tf.data.AUTOTUNE)


def pipelines(splits, replica_batch, step_batch, eval_static, rank_size=1, rank_id=0, seed=None, shard_test=False):
    """The original pipeline on {split: (unbatched dataset, number of examples)}: train = cache, repeat, shuffle,
    batch; test = cache, repeat, batch; batches of replica_batch, step_batch images per step of this process.
    The cache holds uint8 images, scaled to float32 in [0, 1] per batch: a quarter of the memory of float32 ones
    (74 MB less peak memory on the 32,600 real images measured in RESULTS.md).
    With several ranks each takes every rank_size-th train example (and test example with shard_test).
    Returns (train, test, train steps per epoch, eval steps)."""
    (train, num_train), (test, num_test) = splits["train"], splits["test"]
    if rank_size > 1:
        train, num_train = train.shard(rank_size, rank_id), num_train // rank_size
        if shard_test:
            test, num_test = test.shard(rank_size, rank_id), num_test // rank_size
    train = train.cache().repeat().shuffle(SHUFFLE_BUFFER, seed=seed)
    test = test.cache().repeat()
    train, test = (split.batch(replica_batch, drop_remainder=eval_static)
                   .map(_scale, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
                   for split in (train, test))
    train_steps, eval_steps = num_train // step_batch, num_test // step_batch
    if not train_steps or not eval_steps:
        raise UsageError(f"--batch_size={step_batch}: larger than the train ({num_train}) or test ({num_test}) split")
    return train, test, train_steps, eval_steps
