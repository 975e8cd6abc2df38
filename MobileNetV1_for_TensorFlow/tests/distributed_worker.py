"""A tiny data-parallel training for tests/test_distributed.py: linear model + a batch-mean statistic.

    python distributed_worker.py OUT.npz      (TF_CONFIG set: one worker of the cluster, its share of the batch;
                                               unset: one process on the whole global batch)

Trains 5 momentum steps on a fixed global batch of 8 rows and saves the weights and the statistic.
"""
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import distributed  # noqa: E402


def main(out_path):
    tf.compat.v1.disable_eager_execution()
    cluster = distributed.Cluster.from_environ(timeout_seconds=60)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(8, 4)).astype(np.float32)
    targets = rng.normal(size=(8, 1)).astype(np.float32)
    if cluster:  # worker i takes rows i, i + n, ...: together the workers cover the global batch once
        features, targets = features[cluster.index::cluster.size], targets[cluster.index::cluster.size]
    tf.compat.v1.set_random_seed(cluster.index if cluster else 0)  # different starts: the broadcast must fix them
    weights = tf.compat.v1.get_variable("w", [4, 1])
    statistic = tf.compat.v1.get_variable("mean", [4], initializer=tf.zeros_initializer(), trainable=False)
    loss = tf.reduce_mean(tf.square(tf.matmul(features, weights) - targets))
    opt = tf.compat.v1.train.MomentumOptimizer(0.1, momentum=0.9)
    update = statistic.assign(0.5 * statistic + 0.5 * tf.reduce_mean(features, axis=0))
    master, config = "", tf.compat.v1.ConfigProto()
    if cluster:
        opt = distributed.AllReduceOptimizer(opt, cluster)
        config = distributed.session_config(cluster, config)
        master = distributed.start_server(cluster, config).target
    step = opt.minimize(loss)
    with tf.control_dependencies([step, update]):
        step = distributed.average_in_place(cluster, [statistic]) if cluster else tf.group(step, update)
    hooks = [distributed.BroadcastHook(cluster)] if cluster else []
    with tf.compat.v1.train.SingularMonitoredSession(hooks=hooks, master=master, config=config) as session:
        for _ in range(5):
            session.run(step)
        np.savez(out_path, weights=session.run(weights), statistic=session.run(statistic))


if __name__ == "__main__":
    main(sys.argv[1])
