"""The network: parameter count from the layer table, variable names, shapes."""
import numpy as np
import tensorflow as tf

import lenet_device
import lenet_model

# (kernel height, width, input maps, output maps) or (inputs, outputs), each with a bias per output.
LAYER_TABLE = {"layer_1": (5, 5, 1, 6), "layer_2": (5, 5, 6, 16), "fc_1": (7 * 7 * 16, 120),
               "fc_2": (120, 84), "fc_3": (84, 10)}


def expected_parameters():
    total = 0
    for shape in LAYER_TABLE.values():
        weights = 1
        for dim in shape:
            weights *= dim
        total += weights + shape[-1]
    return total


def test_parameter_count_matches_layer_table():
    with tf.Graph().as_default():
        logits = lenet_model.inference(tf.compat.v1.placeholder(tf.float32, [None, 784]))
        variables = lenet_model.model_variables()
        shapes = {v.op.name: v.shape.as_list() for v in variables}
        assert logits.shape.as_list() == [None, 10]
        assert sum(v.shape.num_elements() for v in variables) == expected_parameters() == 107786
    for scope, shape in LAYER_TABLE.items():
        assert shapes[f"{scope}/weights"] == list(shape)
        assert shapes[f"{scope}/bias"] == [shape[-1]]


def test_second_tower_shares_weights():
    with tf.Graph().as_default():
        lenet_model.inference(tf.compat.v1.placeholder(tf.float32, [None, 784]))
        lenet_model.inference(tf.compat.v1.placeholder(tf.float32, [None, 784]))
        assert len(lenet_model.model_variables()) == 10


def logits_and_gradients(images):
    with tf.Graph().as_default() as graph:
        tf.compat.v1.set_random_seed(3)
        logits = lenet_model.inference(tf.constant(images))
        grads = tf.gradients(tf.reduce_sum(logits ** 2), lenet_model.model_variables())
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            values = sess.run([logits] + grads)
    return values, {op.type for op in graph.get_operations()}


def test_first_conv_as_a_matmul_gives_the_same_logits_and_gradients(monkeypatch):
    """The device module chooses how the one-channel first convolution is computed; both ways are one network."""
    images = np.random.default_rng(0).random((8, 784), dtype=np.float32)
    results = {}
    for as_matmul in (False, True):
        monkeypatch.setattr(lenet_device, "one_channel_conv_as_matmul", lambda: as_matmul)
        results[as_matmul] = logits_and_gradients(images)
    (plain, plain_ops), (matmul, matmul_ops) = results[False], results[True]
    assert "ExtractImagePatches" in matmul_ops and "ExtractImagePatches" not in plain_ops
    for expected, actual in zip(plain, matmul):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
