"""MARS reader: bbox_train/<id>/, bbox_test/<id>/ images named 0001C1T0001F001.jpg (256x128), and info/.

The camera is character 5 of the name, the tracklet characters 7-10. A non-numeric id folder such as
00-1 is the junk label -1. info/{train,test}_name.txt list the images in order; info/tracks_test_info.mat
holds track_test_info rows [start, end, id, camera] (1-based rows of test_name.txt), info/query_IDX.mat
the 1-based query track indices.
"""
import os
import re

import numpy as np
import scipy.io

from datasets.util import UsageError, check_image_sizes, require_dir

NAME = re.compile(r"^(\d{4}|00-1)C(\d)T(\d{4})F(\d{3})\.jpg$")
IMAGE_HEIGHT, IMAGE_WIDTH = 256, 128
MAX_SIZE_CHECKS = 2000


def _label(text):
    return int(text) if text.isdigit() else -1


def read_names(dataset_dir, subset):
    """(paths, ids, cameras, tracklets) in the order of info/<subset>_name.txt."""
    info = require_dir(os.path.join(dataset_dir, "info"), "MARS layout")
    listing = os.path.join(info, f"{subset}_name.txt")
    folder = require_dir(os.path.join(dataset_dir, f"bbox_{subset}"), "MARS layout")
    if not os.path.isfile(listing):
        raise UsageError(f"{listing}: missing file (MARS layout)")
    with open(listing) as handle:
        names = [line.strip() for line in handle if line.strip()]
    if not names:
        raise UsageError(f"{listing}: lists no images")
    paths, ids, cams, tracks = [], [], [], []
    for name in names:
        match = NAME.match(name)
        if match is None:
            raise UsageError(f"{listing}: {name!r} is not a MARS file name like 0001C1T0001F001.jpg")
        paths.append(os.path.join(folder, name[:4], name))
        ids.append(_label(name[:4]))
        cams.append(int(name[5]))
        tracks.append(int(name[7:11]))
    missing = next((p for p in paths if not os.path.isfile(p)), None)
    if missing:
        raise UsageError(f"{missing}: listed in {listing} but missing")
    check_image_sizes(paths, IMAGE_HEIGHT, IMAGE_WIDTH, MAX_SIZE_CHECKS)
    return paths, np.array(ids, np.int64), np.array(cams, np.int64), np.array(tracks, np.int64)


def read_train(dataset_dir):
    paths, ids, cams, _ = read_names(dataset_dir, "train")
    keep = ids > 0
    return [p for p, k in zip(paths, keep) if k], ids[keep], cams[keep]


def _load_mat(path, key):
    if not os.path.isfile(path):
        raise UsageError(f"{path}: missing file (MARS layout)")
    try:
        return np.asarray(scipy.io.loadmat(path)[key])
    except (KeyError, ValueError, OSError) as err:
        raise UsageError(f"{path}: cannot read variable {key!r} ({err})") from None


def read_test_tracks(dataset_dir, num_images):
    """(track_info [T, 4] with 0-based start/end-inclusive rows, query track indices 0-based)."""
    info = os.path.join(dataset_dir, "info")
    tracks = _load_mat(os.path.join(info, "tracks_test_info.mat"), "track_test_info").astype(np.int64)
    query = _load_mat(os.path.join(info, "query_IDX.mat"), "query_IDX").astype(np.int64).ravel() - 1
    if tracks.ndim != 2 or tracks.shape[1] < 4 or tracks[:, :2].min() < 1 or tracks[:, 1].max() > num_images:
        raise UsageError(f"{info}/tracks_test_info.mat: rows must be [start, end, id, camera] within test_name.txt")
    if query.min() < 0 or query.max() >= len(tracks):
        raise UsageError(f"{info}/query_IDX.mat: indices outside 1..{len(tracks)}")
    tracks = tracks.copy()
    tracks[:, :2] -= 1
    return tracks, query
