"""A trained AlexNet as a photo classifier, for export.py and predict.py (which parse their flags before
importing this module, and TensorFlow with it).

The graph takes decoded photos and does the held-out photos' preprocessing itself (data_loader.validation_view),
so an exported model, predict.py and the training run's held-out evaluation see the same pixels:
  input  `images`        uint8 RGB [N, H, W, 3], any H and W (one size per batch; a single photo is N = 1)
  output `probabilities` float32 [N, 2], softmax over (cat, dog)
  output `classes`       int32 [N], 0 = cat, 1 = dog
  `network_input`        float32 [N, 227, 227, 3], what the first layer sees after that preprocessing: a caller
                         that preprocesses itself (or a benchmark of the network alone) can feed it instead
"""
import json
import os
from typing import NamedTuple

import numpy as np
import tensorflow as tf

import data_loader
import model
import run_outputs
import run_safety

INPUT, PROBABILITIES, CLASSES = "images", "probabilities", "classes"
NETWORK_INPUT = "network_input"  # the first layer's input, after the preprocessing (float32 [N, 227, 227, 3])
DEFAULT_PIXELS = "unit"  # main.py's default; runs before history.json recorded --pixels used it unless told


class Classifier(NamedTuple):
    sess: tf.compat.v1.Session
    images: tf.Tensor         # the `images` placeholder
    probabilities: tf.Tensor
    classes: tf.Tensor
    prefix: str               # the checkpoint restored
    pixels: str               # the network input mode it was trained with


def checkpoint_prefix(path, flag="--checkpoint_path"):
    """The checkpoint that path names: a prefix (model/model.ckpt-120), a folder of checkpoints (model/,
    model_epoch11/) or a run folder as a launcher leaves it (test/output/0, its model/ inside): there the
    newest one that loads, a damaged one skipped with a warning. RunSafetyError in one line otherwise."""
    if os.path.isfile(path + ".index"):
        problem = run_safety.load_problem(path)
        if problem:
            raise run_safety.RunSafetyError(f"{flag}={path}: the checkpoint does not load: {problem}")
        return path
    if not os.path.isdir(path):
        raise run_safety.RunSafetyError(f"{flag}={path}: no such checkpoint or folder")
    for folder in (path, os.path.join(path, run_outputs.MODEL_FOLDER)):
        if os.path.isdir(folder):
            prefix = run_safety.resume_point(folder)
            if prefix:
                return prefix
            if os.path.isfile(os.path.join(folder, run_outputs.PREFIX + ".index")):  # a model_epoch<N> snapshot
                return checkpoint_prefix(os.path.join(folder, run_outputs.PREFIX), flag)
    raise run_safety.RunSafetyError(f"{flag}={path}: no checkpoint there; give a run folder (test/output/0), its "
                                    "model/ folder or a checkpoint prefix (model/model.ckpt-<step>)")


def trained_pixels(prefix):
    """The --pixels the run was trained with, from the history.json of its run folder; None when not recorded."""
    run_folder = os.path.dirname(os.path.dirname(os.path.abspath(prefix)))
    try:
        with open(os.path.join(run_folder, "history.json")) as handle:
            return json.load(handle).get("pixels")
    except (OSError, ValueError, AttributeError):
        return None


def outputs(images, pixels):
    """(probabilities, classes) of uint8 RGB photos [N, H, W, 3], named for export; creates the variables."""
    network_input = tf.identity(model.network_input(data_loader.validation_view(images), pixels), name=NETWORK_INPUT)
    logits = model.inference(network_input)
    return (tf.nn.softmax(logits, name=PROBABILITIES),
            tf.argmax(logits, 1, output_type=tf.int32, name=CLASSES))


def load(checkpoint_path, pixels=None):
    """A Classifier restored from the checkpoint checkpoint_path names (checkpoint_prefix). pixels: the network
    input mode; None = the one the run recorded, else main.py's default. RunSafetyError in one line for a
    checkpoint of another model or one whose weights are not all finite."""
    prefix = checkpoint_prefix(checkpoint_path)
    pixels = pixels or trained_pixels(prefix) or DEFAULT_PIXELS
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name=INPUT)
        probabilities, classes = outputs(images, pixels)
        variables = tf.compat.v1.global_variables()
        run_safety.check_variables(prefix, {v.op.name: v.shape.as_list() for v in variables}, "this AlexNet")
        saver = tf.compat.v1.train.Saver(variables)
        sess = tf.compat.v1.Session(graph=graph)
        saver.restore(sess, prefix)
        # A served model that answers NaN is worse than none: refuse such weights here, naming one of them.
        values = sess.run(variables)
    bad = [v.op.name for v, value in zip(variables, values) if not np.isfinite(value).all()]
    if bad:
        sess.close()
        raise run_safety.RunSafetyError(f"{prefix}: {len(bad)} weight tensors are not finite (first: {bad[0]}); "
                                        "use an earlier checkpoint")
    return Classifier(sess, images, probabilities, classes, prefix, pixels)
