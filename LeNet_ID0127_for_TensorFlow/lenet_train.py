"""Trains LeNet-5 on MNIST idx files, then evaluates it on the whole test set.

Checkpoints go to <output_path>/ckpt_npu (resumed from when present), TensorBoard events to
<output_path>/logs. The log lines keep the original port's format so its launcher greps still work.
"""
import os
import sys
import time
from collections import namedtuple

import lenet_cli
import run_report
import run_safety
from lenet_cli import UsageError

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
    p.add_argument("--resume", type=lenet_cli.str2bool, default=False,
                   help="True: continue from <output_path>/ckpt_npu, an error when it holds no usable checkpoint "
                        "(False resumes too when checkpoints are there)")
    p.add_argument("--restore_path", default="", help="checkpoint (file prefix or folder) to initialise from")
    p.add_argument("--restore_exclude", default="",
                   help="comma-separated scopes not to load, e.g. fc_3/; linear/ (the original README's value) "
                        "means the fully connected layers fc_1/, fc_2/, fc_3/")
    p.add_argument("--precision_mode", choices=lenet_device.PRECISION_MODES, default="allow_fp32_to_fp16",
                   help="Ascend option; off Ascend the zoo's precision table maps it (see README)")
    p.add_argument("--loss_scale_flag", type=int, choices=(0, 1), default=0,
                   help="Ascend: 1 scales the loss (0: no loss scaling), as the original")
    p.add_argument("--loss_scale_value", type=float, default=0.0,
                   help="with --loss_scale_flag=1: 0 a dynamic loss scale, >= 1 that fixed scale")
    p.add_argument("--over_dump", type=lenet_cli.str2bool, default=False)
    p.add_argument("--data_dump_flag", type=lenet_cli.str2bool, default=False)
    p.add_argument("--data_dump_step", type=str, default="10")
    p.add_argument("--profiling", type=lenet_cli.str2bool, default=False)
    p.add_argument("--iteration_per_loop", type=lenet_cli.positive_int, default=1)
    args = lenet_cli.parse_tolerant(p, argv)
    if args.validation_size < 0:
        p.error(f"argument --validation_size: must be >= 0, got {args.validation_size}")
    if not (args.loss_scale_value == 0 or args.loss_scale_value >= 1):
        p.error(f"argument --loss_scale_value: must be 0 (dynamic) or >= 1, got {args.loss_scale_value:g}")
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
    """Initialises the model variables from another run's checkpoint (this port's or the original port's
    names), except the excluded scopes; returns (checkpoint, names of the variables loaded)."""
    restore_path = lenet_model.resolve_checkpoint(restore_path, "--restore_path")
    variables = lenet_model.model_variables()
    prefixes = lenet_model.excluded_scopes(exclude, [v.op.name for v in variables])
    chosen = [v for v in variables if not v.op.name.startswith(prefixes)]
    if not chosen:
        raise UsageError(f"--restore_exclude={exclude} leaves no variable to load from --restore_path")
    # Every chosen variable must be there: a checkpoint of another network is one line, not a listing.
    names = lenet_model.check_checkpoint(restore_path, chosen)
    try:
        tf.compat.v1.train.init_from_checkpoint(restore_path, names)
    except (ValueError, tf.errors.OpError) as err:
        raise UsageError(f"--restore_path {restore_path}: {str(err).splitlines()[0]}") from None
    return restore_path, sorted(v.op.name for v in chosen)


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
        # Fetched only before a save: a finite loss can still leave non-finite weights after its update.
        self.weight_norm = tf.add_n([tf.reduce_sum(tf.abs(v)) for v in lenet_model.model_variables()])
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


class Checkpoints:
    """Numbered checkpoints model.ckpt-<global step> in one folder; a non-finite model is never saved."""

    def __init__(self, ckpt_dir, graph):
        self.prefix = os.path.join(ckpt_dir, "model.ckpt")
        self.graph = graph
        # Relative paths in the state file: a moved or copied run folder still names its own checkpoints.
        self.saver = tf.compat.v1.train.Saver(max_to_keep=5, save_relative_paths=True)
        # Checkpoints of earlier processes join the rotation, so the folder keeps the newest five in all.
        self.saver.recover_last_checkpoints([p for _, p in reversed(run_safety.numbered_checkpoints(ckpt_dir))])

    def save(self, sess, step):
        run_safety.check_finite(step, "--learning_rate", weight_norm=sess.run(self.graph.weight_norm))
        return self.saver.save(sess, self.prefix, global_step=step, write_meta_graph=False)


def train(args, sess, graph, checkpoints, writer, validation, stop):
    """Runs the remaining steps; returns the losses and per-step wall times of this process."""
    total = args.epochs * args.steps
    step = sess.run(graph.global_step)
    if step >= total:
        print(f"checkpoint is at global step {step} of {total}: nothing left to train", flush=True)
    losses, step_seconds = [], []
    progress = run_report.Progress(total)
    while step < total:
        stop.stop_if_requested(step, lambda: checkpoints.save(sess, step))
        # The step is counted here: a global_step fetched beside train_op may be read before its increment.
        step += 1
        with_summary = step % args.summary_steps == 0
        fetches = [graph.train_op, graph.loss] + ([graph.summaries] if with_summary else [])
        start = time.perf_counter()
        results = sess.run(fetches)
        elapsed = time.perf_counter() - start
        loss = results[1]
        run_safety.check_finite(step, "--learning_rate", loss=loss)
        losses.append(float(loss))
        step_seconds.append(elapsed)
        epoch, step_in_epoch = (step - 1) // args.steps + 1, (step - 1) % args.steps + 1
        print(f"epoch : {epoch}----step : {step_in_epoch}----loss : {loss}----sec/step : {elapsed}", flush=True)
        recent = step_seconds[-100:]
        progress.update(step, loss=float(loss), images_per_sec=args.batch_size * len(recent) / sum(recent),
                        force=step == total)
        if with_summary:
            writer.add_summary(results[2], step)
        if step % args.save_checkpoints_steps == 0 or step == total:
            checkpoints.save(sess, step)
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
    # Check first, then touch: the data and the output folder are proven before anything is written, and
    # the folder is locked before its checkpoints are read.
    splits = datasets or mnist_idx.load(args.data_path, args.validation_size)
    source = args.data_path if datasets is None else "arrays passed to run()"
    run_safety.writable_folder(args.output_path, "--output_path")
    with run_safety.FolderLock(args.output_path), run_safety.StopSignals() as stop:
        ckpt_dir = run_safety.writable_folder(os.path.join(args.output_path, "ckpt_npu"), "--output_path")
        logs_dir = run_safety.writable_folder(os.path.join(args.output_path, "logs"), "--output_path")
        resume_from = run_safety.resume_point(ckpt_dir)
        if args.resume and not resume_from:
            raise UsageError(f"--resume=True: {ckpt_dir} holds no checkpoint to resume from")
        return _train_and_evaluate(args, splits, source, ckpt_dir, logs_dir, resume_from, stop)


def _train_and_evaluate(args, splits, source, ckpt_dir, logs_dir, resume_from, stop):
    train_split, validation, test = splits
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
        if resume_from:
            lenet_model.check_checkpoint(resume_from, tf.compat.v1.global_variables())
        elif args.restore_path:
            origin, names = restore_pretrained(args.restore_path, args.restore_exclude)
            print(f"initialised {len(names)} variables from {origin} (excluded: {args.restore_exclude or 'none'})")
        checkpoints = Checkpoints(ckpt_dir, graph)
        writer = tf.compat.v1.summary.FileWriter(logs_dir, tf.compat.v1.get_default_graph())
        with tf.compat.v1.Session(config=config) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            if resume_from:
                checkpoints.saver.restore(sess, resume_from)
                print(f"resuming from {resume_from} at step {sess.run(graph.global_step)}", flush=True)
            else:
                # A kill at any moment from here on leaves something to resume from.
                checkpoints.save(sess, 0)
            sess.run(graph.iterator.initializer, graph.feed)
            tf.io.write_graph(sess.graph_def, ckpt_dir, "graph.pbtxt")
            start = time.time()
            try:
                losses, step_seconds = train(args, sess, graph, checkpoints, writer, validation, stop)
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
