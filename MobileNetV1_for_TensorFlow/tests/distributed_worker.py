"""A tiny data-parallel training for tests/test_distributed.py: linear model + a batch-mean statistic.

    TF_CONFIG=... python distributed_worker.py OUT.npz     (one worker of the cluster, its share of the batch)

Trains 5 momentum steps (lr 0.1, momentum 0.9) on its rows of a fixed global batch of 8 and saves the global
batch, the weights right after the broadcast, and the final weights and statistic.
"""
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import distributed  # noqa: E402
import mobilenet_device  # noqa: E402

STEPS, LEARNING_RATE, MOMENTUM = 5, 0.1, 0.9


def global_batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32)


def main(out_path):
    tf.compat.v1.disable_eager_execution()
    cluster = distributed.Cluster.from_environ(timeout_seconds=60)
    features, targets = global_batch()
    # Worker i takes rows i, i + n, ...: together the workers cover the global batch once.
    mine = slice(cluster.index, None, cluster.size)
    tf.compat.v1.set_random_seed(cluster.index)  # different starts: the broadcast must fix them
    weights = tf.compat.v1.get_variable("w", [4, 1])
    statistic = tf.compat.v1.get_variable("mean", [4], initializer=tf.zeros_initializer(), trainable=False)
    loss = tf.reduce_mean(tf.square(tf.matmul(features[mine], weights) - targets[mine]))
    opt = cluster.optimizer(tf.compat.v1.train.MomentumOptimizer(LEARNING_RATE, MOMENTUM))
    update = statistic.assign(0.5 * statistic + 0.5 * tf.reduce_mean(features[mine], axis=0))
    config, master = cluster.connect(tf.compat.v1.ConfigProto())
    step = opt.minimize(loss)
    with tf.control_dependencies([step, update]):
        step = cluster.average_in_place([statistic])
    hooks = [mobilenet_device.BroadcastHook(cluster)]
    with tf.compat.v1.train.SingularMonitoredSession(hooks=hooks, master=master, config=config) as session:
        start = session.run(weights)
        for _ in range(STEPS):
            session.run(step)
        np.savez(out_path, features=features, targets=targets, start=start, weights=session.run(weights),
                 statistic=session.run(statistic))


if __name__ == "__main__":
    main(sys.argv[1])
