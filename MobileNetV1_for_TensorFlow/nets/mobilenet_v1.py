"""MobileNet v1 (Howard et al., 2017) with tf-slim layers, variable names as slim's checkpoints."""
import collections

import tensorflow as tf

from nets.slim_compat import BATCH_NORM_UPDATES, slim

Conv = collections.namedtuple("Conv", ["kernel", "stride", "depth"])
DepthSepConv = collections.namedtuple("DepthSepConv", ["kernel", "stride", "depth"])

# Layer table of the paper: one full conv, then 13 depthwise-separable blocks.
CONV_DEFS = [Conv([3, 3], 2, 32)] + [
    DepthSepConv([3, 3], stride, depth)
    for stride, depth in [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)]
    + [(1, 512)] * 5 + [(2, 1024), (1, 1024)]
]


def mobilenet_v1_base(inputs, depth_multiplier=1.0, min_depth=8, scope=None):
    """Returns the last feature map and a dict of end points (Conv2d_0, Conv2d_<i>_depthwise/_pointwise)."""
    if depth_multiplier <= 0:
        raise ValueError("depth_multiplier must be positive")

    def depth(channels):
        return max(int(channels * depth_multiplier), min_depth)

    end_points = {}
    net = inputs
    with tf.compat.v1.variable_scope(scope, "MobilenetV1", [inputs]):
        with slim.arg_scope([slim.conv2d, slim.separable_conv2d], padding="SAME"):
            for i, layer in enumerate(CONV_DEFS):
                if isinstance(layer, Conv):
                    name = f"Conv2d_{i}"
                    net = slim.conv2d(net, depth(layer.depth), layer.kernel, stride=layer.stride, scope=name)
                    end_points[name] = net
                    continue
                name = f"Conv2d_{i}_depthwise"
                net = slim.separable_conv2d(net, None, layer.kernel, depth_multiplier=1, stride=layer.stride,
                                            scope=name)
                end_points[name] = net
                name = f"Conv2d_{i}_pointwise"
                net = slim.conv2d(net, depth(layer.depth), [1, 1], stride=1, scope=name)
                end_points[name] = net
    return net, end_points


def mobilenet_v1(inputs, num_classes=1001, dropout_keep_prob=0.999, is_training=True, depth_multiplier=1.0,
                 spatial_squeeze=True, scope="MobilenetV1"):
    """Logits [batch, num_classes] and end points (also AvgPool_1a, Logits, Predictions)."""
    with tf.compat.v1.variable_scope(scope, "MobilenetV1", [inputs]) as var_scope:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = mobilenet_v1_base(inputs, depth_multiplier=depth_multiplier, scope=var_scope)
            with tf.compat.v1.variable_scope("Logits"):
                # Global average pool: the feature map is 7x7 at 224 but any input size works.
                net = tf.reduce_mean(net, axis=[1, 2], keepdims=True, name="AvgPool_1a")
                end_points["AvgPool_1a"] = net
                net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout_1b")
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None,
                                     scope="Conv2d_1c_1x1")
                if spatial_squeeze:
                    logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
            end_points["Logits"] = logits
            end_points["Predictions"] = slim.softmax(logits, scope="Predictions")
    return logits, end_points


def mobilenet_v1_arg_scope(is_training=True, weight_decay=0.00004, stddev=0.09, regularize_depthwise=False,
                           batch_norm_decay=0.9997, batch_norm_epsilon=0.001):
    """Batch norm + ReLU6 after every conv; L2 decay on regular convs only (unless regularize_depthwise)."""
    batch_norm_params = {
        "center": True,
        "scale": True,
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "updates_collections": BATCH_NORM_UPDATES,
    }
    if is_training is not None:
        batch_norm_params["is_training"] = is_training
    initializer = tf.compat.v1.truncated_normal_initializer(stddev=stddev)
    regularizer = slim.l2_regularizer(weight_decay)
    depthwise_regularizer = regularizer if regularize_depthwise else None
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d], weights_initializer=initializer,
                        activation_fn=tf.nn.relu6, normalizer_fn=slim.batch_norm):
        with slim.arg_scope([slim.batch_norm], **batch_norm_params):
            with slim.arg_scope([slim.conv2d], weights_regularizer=regularizer):
                with slim.arg_scope([slim.separable_conv2d], weights_regularizer=depthwise_regularizer) as sc:
                    return sc
