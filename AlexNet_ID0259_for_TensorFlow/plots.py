"""The pictures a run leaves: acc.png and loss.png (per-epoch curves) and the conv1 kernels of an epoch."""
import math
import os

import numpy as np
from PIL import Image

import zoo_precision

KERNEL_COLUMNS = 12
KERNEL_ZOOM = 4


def save_curves(out, history):
    """acc.png (training and held-out accuracy) and loss.png from a history (run_outputs.new_history)."""
    zoo_precision.allow_matplotlib()  # the entry scripts keep it out of TensorFlow's start-up
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[Warning] matplotlib is not installed; acc.png and loss.png are not written")
        return
    epochs = range(1, len(history["loss"]) + 1)
    for name, series, ylabel in (("acc", (("train", history["train_acc"]), ("held-out", history["test_acc"])),
                                  "accuracy (%)"), ("loss", (("train", history["loss"]),), "loss")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, values in series:
            ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{name}.png"))
        plt.close(fig)


def kernel_grid(kernels):
    """The conv1 kernels (one [k, k, 3, n] array per tower, BGR input) as one uint8 RGB image: a grid of
    KERNEL_COLUMNS columns, each kernel scaled to 0..255 on its own, white 1-pixel gaps."""
    w = np.concatenate(kernels, axis=3)[:, :, ::-1, :]  # BGR input channels -> RGB for display
    w = w - w.min(axis=(0, 1, 2), keepdims=True)
    w = (255 * w / np.maximum(w.max(axis=(0, 1, 2), keepdims=True), 1e-12)).astype(np.uint8)
    k, pad = w.shape[0], 1
    rows = math.ceil(w.shape[3] / KERNEL_COLUMNS)
    grid = np.full((rows * (k + pad) + pad, KERNEL_COLUMNS * (k + pad) + pad, 3), 255, np.uint8)
    for i in range(w.shape[3]):
        r, c = divmod(i, KERNEL_COLUMNS)
        top, left = pad + r * (k + pad), pad + c * (k + pad)
        grid[top:top + k, left:left + k] = w[..., i]
    return grid


def save_kernels(out, epoch, kernels):
    """first_kernel_visualization/epoch_<epoch>.png: kernel_grid enlarged KERNEL_ZOOM times."""
    grid = kernel_grid(kernels)
    folder = os.path.join(out, "first_kernel_visualization")
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * KERNEL_ZOOM, grid.shape[0] * KERNEL_ZOOM), Image.NEAREST).save(
        os.path.join(folder, f"epoch_{epoch}.png"))
