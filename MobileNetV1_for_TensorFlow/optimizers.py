"""slim's optimizer choices, each with slim's default settings: name -> fn(learning_rate, momentum)."""
import tensorflow as tf

_v1 = tf.compat.v1.train

FACTORIES = {
    "sgd": lambda lr, momentum: _v1.GradientDescentOptimizer(lr),
    "momentum": lambda lr, momentum: _v1.MomentumOptimizer(lr, momentum=momentum, name="Momentum"),
    "adam": lambda lr, momentum: _v1.AdamOptimizer(lr, beta1=0.9, beta2=0.999, epsilon=1.0),
    "rmsprop": lambda lr, momentum: _v1.RMSPropOptimizer(lr, decay=0.9, momentum=momentum, epsilon=1.0),
    "adagrad": lambda lr, momentum: _v1.AdagradOptimizer(lr, initial_accumulator_value=0.1),
    "adadelta": lambda lr, momentum: _v1.AdadeltaOptimizer(lr, rho=0.95, epsilon=1.0),
    "ftrl": lambda lr, momentum: _v1.FtrlOptimizer(lr, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                                                  l1_regularization_strength=0.0, l2_regularization_strength=0.0),
}


def build(name, learning_rate, momentum):
    return FACTORIES[name](learning_rate, momentum)
