"""Building blocks of the deep_sort descriptor network, written with tf.nn ops and our own variables.

Batch norm is center-only (a learned beta, no gamma), epsilon 1e-3, moving averages with decay 0.999.
Variable names follow the original slim graph (e.g. ``conv1_1/conv1_1/bn/beta``) so checkpoints can be
inspected the same way.
"""
import tensorflow as tf

BN_EPSILON = 1e-3
BN_DECAY = 0.999
DROPOUT_KEEP = 0.6


class Context:
    """What every layer needs: training or inference, the regularizer weight and the update step."""

    def __init__(self, is_training, weight_decay=1e-8, global_step=None):
        self.is_training = is_training
        self.weight_decay = weight_decay
        self.global_step = global_step
        self.weight_init = tf.compat.v1.truncated_normal_initializer(stddev=1e-3)

    def regularize(self, weights, factor=None):
        factor = self.weight_decay if factor is None else factor
        loss = tf.multiply(factor, tf.nn.l2_loss(weights), name="l2")
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES, loss)

    def bn_decay(self):
        """0.999, warmed up as ExponentialMovingAverage(num_updates=step) does: min(d, (1+t)/(10+t))."""
        if self.global_step is None:
            return tf.constant(BN_DECAY)
        step = tf.cast(self.global_step, tf.float32)
        return tf.minimum(BN_DECAY, (1.0 + step) / (10.0 + step))


def model_variable(name, shape, initializer, trainable=True):
    collections = [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, tf.compat.v1.GraphKeys.MODEL_VARIABLES]
    return tf.compat.v1.get_variable(name, shape, tf.float32, initializer=initializer, trainable=trainable,
                                     collections=collections)


def batch_norm(x, scope, ctx):
    """Center-only batch norm on NHWC or NC input; moving-average updates go to UPDATE_OPS."""
    channels = x.shape[-1]
    with tf.compat.v1.variable_scope(scope):
        beta = model_variable("beta", [channels], tf.compat.v1.zeros_initializer())
        moving_mean = model_variable("moving_mean", [channels], tf.compat.v1.zeros_initializer(), False)
        moving_var = model_variable("moving_variance", [channels], tf.compat.v1.ones_initializer(), False)
        gamma = tf.ones([channels], tf.float32)
        flat = len(x.shape) == 2
        y = tf.reshape(x, [-1, 1, 1, channels]) if flat else x
        if ctx.is_training:
            y, mean, var = tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, epsilon=BN_EPSILON, is_training=True)
            decay = ctx.bn_decay()
            for variable, value in ((moving_mean, mean), (moving_var, var)):
                update = variable.assign_sub((1.0 - decay) * (variable - value))
                tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, update)
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, mean=moving_mean, variance=moving_var,
                                                       epsilon=BN_EPSILON, is_training=False)
        return tf.reshape(y, [-1, channels]) if flat else y


def conv2d(x, filters, size, stride, scope, ctx, activation=None, bn=False, bias=True):
    """3x3 / 1x1 SAME convolution; with bn=True no bias, batch norm under '<scope>/<scope>/bn'."""
    with tf.compat.v1.variable_scope(scope) as vs:
        weights = model_variable("weights", [size, size, x.shape[-1], filters], ctx.weight_init)
        ctx.regularize(weights)
        y = tf.nn.conv2d(x, weights, [1, stride, stride, 1], "SAME")
        if bn:
            y = batch_norm(y, vs.name + "/bn", ctx)
        elif bias:
            y = tf.nn.bias_add(y, model_variable("biases", [filters], tf.compat.v1.zeros_initializer()))
    return activation(y) if activation is not None else y


def dense(x, units, scope, ctx, activation=None):
    """Fully connected layer followed by batch norm (no bias), as fc1 of the original."""
    with tf.compat.v1.variable_scope(scope) as vs:
        weights = model_variable("weights", [x.shape[-1], units], ctx.weight_init)
        ctx.regularize(weights)
        y = batch_norm(tf.matmul(x, weights), vs.name + "/bn", ctx)
    return activation(y) if activation is not None else y


def dropout(x, ctx):
    return tf.nn.dropout(x, rate=1.0 - DROPOUT_KEEP) if ctx.is_training else x


def residual_block(x, scope, ctx, increase_dim=False, is_first=False):
    """[BN, ELU] -> conv3x3(stride)+BN+ELU -> dropout -> conv3x3+bias; plus the (projected) input."""
    pre = x if is_first else tf.nn.elu(batch_norm(x, scope + "/bn", ctx))
    filters = x.shape[-1] * (2 if increase_dim else 1)
    stride = 2 if increase_dim else 1
    y = conv2d(pre, filters, 3, stride, scope + "/1", ctx, activation=tf.nn.elu, bn=True)
    y = dropout(y, ctx)
    y = conv2d(y, filters, 3, 1, scope + "/2", ctx)
    if increase_dim:
        shortcut = conv2d(x, filters, 1, 2, scope + "/projection", ctx, bias=False)
    else:
        shortcut = x
    return shortcut + y
