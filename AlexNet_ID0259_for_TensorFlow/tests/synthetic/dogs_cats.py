"""Synthetic Dogs-vs-Cats: learnable cat.<n>.jpg / dog.<n>.jpg photos of varied sizes and aspect ratios.

Cats are cool-coloured with horizontal stripes, dogs warm-coloured with vertical stripes, each on a noisy
background with a random blob, so colour and texture both separate the classes. AlexNet's --data_path
takes the folder directly (the Kaggle train/ layout).
"""
import os

import numpy as np
from PIL import Image


def _photo(rng, label):
    width, height = int(rng.integers(120, 420)), int(rng.integers(100, 360))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(10, 24)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (yy if label == 0 else xx) / period + rng.uniform(0, 6.3))
    base = np.array([60, 110, 200] if label == 0 else [210, 120, 50], np.float32) + rng.normal(0, 20, 3)
    image = base * (0.55 + 0.45 * stripes[..., None])
    cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(15, 60)
    blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
    image[blob] = rng.uniform(0, 255, 3)
    image += rng.normal(0, 12, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def generate(out_dir, seed=0, per_class=48):
    """2 x per_class JPEGs named as in Kaggle's train/ folder; a few seconds for the default 96."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in range(per_class):
        for label, name in enumerate(("cat", "dog")):
            _photo(rng, label).save(os.path.join(out_dir, f"{name}.{n}.jpg"), quality=int(rng.integers(70, 95)))
    return out_dir
