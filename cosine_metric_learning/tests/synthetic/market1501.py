"""Synthetic Market-1501: learnable pedestrians in the real folder layout and file names.

Each identity has its own upper/lower clothing colours and a stripe texture (period, angle); each camera
tints and brightens the picture differently, and every image is shifted and noised a little, so the
identity is learnable across cameras. Layout: bounding_box_train/, bounding_box_test/ (with -1 junk and
0000 distractor files), query/, gt_query/ (<query>_good.mat / _junk.mat with 1-based good_index /
junk_index into the sorted gallery) and gt_bbox/, names PPPP_cXsY_FFFFFF_BB.jpg, images 128x64.
"""
import os

import numpy as np
import scipy.io
from PIL import Image


def identity_look(rng):
    """The fixed appearance of one person."""
    return {"top": rng.uniform(20, 235, 3), "bottom": rng.uniform(20, 235, 3),
            "period": rng.uniform(4, 14), "angle": rng.uniform(0, np.pi), "split": rng.uniform(0.45, 0.6),
            "bag": rng.uniform(20, 235, 3), "bag_y": rng.uniform(0.25, 0.75), "bag_side": rng.choice([-1, 1])}


def camera_look(rng):
    return {"gain": rng.uniform(0.9, 1.1, 3), "offset": rng.uniform(-10, 10, 3)}


def render(look, cam, rng, height=128, width=64):
    """One RGB uint8 picture of a person seen by a camera."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy += rng.uniform(-0.015, 0.015) * height
    xx += rng.uniform(-0.03, 0.03) * width
    wave = np.sin(2 * np.pi * (np.cos(look["angle"]) * xx + np.sin(look["angle"]) * yy) / (look["period"] * width / 64))
    body = np.abs(xx - width / 2) < width * 0.32
    top = body & (yy > height * 0.18) & (yy < height * look["split"])
    bottom = body & (yy >= height * look["split"]) & (yy < height * 0.97)
    head = ((yy - height * 0.1) ** 2 / (height * 0.08) ** 2 + (xx - width / 2) ** 2 / (width * 0.16) ** 2) < 1
    image = np.empty((height, width, 3), np.float32)
    image[:] = rng.uniform(90, 160) + rng.normal(0, 6, 3)  # greyish background
    image[top] = look["top"] * (0.75 + 0.25 * wave[top])[:, None]
    image[bottom] = look["bottom"]
    image[head] = (205, 170, 140)
    bag = (np.abs(yy - height * look["bag_y"]) < height * 0.08) & (np.abs(xx - width * (0.5 + 0.3 * look["bag_side"])) < width * 0.12)
    image[bag] = look["bag"]
    image = image * cam["gain"] + cam["offset"] + rng.normal(0, 6, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def _write(folder, name, picture):
    picture.save(os.path.join(folder, name), quality=90)


def generate(out_dir, seed=0, train_ids=60, test_ids=20, cameras=6, per_camera=2, junk=6, distractors=6):
    """Writes the folder; the default (60 train / 20 test identities, 6 cameras, 2 images each) takes a
    few seconds. Person ids are 2, 4, ... for training and odd numbers for testing."""
    rng = np.random.default_rng(seed)
    cams = [camera_look(rng) for _ in range(cameras + 1)]
    folders = {k: os.path.join(out_dir, k) for k in ("bounding_box_train", "bounding_box_test", "query",
                                                     "gt_query", "gt_bbox")}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    frame = 0

    def name(pid, cam, seq):
        nonlocal frame
        frame += 7
        return f"{pid:04d}_c{cam}s{seq}_{frame:06d}_{rng.integers(0, 4):02d}.jpg" if pid >= 0 else \
            f"-1_c{cam}s{seq}_{frame:06d}_00.jpg"

    for i in range(train_ids):
        look = identity_look(rng)
        for cam in range(1, cameras + 1):
            for _ in range(per_camera):
                _write(folders["bounding_box_train"], name(2 * i + 2, cam, 1), render(look, cams[cam], rng))
    queries = []
    for i in range(test_ids):
        look = identity_look(rng)
        pid = 2 * i + 1
        for cam in range(1, cameras + 1):
            for k in range(per_camera):
                picture = render(look, cams[cam], rng)
                _write(folders["bounding_box_test"], name(pid, cam, 1), picture)
                if k == 0:
                    _write(folders["gt_bbox"], name(pid, cam, 1), picture)
            if cam <= 2:
                query = name(pid, cam, 1)
                _write(folders["query"], query, render(look, cams[cam], rng))
                queries.append(query)
    for _ in range(junk):
        _write(folders["bounding_box_test"], name(-1, int(rng.integers(1, cameras + 1)), 1),
               render(identity_look(rng), cams[0], rng))
    for _ in range(distractors):
        _write(folders["bounding_box_test"], name(0, int(rng.integers(1, cameras + 1)), 1),
               render(identity_look(rng), cams[0], rng))
    gallery = sorted(os.listdir(folders["bounding_box_test"]))
    g_ids = np.array([int(n.split("_")[0]) for n in gallery])
    g_cams = np.array([int(n.split("_")[1][1]) for n in gallery])
    for query in queries:
        pid, cam = int(query.split("_")[0]), int(query.split("_")[1][1])
        good = np.flatnonzero((g_ids == pid) & (g_cams != cam)) + 1
        junk_index = np.flatnonzero(((g_ids == pid) & (g_cams == cam)) | (g_ids == -1)) + 1
        stem = os.path.join(folders["gt_query"], query[:-4])
        scipy.io.savemat(stem + "_good.mat", {"good_index": good.reshape(-1, 1)})
        scipy.io.savemat(stem + "_junk.mat", {"junk_index": junk_index.reshape(-1, 1)})
    return out_dir
