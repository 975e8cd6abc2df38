"""LeNet's frozen graph, written (LeNet_frozen_graph.py, whose docstring lists its input and output nodes)
and run (LeNet_online_inference.py); both scripts import it once their flags are parsed.
"""
import os
import time

import numpy as np
import tensorflow as tf

import lenet_model
import run_report
import run_safety
from lenet_cli import UsageError
from mnist_idx import NUM_CLASSES, PIXELS

OUTPUT_NODES = ["Mean_1", "predictions"]
INPUT, OUTPUT = "input_image:0", "predictions:0"


def _build_inference_graph():
    images = tf.compat.v1.placeholder(tf.float32, [None, PIXELS], name="input_image")
    labels = tf.compat.v1.placeholder(tf.float32, [None, NUM_CLASSES], name="input_label")
    logits = lenet_model.inference(images)
    tf.nn.softmax(logits, name="predictions")
    correct = tf.equal(tf.argmax(logits, 1), tf.argmax(labels, 1))
    tf.reduce_mean(tf.cast(correct, tf.float32), name="Mean_1")


def freeze(checkpoint):
    """The inference graph with checkpoint's weights as constants: a GraphDef."""
    with tf.Graph().as_default():
        _build_inference_graph()
        saver = tf.compat.v1.train.Saver(lenet_model.check_checkpoint(checkpoint, lenet_model.model_variables()))
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, checkpoint)
            return tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, sess.graph.as_graph_def(), OUTPUT_NODES)


def load(model_path):
    """The frozen graph at model_path -> (graph, input tensor, predictions tensor); a UsageError when it is
    missing or not a LeNet frozen graph."""
    if not os.path.isfile(model_path):
        raise UsageError(f"--model_path {model_path}: file not found (run LeNet_frozen_graph.py)")
    graph_def = tf.compat.v1.GraphDef()
    try:
        with open(model_path, "rb") as handle:
            graph_def.ParseFromString(handle.read())
    except Exception as err:  # protobuf raises its own DecodeError type
        raise UsageError(f"--model_path {model_path}: not a GraphDef ({err})") from None
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        inputs, outputs = graph.get_tensor_by_name(INPUT), graph.get_tensor_by_name(OUTPUT)
    except (ValueError, KeyError) as err:  # another model's graph, or a checkpoint file that parsed by chance
        raise UsageError(run_safety.short(f"--model_path {model_path}: not a LeNet frozen graph with {INPUT} "
                                          f"and {OUTPUT} ({err})")) from None
    return graph, inputs, outputs


def predict(loaded, images, batch_size):
    """Classes predicted by a load()ed graph for images [n, 784] in batches of batch_size (the last one
    zero-padded), and each batch's seconds; prints [progress] lines (run_report.Progress) along the way."""
    graph, inputs, outputs = loaded
    predicted, batch_seconds = [], []
    progress = run_report.Progress(len(images), unit="image")
    with tf.compat.v1.Session(graph=graph) as sess:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            padded = np.zeros((batch_size, PIXELS), np.float32)
            padded[:len(batch)] = batch
            began = time.perf_counter()
            probabilities = sess.run(outputs, {inputs: padded})
            batch_seconds.append(time.perf_counter() - began)
            predicted.extend(np.argmax(probabilities[:len(batch)], axis=1))
            done = start + len(batch)
            progress.update(done, images_per_sec=len(batch) / batch_seconds[-1], force=done == len(images))
    return np.array(predicted), batch_seconds
