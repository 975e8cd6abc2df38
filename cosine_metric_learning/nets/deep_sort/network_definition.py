"""The deep_sort appearance descriptor: 128x64x3 RGB in [0, 1] -> unit-length 128-d features."""
import tensorflow as tf

from nets.deep_sort import residual_net as rn

FEATURE_DIM = 128
IMAGE_SHAPE = (128, 64, 3)


def create_network(images, is_training, num_classes=None, weight_decay=1e-8, global_step=None):
    """Returns (features, logits); logits is None unless num_classes is given (cosine-softmax head)."""
    ctx = rn.Context(is_training, weight_decay, global_step)
    net = stem(images, ctx)
    net = rn.residual_block(net, "conv2_1", ctx, is_first=True)
    net = rn.residual_block(net, "conv2_3", ctx)
    net = rn.residual_block(net, "conv3_1", ctx, increase_dim=True)
    net = rn.residual_block(net, "conv3_3", ctx)
    net = rn.residual_block(net, "conv4_1", ctx, increase_dim=True)
    net = rn.residual_block(net, "conv4_3", ctx)
    net = tf.reshape(net, [-1, 16 * 8 * 128])
    net = rn.dropout(net, ctx)
    net = rn.dense(net, FEATURE_DIM, "fc1", ctx, activation=tf.nn.elu)
    norm = tf.sqrt(1e-8 + tf.reduce_sum(tf.square(net), axis=1, keepdims=True))
    features = net / norm
    logits = None
    if num_classes is not None:
        logits = cosine_softmax_logits(features, num_classes, ctx)
    return features, logits


def stem(images, ctx):
    """conv1_1, conv1_2 and pool1 (3x3, stride 2). conv1_2's ELU runs after the pooling, not before it as in
    the original: ELU is monotonic, so the maps are the same (tests/test_units.py), and the ELU and its gradient
    cover a quarter of the values (RESULTS.md: the training step 3-8 % faster)."""
    net = rn.conv2d(images, 32, 3, 1, "conv1_1", ctx, activation=tf.nn.elu, bn=True)
    net = rn.conv2d(net, 32, 3, 1, "conv1_2", ctx, bn=True)
    return tf.nn.elu(tf.nn.max_pool2d(net, 3, 2, "SAME", name="pool1"))


def cosine_softmax_logits(features, num_classes, ctx):
    """kappa * cos(feature, class mean): columns of ball/mean_vectors L2-normalised, kappa = softplus(s)."""
    with tf.compat.v1.variable_scope("ball"):
        weights = rn.model_variable("mean_vectors", [FEATURE_DIM, int(num_classes)], ctx.weight_init)
        scale = rn.model_variable("scale", [], tf.compat.v1.zeros_initializer())
        ctx.regularize(scale, factor=0.1)
        return tf.nn.softplus(scale) * tf.matmul(features, tf.nn.l2_normalize(weights, axis=0))


def scale_variable():
    """ball/scale, the cosine-softmax head's parameter s (kappa = softplus(s)), of the default graph."""
    with tf.compat.v1.variable_scope("ball", reuse=True):
        return tf.compat.v1.get_variable("scale")


def preprocess_bgr_uint8(images):
    """deep_sort feeds BGR uint8 crops: reverse channels, scale to [0, 1]."""
    return tf.cast(tf.reverse(images, axis=[-1]), tf.float32) / 255.0
