"""Two-tower AlexNet (Krizhevsky et al. 2012) as a TF1 graph built from tf.nn ops, NHWC, 227x227x3 input.

Each convolution stage runs conv -> bias -> (LRN) -> (max-pool 3x3/2 VALID) -> ReLU, in that order, as the
original. LAYERS is the single source of truth: it builds the variables and gives the parameter count.
"""
import tensorflow as tf

INPUT_SIZE = 227
NUM_CLASSES = 2
WEIGHT_STDDEV = 0.01
WEIGHT_DECAY = 5e-4
KEEP_PROB = 0.5
# The original's values. The paper's "n = 5" neighbourhood is depth_radius 2 in TensorFlow's terms;
# the original passed 5 (an 11-channel window) and this port keeps it.
LRN = dict(depth_radius=5, bias=2.0, alpha=1e-4, beta=0.75)

# name, weight shape (per tower), towers, stride, padding, bias init, LRN, max-pool
LAYERS = (
    ("conv1", (11, 11, 3, 48), 2, 4, "VALID", 0.0, True, True),
    ("conv2", (5, 5, 48, 128), 2, 1, "SAME", 1.0, True, True),
    ("conv3", (3, 3, 256, 384), 1, 1, "SAME", 0.0, False, False),
    ("conv4", (3, 3, 192, 192), 2, 1, "SAME", 1.0, False, False),
    ("conv5", (3, 3, 192, 128), 2, 1, "SAME", 1.0, False, True),
    ("fc1", (6 * 6 * 256, 4096), 1, None, None, 1.0, False, False),
    ("fc2", (4096, 1000), 1, None, None, 1.0, False, False),
    ("fc3", (1000, NUM_CLASSES), 1, None, None, 0.0, False, False),
)


def parameter_count():
    """Weights plus biases of every tower of every layer, from the table alone."""
    total = 0
    for _, shape, towers, *_ in LAYERS:
        size = 1
        for dim in shape:
            size *= dim
        total += towers * (size + shape[-1])
    return total


def _variables(name, shape, towers, bias_init):
    """[(weights, bias)] per tower; created once, reused by every later call (train and eval graphs)."""
    pairs = []
    with tf.compat.v1.variable_scope(name, reuse=tf.compat.v1.AUTO_REUSE):
        for tower in range(towers):
            suffix = f"_{tower + 1}" if towers > 1 else ""
            w = tf.compat.v1.get_variable(
                "weights" + suffix, shape, initializer=tf.compat.v1.random_normal_initializer(0.0, WEIGHT_STDDEV))
            b = tf.compat.v1.get_variable(
                "biases" + suffix, shape[-1:], initializer=tf.compat.v1.constant_initializer(bias_init))
            pairs.append((w, b))
    return pairs


def _pool(x):
    return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")


def weight_tensors():
    """The 12 weight tensors that carry the L2 penalty (biases are not decayed)."""
    return [v for v in tf.compat.v1.global_variables() if "/weights" in v.name]


def inference(images, keep_prob=None, dropout=None):
    """images: float32 [N, 227, 227, 3]; keep_prob=None builds the evaluation graph (no dropout).

    dropout(x, keep_prob) defaults to tf.nn.dropout; on Ascend the caller passes the NPU's own op.
    """
    dropout = dropout or (lambda x, keep: tf.nn.dropout(x, rate=1.0 - keep))
    streams = None  # the towers' outputs of the previous conv layer
    x = images
    for name, shape, towers, stride, padding, bias_init, lrn, pool in LAYERS:
        params = _variables(name, shape, towers, bias_init)
        if stride is None:  # fully connected: flatten, matmul + bias, then dropout and ReLU except at the top
            (w, b), = params
            x = tf.nn.bias_add(tf.matmul(tf.reshape(x, [-1, shape[0]]), w), b)
            if name != LAYERS[-1][0]:
                x = tf.nn.relu(dropout(x, keep_prob) if keep_prob is not None else x)
            continue
        if streams is None:  # conv1: both towers see the whole image
            inputs = [images] * towers
        elif len(streams) == towers:  # tower to tower (conv2, conv4, conv5)
            inputs = streams
        else:  # concat before a full-depth layer, split after it
            inputs = tf.split(x, towers, axis=3) if towers > 1 else [x]
        streams = []
        for t_in, (w, b) in zip(inputs, params):
            y = tf.nn.bias_add(tf.nn.conv2d(t_in, w, strides=stride, padding=padding), b)
            if lrn:
                y = tf.nn.local_response_normalization(y, **LRN)
            if pool:
                y = _pool(y)
            streams.append(tf.nn.relu(y))
        x = streams[0] if len(streams) == 1 else tf.concat(streams, axis=3)
    return x
