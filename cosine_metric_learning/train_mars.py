"""MARS: train, eval, export, finalize, freeze or evaluate_test (see README.md).

    python train_mars.py --dataset_dir=/data/MARS [--mode=...] [flags]
"""
import os
import sys

import numpy as np

import metrics
import train_app
from datasets import mars

NAME = "mars"
NUM_GALLERIES = 20
EXPORT_DIR_FLAG = "dataset_dir"  # the MARS kit reads feat_test.mat from the dataset folder


def add_flags(parser):
    parser.add_argument("--dataset_dir", default="resources/MARS-evaluation-master",
                        help="folder with bbox_train/, bbox_test/ and info/")


def read_train(dataset_dir):
    return mars.read_train(dataset_dir)


def feature_files(dataset_dir, export_dir):
    """export mode: every test image in the order of info/test_name.txt."""
    return [(mars.read_names(dataset_dir, "test")[0], os.path.join(export_dir, "feat_test.mat"))]


def evaluate_test(dataset_dir, encoder, distance):
    """Official MARS protocol on tracklets: mean feature per track, L2 re-normalised; queries from
    query_IDX; gallery = all test tracks (junk: label -1 and same id on the same camera)."""
    paths, _, _, _ = mars.read_names(dataset_dir, "test")
    tracks, query = mars.read_test_tracks(dataset_dir, len(paths))
    features = encoder(paths)
    pooled = np.stack([features[start:end + 1].mean(0) for start, end in tracks[:, :2]])
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    ids, cams = tracks[:, 2], tracks[:, 3]
    dist = distance(pooled[query], pooled)
    return metrics.evaluate_protocol(dist, ids[query], cams[query], ids, cams)


if __name__ == "__main__":
    sys.exit(train_app.main(sys.modules[__name__]))
