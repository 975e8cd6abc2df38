"""Two-tower AlexNet (Krizhevsky et al. 2012) as a TF1 graph built from tf.nn ops, NHWC, 227x227x3 input.

Each convolution stage runs conv -> bias -> (LRN) -> (max-pool 3x3/2 VALID) -> ReLU, in that order, as the
original. LAYERS is the single source of truth: it builds the variables and gives the parameter count.
"""
import numpy as np
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


# ImageNet's per-channel pixel mean and standard deviation, BGR order (the pipeline's channel order).
MEAN_BGR = (103.94, 116.78, 123.68)
STD_BGR = (57.38, 57.12, 58.40)


def network_input(images, pixels):
    """'raw': BGR 0..255 as the original fed the network; 'unit': mean subtracted and divided by the standard
    deviation per channel, so the first layer sees zero-centred values of about unit variance."""
    if pixels == "raw":
        return images
    return (images - tf.constant(MEAN_BGR, images.dtype)) * tf.constant([1.0 / s for s in STD_BGR], images.dtype)


def _initializer(name, shape, init):
    """Weights. 'original': N(0, 0.01) everywhere, as the paper and the original port. 'scaled': He normal,
    stddev sqrt(2 / fan-in), so that the image signal keeps its scale through the hidden layers, and
    N(0, 0.01) for the logits layer, so that the first predictions are near 50/50 instead of saturated."""
    if init == "original" or name == LAYERS[-1][0]:
        return tf.compat.v1.random_normal_initializer(0.0, WEIGHT_STDDEV)
    fan_in = 1
    for dim in shape[:-1]:
        fan_in *= dim
    return tf.compat.v1.random_normal_initializer(0.0, (2.0 / fan_in) ** 0.5)


def _variables(name, shape, towers, bias_init, init):
    """[(weights, bias)] per tower; created once, reused by every later call (train and eval graphs).
    'scaled' starts every bias at 0: with He weights, the original's constant biases of 1 pile up into
    large positive activations whose gradients swamp the first updates of the 37.7M-weight fc1."""
    bias_init = bias_init if init == "original" else 0.0
    pairs = []
    with tf.compat.v1.variable_scope(name, reuse=tf.compat.v1.AUTO_REUSE):
        for tower in range(towers):
            suffix = f"_{tower + 1}" if towers > 1 else ""
            w = tf.compat.v1.get_variable("weights" + suffix, shape, initializer=_initializer(name, shape, init))
            b = tf.compat.v1.get_variable(
                "biases" + suffix, shape[-1:], initializer=tf.compat.v1.constant_initializer(bias_init))
            pairs.append((w, b))
    return pairs


def _windowed(v, band, scale, shift=None):
    """scale * (sum of v over each channel's LRN window) (+ shift), per block of band's size: one matmul with a
    banded 0/1 matrix (times scale), whose fused bias add gives the shift."""
    block = band.shape[0]
    sums = tf.matmul(tf.reshape(v, [-1, block]), tf.constant(scale * band, v.dtype))
    if shift is not None:
        sums = tf.nn.bias_add(sums, tf.constant(np.full(block, shift), v.dtype))
    return tf.reshape(sums, tf.shape(v))


def lrn(x, groups=1):
    """tf.nn.local_response_normalization with LRN's parameters, applied separately to each of `groups`
    equal channel blocks: y = x * t ** -beta, t = bias + alpha * (sum of x ** 2 over the window). The windowed
    sum is a matmul with a banded 0/1 matrix: oneDNN runs it fast (also in bfloat16), whereas TensorFlow's
    LRN/LRNGrad kernels took a quarter of a training step. Each row of the matmul is one block (a tower's
    channels at one pixel), so two towers cost half of one matmul over all channels. The gradient is written
    out (five elementwise passes and one matmul) because LRN's many elementwise passes, not its FLOPs, are
    what it costs: TensorFlow's own derivative of the same ops took twice the passes and cast its sqrt
    gradients to float32 under the bfloat16 rewrite, 37 % of a bfloat16 step on an AMX CPU."""
    block = x.shape[-1] // groups
    idx = np.arange(block)
    band = (np.abs(idx[:, None] - idx[None, :]) <= LRN["depth_radius"]).astype(np.float32)

    @tf.custom_gradient
    def normalise(x):
        t = _windowed(tf.square(x), band, LRN["alpha"], LRN["bias"])
        # t ** -beta with beta = 0.75 as rsqrt(t) * sqrt(rsqrt(t)): Pow took longer than all forward convs.
        inv_sqrt = tf.math.rsqrt(t)
        scale = inv_sqrt * tf.sqrt(inv_sqrt)
        y = x * scale

        def gradient(dy):
            # dx = dy * t**-beta - 2 alpha beta x * window(dy * x * t**(-beta - 1)); the window is symmetric.
            return dy * scale + x * _windowed(dy * y / t, band, -2.0 * LRN["alpha"] * LRN["beta"])
        return y, gradient
    return normalise(x)


def _pool(x):
    return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")


def weight_tensors():
    """The 12 weight tensors that carry the L2 penalty (biases are not decayed)."""
    return [v for v in tf.compat.v1.global_variables() if "/weights" in v.name]


def conv_as_blocks(x, w, stride):
    """tf.nn.conv2d(x, w, stride, "VALID") computed as a stride-1 convolution over stride x stride pixel blocks:
    the input's blocks become channels (space_to_depth), the kernel is zero-padded to whole blocks and
    rearranged to match. The same sums (tested); for conv1 (11x11 stride 4 on 3 channels) a 3x3 kernel on 48
    channels, which oneDNN runs much faster: 3 input channels leave its vector and AMX tiles mostly empty, and
    conv1's filter gradient was the largest convolution of a bfloat16 step (24 ms -> 9 ms on an AMX CPU)."""
    size, _, channels, filters = w.shape
    blocks = -(-size // stride)  # kernel size in blocks, rounded up
    # the input rows (columns) the blocked convolution reads: zeros added below (right), unread ones cut off
    read = [stride * ((extent - size) // stride + blocks) for extent in x.shape[1:3]]
    x = tf.pad(x, [[0, 0]] + [[0, max(0, r - extent)] for r, extent in zip(read, x.shape[1:3])] + [[0, 0]])
    x = x[:, :read[0], :read[1]]
    w = tf.pad(w, [[0, stride * blocks - size]] * 2 + [[0, 0]] * 2)
    w = tf.reshape(w, [blocks, stride, blocks, stride, channels, filters])
    # space_to_depth orders a block's channels (row in block, column in block, input channel)
    w = tf.reshape(tf.transpose(w, [0, 2, 1, 3, 4, 5]), [blocks, blocks, stride * stride * channels, filters])
    return tf.nn.conv2d(tf.nn.space_to_depth(x, stride), w, strides=1, padding="VALID")


def _conv_stage(x, params, stride, padding, lrn_on, pool):
    """conv -> bias -> (LRN) -> (pool) -> ReLU for towers that share the input x: their kernels run as one
    convolution (the same result as one per tower, better use of the cores), LRN stays within each tower.
    A strided VALID convolution (conv1) runs as conv_as_blocks."""
    w = tf.concat([w for w, _ in params], axis=3) if len(params) > 1 else params[0][0]
    b = tf.concat([b for _, b in params], axis=0) if len(params) > 1 else params[0][1]
    blocked = stride > 1 and padding == "VALID"
    y = conv_as_blocks(x, w, stride) if blocked else tf.nn.conv2d(x, w, strides=stride, padding=padding)
    y = tf.nn.bias_add(y, b)
    if lrn_on:
        y = lrn(y, groups=len(params))
    if pool:
        y = _pool(y)
    return tf.nn.relu(y)


def inference(images, keep_prob=None, dropout=None, init="original"):
    """images: float [N, 227, 227, 3]; keep_prob=None builds the evaluation graph (no dropout).

    dropout(x, keep_prob) defaults to tf.nn.dropout; on Ascend the caller passes the NPU's own op.
    init ('original' or 'scaled', see _initializer) matters only on the first call, which creates the variables.
    """
    dropout = dropout or (lambda x, keep: tf.nn.dropout(x, rate=1.0 - keep))
    streams = None  # the towers' outputs of the previous conv layer
    x = images
    for name, shape, towers, stride, padding, bias_init, lrn_on, pool in LAYERS:
        params = _variables(name, shape, towers, bias_init, init)
        if stride is None:  # fully connected: flatten, matmul + bias, then dropout and ReLU except at the top
            (w, b), = params
            x = tf.nn.bias_add(tf.matmul(tf.reshape(x, [-1, shape[0]]), w), b)
            if name != LAYERS[-1][0]:
                x = tf.nn.relu(dropout(x, keep_prob) if keep_prob is not None else x)
            continue
        if streams is None:  # conv1: both towers see the whole image
            inputs, groups = [images], [params]
        elif len(streams) == towers:  # tower to tower (conv2, conv4, conv5)
            inputs, groups = streams, [[p] for p in params]
        else:  # concat before a full-depth layer, split after it
            inputs, groups = (tf.split(x, towers, axis=3) if towers > 1 else [x]), [[p] for p in params]
        outputs = [_conv_stage(t, g, stride, padding, lrn_on, pool) for t, g in zip(inputs, groups)]
        x = outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=3)
        streams = tf.split(x, towers, axis=3) if len(outputs) < towers else outputs
    return x
