"""Training input: the validation split, identity-balanced batches and the tf.data JPEG pipeline."""
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

import run_safety
from datasets.util import UsageError, create_validation_split
from nets.deep_sort import network_definition as net_def

IMAGES_PER_ID = 4
MIN_IDENTITIES = 32


@dataclass
class Split:
    """One side of the validation split: image paths, person ids and cameras."""
    paths: list
    labels: np.ndarray
    cameras: np.ndarray

    @property
    def num_ids(self):
        return len(np.unique(self.labels))


@dataclass
class TrainingData:
    train: Split
    validation: Split
    num_classes: int  # classifier width: the largest person id + 1, as the original


def split_training_data(paths, labels, cameras):
    """Holds out 10 % of the identities (datasets.util.create_validation_split) for validation."""
    train_mask, val_mask = create_validation_split(labels)

    def side(mask):
        return Split([p for p, k in zip(paths, mask) if k], labels[mask], cameras[mask])

    return TrainingData(side(train_mask), side(val_mask), int(labels.max()) + 1)


def check_batch_size(batch_size, num_ids, dataset_dir):
    """UsageError unless batch_size/4 distinct identities (and at least 32) can fill every step."""
    if batch_size % IMAGES_PER_ID:
        raise UsageError(f"--batch_size: {batch_size} is not divisible by {IMAGES_PER_ID}")
    needed = max(MIN_IDENTITIES, batch_size // IMAGES_PER_ID)
    if num_ids < needed:
        raise UsageError(f"--dataset_dir={dataset_dir}: {num_ids} training identities after the validation "
                         f"split; need at least {needed} (batch_size/4 per step, {MIN_IDENTITIES} minimum)")


def decode(path, size=net_def.IMAGE_SHAPE[:2]):
    """JPEG file -> float32 RGB in [0, 1], resized to 128x64 when the source is larger (MARS)."""
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    image = tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), size)  # identity at 128x64
    return tf.ensure_shape(image, [size[0], size[1], 3])


def decode_failure(paths, err):
    """The error to raise for an InvalidArgumentError of a pipeline over paths: a UsageError naming the first
    image the decoder rejects (tf.data's message names none), else err itself. Failure path only: it decodes
    every image again, with the pipeline's own decoder in a graph of its own."""
    with tf.Graph().as_default() as graph:
        path = tf.compat.v1.placeholder(tf.string, [])
        image = decode(path)
    with tf.compat.v1.Session(graph=graph) as sess:
        for candidate in paths:
            try:
                sess.run(image, {path: candidate})
            except tf.errors.OpError as bad:
                return UsageError(f"{candidate}: not a decodable JPEG image ({run_safety.short(bad.message, 120)})")
    return err


def identity_batches(paths, labels, batch_size, rng):
    """Endless (path, label) stream: per step batch_size/4 identities without replacement, 4 images each
    (drawn with replacement only when an identity has fewer than 4)."""
    by_id = {}
    for i, label in enumerate(labels):
        by_id.setdefault(int(label), []).append(i)
    ids = np.array(sorted(by_id))
    per_step = batch_size // IMAGES_PER_ID
    while True:
        for label in rng.choice(ids, per_step, replace=False):
            idx = by_id[int(label)]
            for i in rng.choice(idx, IMAGES_PER_ID, replace=len(idx) < IMAGES_PER_ID):
                yield paths[i], label


def training_dataset(split, batch_size, seed):
    rng = np.random.RandomState(seed)
    flip_seed = rng.randint(2 ** 31)
    data = tf.data.Dataset.from_generator(
        lambda: identity_batches(split.paths, split.labels, batch_size, rng),
        output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64))).enumerate()

    def load(index, pair):
        # A stateful random flip inside a parallel map hands out its numbers in thread order; seeding each
        # flip with the sample's position makes --seed runs repeatable.
        path, label = pair
        flip = tf.image.stateless_random_flip_left_right(decode(path), tf.stack([flip_seed, index]))
        return flip, label

    return data.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)
