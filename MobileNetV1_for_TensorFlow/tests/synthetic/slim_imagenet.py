"""Synthetic ImageNet in slim's TFRecord layout: train-XXXXX-of-NNNNN / validation-XXXXX-of-NNNNN shards.

Each record carries the exact feature keys of slim's build_imagenet_data.py: real JPEG bytes,
image/class/label in 1..num_classes (0 stays the background class, so models use num_classes + 1
outputs), text, format, height/width and object boxes (present on about half the records). A class is a
hue plus a stripe orientation, drawn over the whole picture, so any random crop, flip, brightness or
saturation change still shows it: learnable, but not from a single pixel thanks to noise and a blob.
"""
import colorsys
import io
import os

import numpy as np
from PIL import Image


def _feature(value):
    import tensorflow as tf

    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    if isinstance(value, int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    if value and isinstance(value[0], float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=value))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(value)))


def _picture(rng, label, num_classes, size):
    height = int(size * rng.uniform(0.8, 1.25))
    width = int(size * rng.uniform(0.8, 1.25))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    hue = (label - 1) / num_classes
    colour = np.array(colorsys.hsv_to_rgb(hue, 0.85, 0.9), np.float32) * 255.0
    angle = np.pi * ((label - 1) % 4) / 4.0
    period = size / rng.uniform(4.0, 7.0)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period
                                 + rng.uniform(0, 2 * np.pi))
    image = colour * (0.45 + 0.55 * stripes[..., None])
    cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.1, 0.25) * size
    image[((yy - cy) ** 2 + (xx - cx) ** 2) < r * r] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 10, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _example(rng, label, num_classes, size):
    import tensorflow as tf

    pixels = _picture(rng, label, num_classes, size)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(rng.integers(75, 95)))
    height, width = pixels.shape[:2]
    boxes = {k: [] for k in ("xmin", "ymin", "xmax", "ymax")}
    if rng.random() < 0.5:  # about half the records carry one or two object boxes, as in ImageNet train
        for _ in range(int(rng.integers(1, 3))):
            x0, y0 = rng.uniform(0.0, 0.4, 2)
            x1, y1 = rng.uniform(0.6, 1.0, 2)
            for key, value in zip(("xmin", "ymin", "xmax", "ymax"), (x0, y0, x1, y1)):
                boxes[key].append(float(value))
    feature = {
        "image/height": _feature(int(height)),
        "image/width": _feature(int(width)),
        "image/colorspace": _feature(b"RGB"),
        "image/channels": _feature(3),
        "image/class/label": _feature(int(label)),
        "image/class/synset": _feature(f"n{label:08d}".encode()),
        "image/class/text": _feature(f"synthetic class {label}".encode()),
        "image/format": _feature(b"JPEG"),
        "image/filename": _feature(f"synthetic_{label}.JPEG".encode()),
        "image/encoded": _feature(buffer.getvalue()),
    }
    # slim's writer names the box labels image/object/bbox/label, its reader image/object/class/label: keep both.
    box_labels = tf.train.Feature(int64_list=tf.train.Int64List(value=[label] * len(boxes["xmin"])))
    feature["image/object/bbox/label"] = feature["image/object/class/label"] = box_labels
    for key, values in boxes.items():
        feature[f"image/object/bbox/{key}"] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_split(out_dir, split, count, shards, rng, num_classes, size):
    import tensorflow as tf

    labels = np.arange(count) % num_classes + 1
    rng.shuffle(labels)
    for shard, part in enumerate(np.array_split(labels, shards)):
        path = os.path.join(out_dir, f"{split}-{shard:05d}-of-{shards:05d}")
        with tf.io.TFRecordWriter(path) as writer:
            for label in part:
                writer.write(_example(rng, int(label), num_classes, size))


def generate(out_dir, seed=0, num_classes=10, train_count=320, validation_count=100, train_shards=4,
             validation_shards=2, image_size=72):
    """Writes the shards (default: 10 classes, 320 train / 100 validation images of about 72 px; seconds)."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    _write_split(out_dir, "train", train_count, train_shards, rng, num_classes, image_size)
    _write_split(out_dir, "validation", validation_count, validation_shards, rng, num_classes, image_size)
    with open(os.path.join(out_dir, "labels.txt"), "w") as handle:
        handle.writelines(f"{label}:synthetic class {label}\n" for label in range(1, num_classes + 1))
    return out_dir
