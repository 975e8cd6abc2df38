"""The network: parameter count from the layer table, variable names, shapes."""
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
