"""Synthetic MARS: learnable tracklets in the real layout (bbox_train/, bbox_test/, info/).

Pictures come from the Market-1501 generator's person model (identity colours and texture, camera tint)
at MARS size 256x128. Each identity has one tracklet per camera of a few frames, named
PPPPCcTttttFfff.jpg under bbox_<subset>/PPPP/; the test split adds a 00-1 junk folder and 0000
distractors. info/ holds train_name.txt, test_name.txt, tracks_train_info.mat, tracks_test_info.mat
([start, end, id, camera], 1-based) and query_IDX.mat (1-based, one query track per test identity).
"""
import os

import numpy as np
import scipy.io

from .market1501 import camera_look, identity_look, render


def _tracks(root, subset, people, cams, cameras, frames, rng):
    """Writes one subset; returns (names in listing order, track rows)."""
    names, rows = [], []
    for pid, look in people:
        folder_name = "00-1" if pid < 0 else f"{pid:04d}"
        folder = os.path.join(root, f"bbox_{subset}", folder_name)
        os.makedirs(folder, exist_ok=True)
        for track, cam in enumerate(range(1, cameras + 1), start=1):
            start = len(names) + 1
            for f in range(1, frames + 1):
                name = f"{folder_name}C{cam}T{track:04d}F{f:03d}.jpg"
                render(look, cams[cam], rng, height=256, width=128).save(os.path.join(folder, name), quality=90)
                names.append(name)
            rows.append([start, len(names), pid, cam])
    return names, np.array(rows, np.int32)


def generate(out_dir, seed=0, train_ids=40, test_ids=10, cameras=3, frames=3):
    """Defaults write 40 training and 10 test identities (plus junk and a distractor) in a few seconds."""
    rng = np.random.default_rng(seed)
    cams = [camera_look(rng) for _ in range(cameras + 1)]
    info = os.path.join(out_dir, "info")
    os.makedirs(info, exist_ok=True)
    train = [(2 * i + 2, identity_look(rng)) for i in range(train_ids)]
    test = [(-1, identity_look(rng)), (0, identity_look(rng))] + [(2 * i + 1, identity_look(rng))
                                                                   for i in range(test_ids)]
    test.sort(key=lambda p: "00-1" if p[0] < 0 else f"{p[0]:04d}")
    train_names, train_rows = _tracks(out_dir, "train", train, cams, cameras, frames, rng)
    test_names, test_rows = _tracks(out_dir, "test", test, cams, cameras, frames, rng)
    for subset, names in (("train", train_names), ("test", test_names)):
        with open(os.path.join(info, f"{subset}_name.txt"), "w") as handle:
            handle.write("\n".join(names) + "\n")
    scipy.io.savemat(os.path.join(info, "tracks_train_info.mat"), {"track_train_info": train_rows})
    scipy.io.savemat(os.path.join(info, "tracks_test_info.mat"), {"track_test_info": test_rows})
    query = [np.flatnonzero(test_rows[:, 2] == pid)[0] + 1 for pid, _ in test if pid > 0]
    scipy.io.savemat(os.path.join(info, "query_IDX.mat"), {"query_IDX": np.array(query, np.int32).reshape(1, -1)})
    return out_dir
