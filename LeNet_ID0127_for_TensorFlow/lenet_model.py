"""The LeNet-5 graph of the original port: sigmoid activations, max pooling, 107,786 parameters."""
import glob
import os

import tensorflow as tf

import run_safety
from lenet_cli import UsageError
from mnist_idx import IMAGE_SIDE, NUM_CLASSES

# Every script that uses TensorFlow imports this module. TF1-API deprecation notices would bury the training
# log; errors still show.
tf.get_logger().setLevel("ERROR")

MODEL_SCOPES = ("layer_1", "layer_2", "fc_1", "fc_2", "fc_3")
# The original port called its fully connected weights "weight" (its convolution weights "weights"); its
# checkpoints load through this map.
ORIGINAL_NAMES = {f"fc_{i}/weights": f"fc_{i}/weight" for i in (1, 2, 3)}
# The original README's transfer-learning example excludes "linear/", a scope LeNet never had; the comment
# beside it says what it meant: the fully connected layers.
EXCLUDE_ALIASES = {"linear/": ("fc_1/", "fc_2/", "fc_3/")}


def _variables(scope, weight_shape, bias_size):
    # AUTO_REUSE lets the training and evaluation towers share one set of weights.
    with tf.compat.v1.variable_scope(scope, reuse=tf.compat.v1.AUTO_REUSE):
        weights = tf.compat.v1.get_variable(
            "weights", weight_shape, initializer=tf.compat.v1.glorot_uniform_initializer())
        bias = tf.compat.v1.get_variable("bias", [bias_size], initializer=tf.compat.v1.zeros_initializer())
    return weights, bias


def _conv_pool_sigmoid(scope, inputs, in_maps, out_maps):
    """The original's convolution, sigmoid and 2x2 max pooling. The sigmoid runs after the pooling: it is
    monotonic, so the result is the same, and it and its gradient cost a quarter (RESULTS.md: the step
    8-19 % faster)."""
    weights, bias = _variables(scope, [5, 5, in_maps, out_maps], out_maps)
    conv = tf.nn.conv2d(inputs, weights, 1, "SAME")
    return tf.sigmoid(tf.nn.max_pool2d(conv + bias, ksize=2, strides=2, padding="SAME"))


def _dense(scope, inputs, n_out, activation=None):
    weights, bias = _variables(scope, [inputs.shape[-1], n_out], n_out)
    out = tf.matmul(inputs, weights) + bias
    return activation(out) if activation else out


def inference(images):
    """images: float32 [batch, 784] in [0, 1] -> logits float32 [batch, 10]."""
    x = tf.reshape(images, [-1, IMAGE_SIDE, IMAGE_SIDE, 1])
    x = _conv_pool_sigmoid("layer_1", x, 1, 6)
    x = _conv_pool_sigmoid("layer_2", x, 6, 16)
    x = tf.reshape(x, [-1, (IMAGE_SIDE // 4) ** 2 * 16])
    x = _dense("fc_1", x, 120, tf.sigmoid)
    x = _dense("fc_2", x, 84, tf.sigmoid)
    return _dense("fc_3", x, NUM_CLASSES)


def model_variables():
    """The network's weights and biases (not the optimizer's slots, which share their scopes)."""
    return [v for v in tf.compat.v1.trainable_variables() if v.op.name.split("/")[0] in MODEL_SCOPES]


def excluded_scopes(text, names):
    """--restore_exclude (comma-separated, or the README's list form ['linear/']) -> a tuple of name prefixes.

    A scope that matches none of names (the model's variable names) is a UsageError: a typo would otherwise
    load the layers the user meant to re-initialise.
    """
    prefixes = []
    for item in text.split(","):
        item = item.strip().strip("[]").strip().strip("'\"")
        if not item:
            continue
        expanded = EXCLUDE_ALIASES.get(item.rstrip("/") + "/", (item,))
        if not any(name.startswith(expanded) for name in names):
            raise UsageError(f"--restore_exclude={text}: {item} matches no LeNet variable (scopes: "
                             f"{', '.join(scope + '/' for scope in MODEL_SCOPES)}; linear/ means fc_1/, fc_2/, fc_3/)")
        prefixes.extend(expanded)
    return tuple(prefixes)


def resolve_checkpoint(path, flag):
    """A checkpoint folder (its newest checkpoint that loads) or a checkpoint prefix -> the prefix.

    A damaged prefix or a folder where no checkpoint loads is a UsageError naming flag, never a traceback.
    """
    if os.path.isdir(path):
        found = run_safety.resume_point(path)
        if found:
            return found
        # The original port saved one unnumbered checkpoint per folder (mode.ckpt).
        indexes = sorted(glob.glob(os.path.join(glob.escape(path), "*.index")), key=os.path.getmtime)
        if not indexes:
            raise UsageError(f"{flag} {path}: no checkpoint found")
        path = indexes[-1][:-len(".index")]
    if not tf.io.gfile.exists(path + ".index"):
        raise UsageError(f"{flag} {path}: no checkpoint found")
    problem = run_safety.load_problem(path)
    if problem:
        raise UsageError(f"{flag} {path}: damaged checkpoint: {problem}")
    return path


def checkpoint_names(prefix, variables):
    """{name in the checkpoint: variable}: this port's names, the original port's where the checkpoint has those."""
    try:
        held = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except (ValueError, tf.errors.OpError):
        held = {}  # check_checkpoint reports an unreadable file in one line
    names = {}
    for variable in variables:
        name = variable.op.name
        original = ORIGINAL_NAMES.get(name)
        names[original if name not in held and original in held else name] = variable
    return names


def check_checkpoint(prefix, variables):
    """One line (run_safety.check_variables) unless the checkpoint holds every one of variables, shaped alike;
    returns checkpoint_names(prefix, variables)."""
    names = checkpoint_names(prefix, variables)
    run_safety.check_variables(prefix, {name: v.shape.as_list() for name, v in names.items()}, what="LeNet")
    return names
