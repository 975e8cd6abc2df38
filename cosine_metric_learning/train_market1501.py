"""Market-1501: train, eval, export, finalize, freeze or evaluate_test (see README.md).

    python train_market1501.py --dataset_dir=/data/Market-1501-v15.09.15 [--mode=...] [flags]
"""
import os
import sys

import metrics
import train_app
from datasets import market1501

NAME = "market1501"
NUM_GALLERIES = 10
EXPORT_DIR_FLAG = "sdk_dir"


def add_flags(parser):
    parser.add_argument("--dataset_dir", default="resources/Market-1501-v15.09.15",
                        help="folder with bounding_box_train/, bounding_box_test/, query/")
    parser.add_argument("--sdk_dir", default="resources/Market-1501-v15.09.15-baseline",
                        help="export mode: where feat_test.mat and feat_query.mat are written")


def read_train(dataset_dir):
    return market1501.read_train(dataset_dir)


def feature_files(dataset_dir, sdk_dir):
    """export mode: all of bounding_box_test/ and query/, sorted by name, as the MATLAB kit reads them."""
    return [(market1501.read_subset(dataset_dir, subset)[0], os.path.join(sdk_dir, target))
            for subset, target in (("bounding_box_test", "feat_test.mat"), ("query", "feat_query.mat"))]


def evaluate_test(dataset_dir, encoder, distance):
    """Official single-query protocol: gallery bounding_box_test (-1 junk, 0000 negatives), queries query/."""
    g_paths, g_ids, g_cams = market1501.read_subset(dataset_dir, "bounding_box_test")
    q_paths, q_ids, q_cams = market1501.read_subset(dataset_dir, "query")
    dist = distance(encoder(q_paths), encoder(g_paths))
    return metrics.evaluate_protocol(dist, q_ids, q_cams, g_ids, g_cams)


if __name__ == "__main__":
    sys.exit(train_app.main(sys.modules[__name__]))
