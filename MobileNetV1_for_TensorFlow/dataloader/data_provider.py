"""tf.data input for slim ImageNet TFRecords (train-XXXXX-of-NNNNN / validation-XXXXX-of-NNNNN).

Files are sharded across ranks (rank r of n reads files r, r+n, ...; record-level when there are fewer
files than ranks), read interleaved in parallel, decoded and preprocessed in parallel. With a seed the
training stream is reproducible: seeded shuffles, an interleave that keeps its order, and a per-image seed for
the random crop, flip and colour changes (stateless ops). A label outside
[0, num_classes) after subtracting labels_offset stops the run with a clear error (see explain()); a record
without the image or the label is not a slim ImageNet record, and a damaged one is named by file and number
(diagnose()).
"""
import glob
import os
import re

import tensorflow as tf

import run_safety
from preprocessing import preprocessing_factory

AUTOTUNE = getattr(tf.data, "AUTOTUNE", -1)  # -1 is AUTOTUNE on TensorFlow 1.15 (Ascend) as well
LABEL_ERROR = "label outside num_classes"
# Required (no default): a TFRecord of another schema must stop the run, not train on label -1.
REQUIRED = {"image/encoded": "bytes_list", "image/class/label": "int64_list"}
FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/format": tf.io.FixedLenFeature([], tf.string, default_value="jpeg"),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
}


class DataError(Exception):
    """The data folder cannot be used (no files, corrupt record, bad label); one line for the user."""


def list_files(dataset_dir, split_name):
    pattern = os.path.join(dataset_dir, f"{split_name}-*")
    files = sorted(f for f in glob.glob(pattern) if os.path.isfile(f))
    if not files:
        raise DataError(f"--dataset_dir={dataset_dir}: no TFRecord files matching {split_name}-* (slim ImageNet "
                        f"layout {split_name}-00000-of-NNNNN expected)")
    return files


def missing_feature(record):
    """The first required feature a serialized tf.train.Example lacks (or holds as another type), else None."""
    try:
        features = tf.train.Example.FromString(record).features.feature
    except Exception:  # protobuf's DecodeError: not an Example at all
        return "image/encoded"
    for name, kind in REQUIRED.items():
        if name not in features or features[name].WhichOneof("kind") != kind:
            return name
    return None


def _first_bad_record(files, first_only):
    """(file, record number, missing feature) of the first record that is not a slim ImageNet Example."""
    for path in files:
        for number, record in enumerate(tf.compat.v1.io.tf_record_iterator(path)):
            name = missing_feature(record)
            if name:
                return path, number, name
            if first_only:
                break
    return None


def _not_slim(found):
    path, number, name = found
    return DataError(f"not a slim ImageNet record: missing feature {name} in {path} (record {number})")


def _corrupt(files):
    located = run_safety.locate_bad_tfrecord(files)
    return DataError("corrupt TFRecord {}: record {}: {}".format(*located)) if located else None


def check_records(files):
    """Before anything is written: the first record of every file reads back and has the slim features."""
    try:
        found = _first_bad_record(files, first_only=True)
    except tf.errors.OpError as err:
        raise _corrupt(files) or DataError(f"unreadable TFRecord: {run_safety.short(err)}") from None
    if found:
        raise _not_slim(found)


def estimated_count(files):
    """About how many records the files hold, for progress lines: the first file's count times the number of
    files (slim's build_imagenet_data.py writes shards of equal size)."""
    return sum(1 for _ in tf.compat.v1.io.tf_record_iterator(files[0])) * len(files)


def diagnose(error, files):
    """A DataError naming the file (and record) behind a runtime data error, or None for other errors. Only on
    the failure path: it reads the files again up to the bad record."""
    message = getattr(error, "message", str(error))
    if isinstance(error, tf.errors.DataLossError) or "corrupted record" in message:
        return _corrupt(files)
    missing = re.search(r"Feature: (\S+) \(data type: \w+\) is required", message)
    if missing:
        found = _first_bad_record(files, first_only=False)
        return _not_slim(found) if found else DataError(
            f"not a slim ImageNet record: missing feature {missing.group(1)} in one of the {len(files)} files")
    return None


def shard_files(files, rank_id, rank_size):
    """Returns (files of this rank, whether records still need sharding)."""
    if rank_size <= 1:
        return files, False
    if len(files) >= rank_size:
        return files[rank_id::rank_size], False
    return files, True


def parse(serialized, num_classes, labels_offset):
    """Encoded JPEG, boxes [1, n, 4] (ymin, xmin, ymax, xmax) and the 0-based label (checked)."""
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    boxes = tf.stack([tf.sparse.to_dense(parsed[f"image/object/bbox/{k}"]) for k in ("ymin", "xmin", "ymax", "xmax")],
                     axis=1)
    label = tf.cast(parsed["image/class/label"], tf.int32) - labels_offset
    check = tf.debugging.Assert(
        tf.logical_and(label >= 0, label < num_classes),
        [f"{LABEL_ERROR}: image/class/label - labels_offset ({labels_offset}) =", label,
         f"is not in 0..{num_classes - 1}"])
    with tf.control_dependencies([check]):
        label = tf.identity(label)
    return parsed["image/encoded"], boxes[tf.newaxis], label


def build_dataset(dataset_dir, split_name, batch_size, is_training, image_size, num_classes,
                  preprocessing_name="inception_v2", labels_offset=0, rank_id=0, rank_size=1, seed=None,
                  drop_remainder=None):
    """Batches of (images float [b, s, s, 3] in [-1, 1], labels int32 [b]); training repeats forever."""
    files, shard_records = shard_files(list_files(dataset_dir, split_name), rank_id, rank_size)
    preprocess = preprocessing_factory.get_preprocessing(preprocessing_name, is_training=is_training)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if is_training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    # deterministic=True keeps the files' cycle order, so a seeded run reads the same stream every time.
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                                 num_parallel_calls=AUTOTUNE, deterministic=True)
    if shard_records:
        dataset = dataset.shard(rank_size, rank_id)
    if is_training:
        dataset = dataset.shuffle(max(4 * batch_size, 1024), seed=seed).repeat()
        # A seed per image: its crop, flip and colours then do not depend on which parallel call ran first.
        dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed)))

        def decode(serialized, image_seed):
            encoded, boxes, label = parse(serialized, num_classes, labels_offset)
            return preprocess(encoded, image_size, image_size, bbox=boxes, seed=tf.stack([image_seed, 0])), label
    else:
        def decode(serialized):
            encoded, _, label = parse(serialized, num_classes, labels_offset)
            return preprocess(encoded, image_size, image_size), label

    dataset = dataset.map(decode, num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=is_training if drop_remainder is None else drop_remainder)
    return dataset.prefetch(AUTOTUNE)


def explain(error):
    """One line for a TensorFlow runtime error caused by the data, or None when it is not a data error."""
    message = getattr(error, "message", str(error))
    if isinstance(error, tf.errors.DataLossError) or "corrupted record" in message:
        return f"corrupt TFRecord: {message.splitlines()[0]}"
    if isinstance(error, tf.errors.InvalidArgumentError):
        if LABEL_ERROR in message:
            start = message.index(LABEL_ERROR)
            line = message[start:].splitlines()[0].replace("[", "").replace("]", "")
            return " ".join(line.split())
        if "JPEG" in message or "jpeg" in message or "image" in message.lower():
            return f"undecodable image in the TFRecords: {message.splitlines()[0]}"
        return f"bad record in the TFRecords: {message.splitlines()[0]}"
    return None
