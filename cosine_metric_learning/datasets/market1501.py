"""Market-1501 reader: bounding_box_train/, bounding_box_test/, query/ with PPPP_cXsY_FFFFFF_BB.jpg names.

PPPP is the person id (4 digits; -1 = junk, 0000 = distractor), X the camera. Images are 128x64.
"""
import os
import re

import numpy as np

from datasets.util import UsageError, check_image_sizes, list_jpegs, require_dir

NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
IMAGE_HEIGHT, IMAGE_WIDTH = 128, 64
SUBSETS = ("bounding_box_train", "bounding_box_test", "query")


def parse_name(folder, name):
    match = NAME.match(name)
    if match is None:
        raise UsageError(f"{os.path.join(folder, name)}: file name is not PPPP_cXsY_FFFFFF_BB.jpg")
    return int(match.group(1)), int(match.group(2))


def read_subset(dataset_dir, subset, check_sizes=True):
    """(paths, person ids, cameras) of one folder, sorted by file name."""
    folder = require_dir(os.path.join(dataset_dir, subset), "Market-1501 layout")
    names = list_jpegs(folder)
    if not names:
        raise UsageError(f"{folder}: no .jpg images")
    parsed = [parse_name(folder, n) for n in names]
    paths = [os.path.join(folder, n) for n in names]
    if check_sizes:
        check_image_sizes(paths, IMAGE_HEIGHT, IMAGE_WIDTH)
    ids = np.array([p[0] for p in parsed], np.int64)
    cams = np.array([p[1] for p in parsed], np.int64)
    return paths, ids, cams


def read_train(dataset_dir):
    """Training images with a real identity (junk/distractor ids are dropped); labels = person ids."""
    paths, ids, cams = read_subset(dataset_dir, "bounding_box_train")
    keep = ids > 0
    return [p for p, k in zip(paths, keep) if k], ids[keep], cams[keep]
