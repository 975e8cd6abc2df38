"""Dogs-vs-Cats file discovery, checks, the photo-level split and the tf.data input pipelines.

Labels come from the file-name prefix (cat 0, dog 1). Crops cut offline by data_preprocessor.py are named
<class>.<9-digit photo id><crop digit>.jpg; all crops of one photo share a photo key, and the split is
made over photo keys, so no photo has crops on both sides.
"""
import concurrent.futures
import os
import re
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf
from PIL import Image

from model import INPUT_SIZE

CLASSES = ("cat", "dog")
RESIZE_SHORTER = 256
NAME = re.compile(r"^(cat|dog)\.(\d+)\.jpe?g$", re.IGNORECASE)
CROP_DIGITS = 10  # 9-digit photo id + 1 crop digit
# AlexNet's PCA colour augmentation as the original port does it: per crop, on its own standardised channels
# (not the paper's fixed ImageNet eigen-basis). Alphas ~ N(0, PCA_SIGMA).
PCA_SIGMA = 0.1
# A single-coloured channel has standard deviation 0; the original divided by it (NaN pixels). Floored here.
PCA_MIN_STD = 1e-3
# Rough decoded size of one photo after resizing (shorter side 256, aspect about 4:3), for the cache budget.
BYTES_PER_PHOTO = RESIZE_SHORTER * RESIZE_SHORTER * 4 // 3 * 3


class Inputs(NamedTuple):
    """What one worker trains and evaluates on: its image counts and a function that builds its (training,
    held-out) datasets of (BGR float32 227x227x3 image, int32 label) batches, called inside the training graph.
    Tests build one from arrays in memory."""
    train_images: int
    held_out_images: int
    datasets: Callable[[], tuple]


class DataError(Exception):
    """A problem with the user's data folder; reported as one '[Error] ...' line."""


def resolve_folder(data_path):
    """The folder holding the cat./dog. files: data_path itself, its train/, or the original's layouts."""
    if not os.path.isdir(data_path):
        raise DataError(f"--data_path: {data_path} is not a folder")
    candidates = [data_path, os.path.join(data_path, "train"),
                  os.path.join(data_path, "data", "data_preprocessed", "train"),
                  os.path.join(data_path, "data", "dog_and_cat_25000_split", "train")]
    for folder in candidates:
        if os.path.isdir(folder) and any(NAME.match(n) for n in os.listdir(folder)):
            return folder
    if not os.listdir(data_path):
        raise DataError(f"--data_path: {data_path} is empty")
    raise DataError(f"--data_path: no cat.<n>.jpg / dog.<n>.jpg files in {data_path} or its train/ folder")


def check_jpeg(path):
    """None when the file decodes as a JPEG, else the reason. Decoding at 1/8 scale still reads every byte
    of the compressed stream, so truncated files are caught at a fraction of the cost of a full decode."""
    try:
        if os.path.getsize(path) == 0:
            return "zero-byte file"
        with Image.open(path) as img:
            if img.format != "JPEG":
                return f"not a JPEG ({img.format})"
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except Exception as err:  # PIL raises many types for broken files; any of them means "skip it"
        return str(err).splitlines()[0] or type(err).__name__
    return None


def list_photos(data_path, log=print, skip_bad=False):
    """[(path, label, photo_key)] sorted by name, and whether the files are offline crops.

    Every file is checked first. An unreadable one is a DataError naming it (a damaged download should be
    noticed, not trained around), or with skip_bad a warning naming it and the photo left out."""
    folder = resolve_folder(data_path)
    entries = []
    names = sorted(n for n in os.listdir(folder) if NAME.match(n))
    crops = all(len(NAME.match(n).group(2)) == CROP_DIGITS for n in names)
    paths = [os.path.join(folder, n) for n in names]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        problems = list(pool.map(check_jpeg, paths))
    bad = [(path, problem) for path, problem in zip(paths, problems) if problem]
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"{bad[0][0]}: not a readable JPEG ({bad[0][1]}){more}; remove it, or pass "
                        "--skip_bad_photos=True to train without the unreadable files")
    skipped = 0
    for name, path, problem in zip(names, paths, problems):
        if problem:
            skipped += 1
            log(f"[Warning] skipping {path}: {problem}")
            continue
        cls, digits = NAME.match(name).groups()
        photo = digits[:CROP_DIGITS - 1] if crops else str(int(digits))
        entries.append((path, CLASSES.index(cls.lower()), f"{cls.lower()}.{photo}"))
    log(f"data: {len(entries)} {'crop files' if crops else 'photos'} in {folder}; {skipped} unreadable skipped")
    if not entries:
        raise DataError(f"--data_path: none of the {len(names)} cat./dog. files in {folder} is a readable JPEG")
    return entries, crops


def split(entries, val_photos, seed=0):
    """Holds out val_photos source photos (a count, or a fraction when below 1), chosen by a seeded shuffle
    of the sorted photo keys; returns (train, val) entry lists."""
    keys = sorted({key for _, _, key in entries})
    count = int(round(val_photos * len(keys))) if val_photos < 1 else int(val_photos)
    if count <= 0 or count >= len(keys):
        raise DataError(f"--val_photos: {val_photos} held-out photos of {len(keys)} leaves no training or no "
                        "validation photos; pass a smaller count or a fraction such as 0.2")
    order = np.random.RandomState(seed).permutation(len(keys))
    held_out = {keys[i] for i in order[:count]}
    train = [e for e in entries if e[2] not in held_out]
    val = [e for e in entries if e[2] in held_out]
    return train, val


def decode_jpeg(contents):
    return tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_FAST")  # gray/CMYK -> RGB


def _decode(path):
    return decode_jpeg(tf.io.read_file(path))


def _resize_shorter(image):
    """[H, W, 3] or [N, H, W, 3] uint8 -> shorter side RESIZE_SHORTER, uint8."""
    shape = tf.cast(tf.shape(image)[-3:-1], tf.float32)
    size = tf.cast(tf.round(shape * (RESIZE_SHORTER / tf.reduce_min(shape))), tf.int32)
    size = tf.maximum(size, RESIZE_SHORTER)
    return tf.cast(tf.clip_by_value(tf.image.resize(image, size), 0.0, 255.0), tf.uint8)


def _to_network(image):
    """uint8 RGB -> float32 BGR 0..255, the original's input convention (no mean subtraction)."""
    return tf.reverse(tf.cast(image, tf.float32), axis=[-1])


def pca_jitter(image, alpha):
    """image: uint8 or float [H, W, 3]; alpha: [3]. The crop's pixels are standardised per channel, the
    eigen-basis of their 3x3 covariance is computed, the shift eigvec . (alpha * eigval) is added in the
    standardised space, and the result is mapped back and clipped to 0..255 (float32). Mapped back, that shift
    is a per-channel constant (shift x std), so the pixels are needed only for the 3x3 statistics and the final
    add: no standardised copy of the crop (this step was the input pipeline's largest cost, RESULTS.md)."""
    pixels = tf.reshape(tf.cast(image, tf.float64), [-1, 3])
    # One matmul gives the sums of products, the sums and the count: [x, 1]^T [x, 1]. float64 keeps them exact
    # for 8-bit pixels, so a flat channel has variance 0, not rounding noise.
    augmented = tf.concat([pixels, tf.ones_like(pixels[:, :1])], axis=1)
    sums = tf.matmul(augmented, augmented, transpose_a=True)
    count, mean = sums[3, 3], sums[:3, 3] / sums[3, 3]
    scatter = sums[:3, :3] - count * mean[:, None] * mean[None, :]
    std = tf.maximum(tf.sqrt(tf.maximum(tf.linalg.diag_part(scatter), 0.0) / count), PCA_MIN_STD)
    # The standardised channels' covariance, with n - 1 as the original's np.cov.
    eigval, eigvec = tf.linalg.eigh(scatter / (count - 1) / (std[:, None] * std[None, :]))
    shift = tf.linalg.matvec(eigvec, tf.cast(alpha, tf.float64) * eigval) * std
    return tf.clip_by_value(tf.cast(image, tf.float32) + tf.cast(shift, tf.float32), 0.0, 255.0)


def _augment(image, label):
    image = tf.image.random_crop(image, [INPUT_SIZE, INPUT_SIZE, 3])
    image = tf.image.random_flip_left_right(image)
    image = pca_jitter(image, tf.random.normal([3], stddev=PCA_SIGMA))
    return tf.reverse(image, axis=[-1]), label


def _prepare(crops):
    """Decoded uint8 image ready for cropping: offline crops as cut, photos resized to shorter side 256."""
    def prepare(path, label):
        image = _decode(path)
        return (_fit_crop(image) if crops else _resize_shorter(image)), label
    return prepare


def _fit_crop(image):
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], INPUT_SIZE), tf.equal(shape[1], INPUT_SIZE))
    return tf.cond(same, lambda: image,
                   lambda: tf.cast(tf.image.resize(image, [INPUT_SIZE, INPUT_SIZE]), tf.uint8))


def _center(image, label):
    return tf.image.resize_with_crop_or_pad(image, INPUT_SIZE, INPUT_SIZE), label


def validation_view(images):
    """uint8 RGB photos [N, H, W, 3] (one size per batch) -> what the network sees of a held-out photo (float32
    BGR 0..255, 227x227): the held-out pipeline's resize, centre crop and channel order. Export and predict."""
    return _to_network(_center(_resize_shorter(images), None)[0])


def _tensors(entries):
    paths = [e[0] for e in entries]
    labels = np.array([e[1] for e in entries], np.int32)
    return tf.data.Dataset.from_tensor_slices((paths, labels))


def train_dataset(entries, batch_size, crops, cache, seed=0, shards=1, shard=0):
    """Endless shuffled batches of augmented training images (random 227 crop, flip, PCA jitter)."""
    ds = _tensors(entries).shard(shards, shard)
    n = len(entries[shard::shards])
    auto = tf.data.AUTOTUNE
    if cache:  # decode and resize once, then shuffle the decoded images every epoch
        ds = ds.map(_prepare(crops), num_parallel_calls=auto).cache()
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
    else:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.map(_prepare(crops), num_parallel_calls=auto)
    ds = ds.map(_augment, num_parallel_calls=auto).ignore_errors(log_warning=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(auto)


def eval_dataset(entries, batch_size, crops, cache):
    """Centre crops of the held-out images, in file order, repeated: one pass is ceil(n / batch) batches."""
    ds = _tensors(entries).map(_prepare(crops), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(_center, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)
    if cache:  # the uint8 centre crops, decoded once
        ds = ds.cache()
    ds = ds.map(lambda image, label: (_to_network(image), label), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).repeat().prefetch(tf.data.AUTOTUNE)


def inputs(train_entries, val_entries, batch_size, crops, cache, seed=0, shards=1, shard=0):
    """Inputs of worker `shard` of `shards`: every shards-th training and held-out photo from the shard-th."""
    held_out = val_entries[shard::shards]
    return Inputs(len(train_entries[shard::shards]), len(held_out),
                  lambda: (train_dataset(train_entries, batch_size, crops, cache, seed, shards, shard),
                           eval_dataset(held_out, batch_size, crops, cache)))


def fits_cache(photo_count, cache_mb):
    """Caching keeps the decoded images and a shuffle buffer of them in memory: about twice their size."""
    return 2 * photo_count * BYTES_PER_PHOTO <= cache_mb * 2 ** 20
