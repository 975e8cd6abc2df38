"""slim's optimizer choices, each with slim's default settings: name -> fn(tf.compat.v1.train, learning_rate,
momentum). TensorFlow is passed in, not imported here: train.py's flag parser reads the names before it loads."""

FACTORIES = {
    "sgd": lambda v1, lr, momentum: v1.GradientDescentOptimizer(lr),
    "momentum": lambda v1, lr, momentum: v1.MomentumOptimizer(lr, momentum=momentum, name="Momentum"),
    "adam": lambda v1, lr, momentum: v1.AdamOptimizer(lr, beta1=0.9, beta2=0.999, epsilon=1.0),
    "rmsprop": lambda v1, lr, momentum: v1.RMSPropOptimizer(lr, decay=0.9, momentum=momentum, epsilon=1.0),
    "adagrad": lambda v1, lr, momentum: v1.AdagradOptimizer(lr, initial_accumulator_value=0.1),
    "adadelta": lambda v1, lr, momentum: v1.AdadeltaOptimizer(lr, rho=0.95, epsilon=1.0),
    "ftrl": lambda v1, lr, momentum: v1.FtrlOptimizer(lr, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                                                     l1_regularization_strength=0.0, l2_regularization_strength=0.0),
}


def build(name, learning_rate, momentum):
    import tensorflow as tf

    return FACTORIES[name](tf.compat.v1.train, learning_rate, momentum)
