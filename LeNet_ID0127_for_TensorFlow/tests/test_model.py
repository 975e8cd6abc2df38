"""The network: parameter count from the layer table, variable names, shapes; pooling before the sigmoid."""
import numpy as np
import tensorflow as tf

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


def test_convolution_layers_equal_the_originals_sigmoid_then_pooling_with_gradients():
    """_conv_pool_sigmoid pools before its sigmoid; the original order gives the same maps and gradients."""
    rng = np.random.default_rng(5)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        images = tf.constant(rng.uniform(0, 1, (8, 28, 28, 1)), tf.float32)
        got = lenet_model._conv_pool_sigmoid("layer_1", images, 1, 6)
        weights, bias = tf.compat.v1.trainable_variables()
        session.run(tf.compat.v1.global_variables_initializer())
        session.run(bias.assign(rng.normal(0, 1, 6)))  # maps on both sides of 0
        want = tf.nn.max_pool2d(tf.sigmoid(tf.nn.conv2d(images, weights, 1, "SAME") + bias), 2, 2, "SAME")
        upstream = tf.constant(rng.normal(0, 1, (8, 14, 14, 6)), tf.float32)
        gradients = [tf.gradients(maps, [weights, bias], upstream) for maps in (got, want)]
        (got, want), (got_grads, want_grads) = session.run([(got, want), gradients])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
