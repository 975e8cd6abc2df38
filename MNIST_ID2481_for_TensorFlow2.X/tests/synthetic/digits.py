"""Learnable 28x28 grey "digits": one random stroke template per class, shifted and noised per sample."""
import numpy as np

SIDE = 28


def _templates(rng, num_classes):
    templates = np.zeros((num_classes, SIDE, SIDE), np.float32)
    ys, xs = np.mgrid[0:SIDE, 0:SIDE]
    for c in range(num_classes):
        for _ in range(3):  # three thick strokes per class
            (y0, x0), (y1, x1) = rng.integers(6, SIDE - 6, size=(2, 2))
            for t in np.linspace(0.0, 1.0, 24):
                cy, cx = y0 + t * (y1 - y0), x0 + t * (x1 - x0)
                templates[c] = np.maximum(templates[c], np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 3.0))
    return templates


def make(count, seed=0, num_classes=10):
    """Returns uint8 images [count, 28, 28] and uint8 labels [count]; the templates depend only on seed 0."""
    templates = _templates(np.random.default_rng(0), num_classes)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=count).astype(np.uint8)
    images = np.empty((count, SIDE, SIDE), np.uint8)
    for i, label in enumerate(labels):
        shifted = np.roll(templates[label], tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
        noisy = shifted * rng.uniform(0.7, 1.0) + rng.normal(0.0, 0.15, (SIDE, SIDE))
        images[i] = np.clip(noisy * 255.0, 0, 255).astype(np.uint8)
    return images, labels
