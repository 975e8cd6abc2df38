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


def add_flags(parser):
    parser.add_argument("--dataset_dir", default="resources/MARS-evaluation-master",
                        help="folder with bbox_train/, bbox_test/ and info/")


def read_train(args):
    return mars.read_train(args.dataset_dir)


def export(args, encoder):
    paths, _, _, _ = mars.read_names(args.dataset_dir, "test")
    train_app.save_features(os.path.join(args.dataset_dir, "feat_test.mat"), encoder(paths))


def evaluate_test(args, encoder, distance):
    """Official MARS protocol on tracklets: mean feature per track, L2 re-normalised; queries from
    query_IDX; gallery = all test tracks (junk: label -1 and same id on the same camera)."""
    paths, _, _, _ = mars.read_names(args.dataset_dir, "test")
    tracks, query = mars.read_test_tracks(args.dataset_dir, len(paths))
    features = encoder(paths)
    pooled = np.stack([features[start:end + 1].mean(0) for start, end in tracks[:, :2]])
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    ids, cams = tracks[:, 2], tracks[:, 3]
    dist = distance(pooled[query], pooled)
    return metrics.evaluate_protocol(dist, ids[query], cams[query], ids, cams)


if __name__ == "__main__":
    sys.exit(train_app.main(sys.modules[__name__]))
