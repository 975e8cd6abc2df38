"""Trains LeNet-5 on MNIST idx files, then evaluates it on the whole test set.

Checkpoints go to <output_path>/ckpt_npu (resumed from when present), TensorBoard events to
<output_path>/logs. The log lines keep the original port's format so its launcher greps still work.
"""
import math
import os
import sys
import time
from collections import namedtuple

import lenet_cli
from lenet_cli import TrainingError, UsageError

import numpy as np
import tensorflow as tf

import lenet_device
import lenet_model
import mnist_idx

HERE = os.path.dirname(os.path.abspath(__file__))
EVAL_BATCH = 1000

Outcome = namedtuple("Outcome", "accuracy ms_per_step duration losses")


def parse_args(argv):
    p = lenet_cli.ArgumentParser(prog="LeNet.py", description=__doc__)
    p.add_argument("--data_path", default="MNIST", help="folder with the four MNIST idx files (.gz or plain)")
    p.add_argument("--output_path", default=os.path.join(HERE, "test", "output"),
                   help="run folder: ckpt_npu/ (checkpoints, graph.pbtxt) and logs/ (TensorBoard)")
    p.add_argument("--batch_size", type=lenet_cli.positive_int, default=64)
    p.add_argument("--learing_rata", "--learning_rate", dest="learning_rate", type=lenet_cli.positive_float,
                   default=0.001, help="Adam learning rate (the original's misspelt flag is kept)")
    p.add_argument("--steps", type=lenet_cli.positive_int, default=1000, help="steps per epoch")
    p.add_argument("--epochs", type=lenet_cli.positive_int, default=5)
    p.add_argument("--validation_size", type=int, default=5000, help="last N training images held out")
    p.add_argument("--save_checkpoints_steps", type=lenet_cli.positive_int, default=200)
    p.add_argument("--summary_steps", type=lenet_cli.positive_int, default=100)
    p.add_argument("--warmup_steps", type=int, default=20, help="steps left out of the ms/step figure")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--restore_path", default="", help="checkpoint (file prefix or folder) to initialise from")
    p.add_argument("--restore_exclude", default="", help="comma-separated scopes not to load, e.g. fc_3/")
    p.add_argument("--precision_mode", choices=lenet_device.PRECISION_MODES, default="allow_fp32_to_fp16",
                   help="Ascend option; off Ascend the zoo's precision table maps it (see README)")
    p.add_argument("--loss_scale_flag", type=int, choices=(0, 1), default=0, help="1: fixed loss scale (Ascend)")
    p.add_argument("--loss_scale_value", type=lenet_cli.positive_float, default=1024.0)
    p.add_argument("--over_dump", type=lenet_cli.str2bool, default=False)
    p.add_argument("--data_dump_flag", type=lenet_cli.str2bool, default=False)
    p.add_argument("--data_dump_step", type=str, default="10")
    p.add_argument("--profiling", type=lenet_cli.str2bool, default=False)
    p.add_argument("--iteration_per_loop", type=lenet_cli.positive_int, default=1)
    args = lenet_cli.parse_tolerant(p, argv)
    if args.validation_size < 0:
        p.error(f"argument --validation_size: must be >= 0, got {args.validation_size}")
    if args.warmup_steps < 0:
        p.error(f"argument --warmup_steps: must be >= 0, got {args.warmup_steps}")
    return args


def training_batches(images, labels, batch_size, seed):
    """Shuffled, repeated batches from in-memory uint8 arrays fed once through placeholders.

    Placeholders keep the dataset out of the GraphDef (graph.pbtxt stays small); scaling and one-hot run
    once per batch, not per sample.
    """
    images_ph = tf.compat.v1.placeholder(tf.uint8, images.shape, name="train_images")
    labels_ph = tf.compat.v1.placeholder(tf.uint8, labels.shape, name="train_labels")
    dataset = (tf.data.Dataset.from_tensor_slices((images_ph, labels_ph))
               .shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
               .repeat()
               .batch(batch_size, drop_remainder=True)
               .map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, tf.one_hot(y, mnist_idx.NUM_CLASSES)),
                    num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
    return iterator, {images_ph: images, labels_ph: labels}


def restore_pretrained(restore_path, exclude):
    """Initialises the model variables from another run's checkpoint, except the excluded scopes."""
    restore_path = lenet_model.resolve_checkpoint(restore_path, "--restore_path")
    prefixes = [s.strip() for s in exclude.split(",") if s.strip()]
    chosen = {v.op.name: v for v in lenet_model.model_variables()
              if not any(v.op.name.startswith(prefix) for prefix in prefixes)}
    try:
        tf.compat.v1.train.init_from_checkpoint(restore_path, chosen)
    except (ValueError, tf.errors.OpError) as err:
        raise UsageError(f"--restore_path {restore_path}: {str(err).splitlines()[0]}") from None
    return restore_path, sorted(chosen)


class Graph:
    """The training and evaluation graph: one set of weights, two towers."""

    def __init__(self, args, train):
        self.global_step = tf.compat.v1.train.get_or_create_global_step()
        self.iterator, self.feed = training_batches(train.images, train.labels, args.batch_size, args.seed)
        images, labels = self.iterator.get_next()
        logits = lenet_model.inference(images)
        self.loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        train_accuracy = _accuracy(logits, tf.argmax(labels, 1))
        optimizer = tf.compat.v1.train.AdamOptimizer(args.learning_rate, beta1=0.9, beta2=0.999)
        optimizer = lenet_device.wrap_optimizer(optimizer, args.loss_scale_flag, args.loss_scale_value)
        self.train_op = optimizer.minimize(self.loss, global_step=self.global_step)
        tf.compat.v1.summary.scalar("loss", self.loss)
        tf.compat.v1.summary.scalar("train_accuracy", train_accuracy)
        self.summaries = tf.compat.v1.summary.merge_all()

        self.eval_images = tf.compat.v1.placeholder(tf.uint8, [None, mnist_idx.PIXELS], name="eval_images")
        self.eval_labels = tf.compat.v1.placeholder(tf.uint8, [None], name="eval_labels")
        eval_logits = lenet_model.inference(tf.cast(self.eval_images, tf.float32) / 255.0)
        self.eval_correct = tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(eval_logits, 1), tf.cast(self.eval_labels, tf.int64)), tf.float32))

    def accuracy(self, sess, split):
        correct = 0.0
        for start in range(0, len(split), EVAL_BATCH):
            end = start + EVAL_BATCH
            correct += sess.run(self.eval_correct, {self.eval_images: split.images[start:end],
                                                    self.eval_labels: split.labels[start:end]})
        return correct / len(split)


def _accuracy(logits, label_ids):
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), label_ids), tf.float32))


def steady_ms_per_step(step_seconds, warmup):
    """Mean step time after the warm-up steps (all steps when the run is shorter than the warm-up)."""
    steady = step_seconds[warmup:] if len(step_seconds) > warmup else step_seconds
    return f"{1000.0 * float(np.mean(steady)):.4f}" if steady else "NA"


def check_loss(loss, step, learning_rate, ckpt_dir):
    """A diverged loss ends the run: training failed, the flags were valid."""
    if not math.isfinite(loss):
        last = tf.train.latest_checkpoint(ckpt_dir) or "none"
        raise TrainingError(f"loss is {loss} at step {step}; lower --learning_rate "
                            f"(now {learning_rate}; last checkpoint: {last})")


def train(args, sess, graph, saver, ckpt_dir, writer, validation):
    """Runs the remaining steps; returns the losses and per-step wall times of this process."""
    total = args.epochs * args.steps
    step = sess.run(graph.global_step)
    if step >= total:
        print(f"checkpoint is at global step {step} of {total}: nothing left to train", flush=True)
    losses, step_seconds = [], []
    while step < total:
        # The step is counted here: a global_step fetched beside train_op may be read before its increment.
        step += 1
        with_summary = step % args.summary_steps == 0
        fetches = [graph.train_op, graph.loss] + ([graph.summaries] if with_summary else [])
        start = time.perf_counter()
        results = sess.run(fetches)
        elapsed = time.perf_counter() - start
        loss = results[1]
        check_loss(loss, step, args.learning_rate, ckpt_dir)
        losses.append(float(loss))
        step_seconds.append(elapsed)
        epoch, step_in_epoch = (step - 1) // args.steps + 1, (step - 1) % args.steps + 1
        print(f"epoch : {epoch}----step : {step_in_epoch}----loss : {loss}----sec/step : {elapsed}", flush=True)
        if with_summary:
            writer.add_summary(results[2], step)
        if step % args.save_checkpoints_steps == 0 or step == total:
            saver.save(sess, os.path.join(ckpt_dir, "model.ckpt"), global_step=step, write_meta_graph=False)
        if step_in_epoch == args.steps:
            report_epoch(args, sess, graph, writer, validation, epoch, step, step_seconds[-args.steps:])
    return losses, step_seconds


def report_epoch(args, sess, graph, writer, validation, epoch, step, epoch_seconds):
    ips = args.batch_size * len(epoch_seconds) / sum(epoch_seconds)
    line = f"epoch {epoch} done: global step {step}, images/sec {ips:.1f}"
    if len(validation):
        accuracy = graph.accuracy(sess, validation)
        writer.add_summary(tf.compat.v1.Summary(value=[
            tf.compat.v1.Summary.Value(tag="validation_accuracy", simple_value=accuracy)]), step)
        line += f", validation accuracy {accuracy:.4f}"
    print(line, flush=True)


def run(args, datasets=None):
    """Trains and evaluates as the parsed flags say, printing the log the launchers read; returns an Outcome.

    datasets: (train, validation, test) mnist_idx.Split objects to use instead of reading --data_path (and
    --validation_size); tests inject small arrays this way. Each call builds its own graph.
    """
    train_split, validation, test = datasets or mnist_idx.load(args.data_path, args.validation_size)
    source = args.data_path if datasets is None else "arrays passed to run()"
    ckpt_dir = os.path.join(args.output_path, "ckpt_npu")
    os.makedirs(ckpt_dir, exist_ok=True)
    resume_from = tf.train.latest_checkpoint(ckpt_dir)

    chosen = lenet_device.precision(args.precision_mode)
    print(chosen.describe(), flush=True)
    print(f"data: {len(train_split)} train / {len(validation)} validation / {len(test)} test images from "
          f"{source}; batch_size {args.batch_size}, learning_rate {args.learning_rate}, "
          f"{args.epochs} epochs x {args.steps} steps", flush=True)
    if args.iteration_per_loop != 1:
        print(f"[Warning] --iteration_per_loop={args.iteration_per_loop}: this port runs one step per "
              "session call on every device", file=sys.stderr)
    config = lenet_device.session_config(chosen, args.output_path, args.over_dump, args.data_dump_flag,
                                         args.data_dump_step, args.profiling)

    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(args.seed)
        graph = Graph(args, train_split)
        if args.restore_path and not resume_from:
            origin, names = restore_pretrained(args.restore_path, args.restore_exclude)
            print(f"initialised {len(names)} variables from {origin} (excluded: {args.restore_exclude or 'none'})")
        saver = tf.compat.v1.train.Saver(max_to_keep=5)
        writer = tf.compat.v1.summary.FileWriter(os.path.join(args.output_path, "logs"), tf.compat.v1.get_default_graph())
        with tf.compat.v1.Session(config=config) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            if resume_from:
                saver.restore(sess, resume_from)
                print(f"resuming from {resume_from} at global step {sess.run(graph.global_step)}", flush=True)
            sess.run(graph.iterator.initializer, graph.feed)
            tf.io.write_graph(sess.graph_def, ckpt_dir, "graph.pbtxt")
            start = time.time()
            try:
                losses, step_seconds = train(args, sess, graph, saver, ckpt_dir, writer, validation)
            finally:
                writer.close()
            duration = time.time() - start
            accuracy = graph.accuracy(sess, test)
    ms_per_step = steady_ms_per_step(step_seconds, args.warmup_steps)
    print(f"Final Accuracy accuracy : {accuracy:.4f}")
    print(f"Final Performance ms/step : {ms_per_step}")
    print(f"Final Training Duration sec : {duration:.2f}", flush=True)
    return Outcome(accuracy, ms_per_step, duration, losses)


def main(argv):
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    lenet_cli.run(main)
