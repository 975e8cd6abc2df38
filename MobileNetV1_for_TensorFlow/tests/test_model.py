"""Units: the network (parameter count from the layer table, end points, names), LR schedule, sharding."""
import math
import types

import numpy as np
import pytest
import tensorflow as tf

import env
from dataloader import data_provider
from nets import mobilenet_v1, nets_factory

# The paper's table: conv 3x3/2 to 32, then (stride, output channels) of the 13 separable blocks.
BLOCKS = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [(2, 1024), (1, 1024)]


def expected_counts(num_classes, multiplier=1.0):
    """(trainable parameters, batch-norm moving statistics), derived by hand from the table."""
    depth = lambda c: max(int(c * multiplier), 8)  # noqa: E731
    trainable, moving = 3 * 3 * 3 * depth(32) + 2 * depth(32), 2 * depth(32)  # conv + BN beta/gamma
    channels = depth(32)
    for _, out in BLOCKS:
        trainable += 3 * 3 * channels + 2 * channels  # depthwise 3x3 (no bias) + BN
        moving += 2 * channels
        trainable += channels * depth(out) + 2 * depth(out)  # pointwise 1x1 + BN
        moving += 2 * depth(out)
        channels = depth(out)
    trainable += channels * num_classes + num_classes  # logits 1x1 conv with bias
    return trainable, moving


def build(name="mobilenet_v1", num_classes=1001, size=224, is_training=True):
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3], name="input")
        logits, end_points = nets_factory.get_network_fn(name, num_classes, 0.00004, is_training=is_training)(images)
    return graph, logits, end_points


def test_layer_table_gives_the_published_counts():
    assert expected_counts(1001) == (4233001, 21888)


@pytest.mark.parametrize("name,multiplier", [("mobilenet_v1", 1.0), ("mobilenet_v1_025", 0.25)])
def test_parameter_count_matches_the_layer_table(name, multiplier):
    graph, _, _ = build(name)
    with graph.as_default():
        trainable = sum(v.shape.num_elements() for v in tf.compat.v1.trainable_variables())
        moving = sum(v.shape.num_elements() for v in tf.compat.v1.global_variables() if "moving_" in v.name)
    assert (trainable, moving) == expected_counts(1001, multiplier)
    if name == "mobilenet_v1":
        assert trainable == 4233001


def test_end_points_scope_names_and_regularisation():
    graph, logits, end_points = build()
    assert logits.shape.as_list() == [None, 1001]
    assert end_points["Conv2d_0"].shape.as_list() == [None, 112, 112, 32]
    assert end_points["Conv2d_1_depthwise"].shape.as_list() == [None, 112, 112, 32]
    assert end_points["Conv2d_1_pointwise"].shape.as_list() == [None, 112, 112, 64]
    assert end_points["Conv2d_6_pointwise"].shape.as_list() == [None, 14, 14, 512]
    assert end_points["Conv2d_13_pointwise"].shape.as_list() == [None, 7, 7, 1024]
    assert end_points["AvgPool_1a"].shape.as_list() == [None, 1, 1, 1024]
    assert end_points["Predictions"].op.name == "MobilenetV1/Predictions/Reshape_1"
    with graph.as_default():
        names = {v.op.name for v in tf.compat.v1.global_variables()}
        regularised = tf.compat.v1.losses.get_regularization_losses()
        updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
    for name in ("MobilenetV1/Conv2d_0/weights", "MobilenetV1/Conv2d_13_depthwise/depthwise_weights",
                 "MobilenetV1/Conv2d_13_pointwise/BatchNorm/moving_variance",
                 "MobilenetV1/Logits/Conv2d_1c_1x1/biases"):
        assert name in names
    assert len(regularised) == 15  # 14 regular convs + logits; depthwise kernels are not decayed
    assert not any("depthwise" in r.name for r in regularised)
    assert len(updates) == 2 * 27  # moving mean and variance of every batch norm


def test_batch_norm_trains_and_updates_moving_statistics():
    """The fused slim.batch_norm path works on this TensorFlow without tf-keras and learns its statistics."""
    graph, logits, _ = build(size=32, num_classes=3)
    with graph.as_default():
        mean = [v for v in tf.compat.v1.global_variables() if v.op.name == "MobilenetV1/Conv2d_0/BatchNorm/moving_mean"][0]
        with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
            step = tf.no_op()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            before = session.run(mean)
            session.run(step, {"input:0": np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3))})
            after = session.run(mean)
    assert np.all(before == 0) and np.any(after != 0)


def hyper(**overrides):
    flags = dict(batch_size=32, num_train_samples=3200, max_epoch=None, max_train_steps=1000, warmup_epochs=2,
                 num_epochs_per_decay=2.0, learning_rate=0.4, learning_rate_decay_type="cosine_annealing",
                 learning_rate_decay_factor=0.94, end_learning_rate=0.0001, model_dir="results")
    flags.update(overrides)
    return env.HyperParams(types.SimpleNamespace(**flags), environ={"RANK_ID": "0", "RANK_SIZE": "1"})


def lr_values(hp, steps):
    graph = tf.Graph()
    with graph.as_default():
        step = tf.compat.v1.placeholder(tf.int64, [])
        lr = env.learning_rate(step, hp)
        with tf.compat.v1.Session() as session:
            return [float(session.run(lr, {step: s})) for s in steps]


def test_cosine_with_warmup_matches_the_formula():
    hp = hyper()  # 100 steps per epoch, 10 epochs, 2 of warm-up
    assert (hp.steps_per_epoch, hp.total_epochs, hp.warmup_steps) == (100, 10, 200)
    steps = [0, 99, 199, 200, 299, 300, 550, 999]
    expected = []
    for s in steps:
        if s < 200:
            expected.append(0.4 * (s + 1) / 200)
        else:
            epoch = s // 100
            expected.append(0.5 * 0.4 * (1 + math.cos(math.pi * (epoch - 2) / 8)))
    assert lr_values(hp, steps) == pytest.approx(expected, rel=1e-5)
    # Constant within an epoch after warm-up, falling toward 0 at the end.
    values = lr_values(hp, [300, 399, 400, 999])
    assert values[0] == values[1] > values[2] > values[3] > 0


def test_other_schedules():
    assert lr_values(hyper(learning_rate_decay_type="fixed", warmup_epochs=0), [0, 900]) == pytest.approx([0.4, 0.4])
    exp = lr_values(hyper(learning_rate_decay_type="exponential", warmup_epochs=0), [199, 200, 450])
    assert exp == pytest.approx([0.4, 0.4 * 0.94, 0.4 * 0.94 ** 2], rel=1e-5)
    poly = lr_values(hyper(learning_rate_decay_type="polynomial", warmup_epochs=0), [0, 100, 200, 500])
    assert poly == pytest.approx([0.4, 0.2 + 0.00005, 0.0001, 0.0001], rel=1e-4)


def test_ranks_set_global_batch_and_epoch_length():
    flags = types.SimpleNamespace(batch_size=256, num_train_samples=1281167, max_epoch=2, max_train_steps=None,
                                  warmup_epochs=5, num_epochs_per_decay=2.0, model_dir="results")
    hp = env.HyperParams(flags, environ={"RANK_ID": "3", "RANK_SIZE": "8"})
    assert hp.global_batch_size == 2048
    assert hp.steps_per_epoch == 1281167 // 2048
    assert hp.max_train_steps == 2 * (1281167 // 2048)
    assert hp.model_dir.endswith("results/3")
    with pytest.raises(ValueError):
        env.HyperParams(flags, environ={"RANK_ID": "8", "RANK_SIZE": "8"})


def test_file_level_sharding_covers_every_file_once():
    files = [f"train-{i:05d}-of-00010" for i in range(10)]
    shards = [data_provider.shard_files(files, r, 4) for r in range(4)]
    assert all(not record_level for _, record_level in shards)
    assert sorted(f for part, _ in shards for f in part) == files
    assert data_provider.shard_files(files[:2], 1, 4) == (files[:2], True)


def test_pipeline_output(small_data):
    graph = tf.Graph()
    with graph.as_default():
        images, labels = tf.compat.v1.data.make_one_shot_iterator(
            data_provider.build_dataset(small_data, "train", 8, True, 48, 11)).get_next()
        eval_images, _ = tf.compat.v1.data.make_one_shot_iterator(
            data_provider.build_dataset(small_data, "validation", 8, False, 48, 11)).get_next()
        with tf.compat.v1.Session() as session:
            x, y, e = session.run([images, labels, eval_images])
    assert x.shape == (8, 48, 48, 3) and e.shape == (8, 48, 48, 3)
    assert -1.0 <= x.min() < 0 < x.max() <= 1.0
    assert set(y.tolist()) <= set(range(1, 11))
