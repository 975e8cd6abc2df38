"""Helpers shared by the dataset readers: user errors, the validation split, image-size checks."""
import os

import numpy as np
from PIL import Image


class UsageError(Exception):
    """A mistake in the user's input (flag, file or folder); printed as one '[Error] ...' line, exit 1."""


def require_dir(path, what=None):
    if not os.path.isdir(path):
        raise UsageError(f"{path}: missing folder{' (' + what + ')' if what else ''}")
    return path


def list_jpegs(folder):
    """Sorted .jpg names in a folder; other files (Thumbs.db in the real Market-1501) are skipped."""
    return sorted(n for n in os.listdir(folder) if n.lower().endswith(".jpg"))


def ends_like_a_jpeg(path):
    """A complete JPEG ends with the end-of-image marker FF D9 (zero padding after it is allowed); a file cut
    short, as an interrupted copy or download leaves it, does not. Reads only the file's last bytes."""
    with open(path, "rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - 64))
        return handle.read().rstrip(b"\x00").endswith(b"\xff\xd9")


def check_image_sizes(paths, height, width, max_checked=None):
    """Raises UsageError for the first image whose size is not width x height (header read only) or that is
    cut short (its last bytes). With max_checked, an evenly spaced sample of that many images is checked."""
    paths = list(paths)
    if max_checked is not None and len(paths) > max_checked:
        paths = paths[:: len(paths) // max_checked]
    for path in paths:
        try:
            with Image.open(path) as image:
                size = image.size
        except OSError as err:
            raise UsageError(f"{path}: not a readable image ({err})") from None
        if size != (width, height):
            raise UsageError(f"{path}: image is {size[0]}x{size[1]} (width x height), expected {width}x{height}")
        if not ends_like_a_jpeg(path):
            raise UsageError(f"{path}: truncated JPEG (no end-of-image marker); copy the file again")


def create_validation_split(labels, fraction=0.1, seed=1234):
    """Holds out int(fraction * #identities) identities chosen by RandomState(seed) without replacement;
    returns (train_mask, validation_mask) over the samples."""
    labels = np.asarray(labels)
    unique = np.unique(labels)
    held_out = np.random.RandomState(seed).choice(unique, int(fraction * len(unique)), replace=False)
    validation = np.isin(labels, held_out)
    return ~validation, validation
