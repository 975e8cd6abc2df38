"""The real AlexNet graph (without dropout, so that a step is deterministic) trained data-parallel, for
tests/test_distributed.py:

    python distributed_worker.py OUT.npz   with TF_CONFIG: one worker of the cluster, on its share of the batch
    train(OUT.npz, cluster=None)           in-process: one process on the whole global batch

Two Momentum steps on a fixed global batch of 4 random 227x227 images, in float32 whatever the CPU (the
comparison is exact up to summation order); saves the conv1 and fc3 weights before and after.
"""
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import alexnet_device  # noqa: E402
import distributed  # noqa: E402
import model  # noqa: E402


def train(out_path, cluster):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, model.INPUT_SIZE, model.INPUT_SIZE, 3)).astype(np.float32)
    labels = np.array([0, 1, 1, 0], np.int32)
    if cluster:  # worker i takes images i, i + n, ...: together the workers cover the global batch once
        images, labels = images[cluster.index::cluster.size], labels[cluster.index::cluster.size]
    float32 = alexnet_device.precision("must_keep_origin_dtype")
    config, target = alexnet_device.session_config(float32, alexnet_device.Dumps(os.path.dirname(out_path))), ""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(cluster.index if cluster else 0)  # different starts: the broadcast fixes them
        logits = model.inference(tf.constant(images), init="scaled")
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        opt = alexnet_device.wrap_optimizer(tf.compat.v1.train.MomentumOptimizer(0.01, momentum=0.9), cluster)
        if cluster:
            config, target = cluster.connect(config)
        step = opt.minimize(loss)
        kept = [v for v in tf.compat.v1.trainable_variables() if v.name.startswith(("conv1/", "fc3/"))]
        broadcast = alexnet_device.broadcast(tf.compat.v1.global_variables(), cluster)
        init = tf.compat.v1.global_variables_initializer()
    with tf.compat.v1.Session(target, graph=graph, config=config) as sess:
        sess.run(init)
        sess.run(broadcast)
        start = sess.run(kept)
        for _ in range(2):
            sess.run(step)
        np.savez(out_path, *start, *sess.run(kept))


if __name__ == "__main__":
    train(sys.argv[1], distributed.Cluster.from_environ(os.environ, timeout_seconds=120))
