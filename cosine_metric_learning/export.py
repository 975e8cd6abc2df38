"""Outputs of a trained checkpoint: .mat features for the MATLAB kits, the network-only checkpoint
(finalize) and the frozen graph deep_sort loads (freeze)."""
import os

import numpy as np
import scipy.io
import tensorflow as tf

import checkpoints
import device_config
import run_report
import run_safety
from evaluation import Encoder
from nets.deep_sort import network_definition as net_def


def save_features(path, features):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Streamed to the file (MARS: ~350 MB of features); the MATLAB kit never reads a file cut short.
    matrix = {"features": np.asarray(features, np.float32)}
    run_safety.write_whole(path, lambda handle: scipy.io.savemat(handle, matrix))
    print(f"wrote {path}: features {features.shape[0]}x{features.shape[1]}")


def export_features(jobs, checkpoint, config):
    """jobs: (image paths, .mat file) pairs; each file gets one float32 N x 128 variable `features`."""
    encoder = Encoder(checkpoint, config)
    try:
        for paths, target in jobs:
            save_features(target, encoder(paths))
    finally:
        encoder.close()


def deep_sort_graph():
    """In the default graph: uint8 BGR `images` [None, 128, 64, 3] -> the inference network -> `features`. The
    network's own input (float RGB in [0, 1], after the conversion deep_sort's crops need) is `network_input`,
    where a caller with float pixels, or a benchmark of the network alone, can feed the graph."""
    images = tf.compat.v1.placeholder(tf.uint8, [None, *net_def.IMAGE_SHAPE], name="images")
    pixels = tf.identity(net_def.preprocess_bgr_uint8(images), name="network_input")
    features, _ = net_def.create_network(pixels, False)
    return tf.identity(features, name="features")


def finalize(checkpoint, target):
    """target: a checkpoint with the network variables only (no classifier, optimizer slots or step), and,
    as the original wrote, its meta graph (target.meta: deep_sort_graph's, for import_meta_graph)."""
    with tf.Graph().as_default():
        deep_sort_graph()
        with tf.compat.v1.Session(config=device_config.variables_config()) as sess:
            checkpoints.restore_trunk(sess, checkpoint)
            tf.compat.v1.train.Saver(checkpoints.trunk_variables()).save(sess, target)
    print(f"wrote {target} and {target}.meta (network variables of {checkpoint})")


def freeze(checkpoint, target):
    """target: a GraphDef of constants, deep_sort_graph's images -> features."""
    progress = run_report.Progress(3, unit="stage")  # restore, convert to constants, write
    progress.update(0)
    with tf.Graph().as_default():
        deep_sort_graph()
        with tf.compat.v1.Session(config=device_config.variables_config()) as sess:
            checkpoints.restore_trunk(sess, checkpoint)
            progress.update(1)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, sess.graph.as_graph_def(), ["features"])
    frozen = tf.compat.v1.graph_util.extract_sub_graph(frozen, ["features"])
    progress.update(2)
    run_safety.write_whole(target, frozen.SerializeToString())  # deep_sort never reads half a graph
    progress.update(3)
    print(f"wrote {target}: input images uint8 [None, 128, 64, 3] BGR, output features float32 [None, 128]")
