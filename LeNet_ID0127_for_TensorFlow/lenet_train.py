"""LeNet.py's TensorFlow part: the training graph, the training loop with its checkpoints, TensorBoard runs
and progress lines, the evaluation on the test set and the run's result.json. LeNet.py imports it once its
flags are parsed and its folders checked.
"""
import os
import time
from collections import namedtuple

import tensorflow as tf

import lenet_device
import lenet_model
import mnist_idx
import run_report
import run_safety
from lenet_cli import UsageError

EVAL_BATCH = 250  # images per evaluation call: 1,000 raised the peak memory of a run by ~40 MB (RESULTS.md)

Outcome = namedtuple("Outcome", "accuracy ms_per_step duration losses")


def batches(images, labels, count, batch_size, seed):
    """Shuffled, repeated batches (float32 images in [0, 1], one-hot labels) of `count` uint8 images and labels
    (arrays or placeholders); scaling and one-hot run once per batch, not per sample."""
    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .shuffle(count, seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(batch_size, drop_remainder=True)
            .map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, tf.one_hot(y, mnist_idx.NUM_CLASSES)),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def training_batches(images, labels, batch_size, seed):
    """batches() of in-memory uint8 arrays fed once through placeholders: they keep the dataset out of the
    GraphDef (graph.pbtxt stays small)."""
    images_ph = tf.compat.v1.placeholder(tf.uint8, images.shape, name="train_images")
    labels_ph = tf.compat.v1.placeholder(tf.uint8, labels.shape, name="train_labels")
    dataset = batches(images_ph, labels_ph, len(labels), batch_size, seed)
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
    """The training and evaluation graph: one set of weights, two towers.

    A training call runs `loop_steps` steps (fed; at least 1) in a tf.while_loop and returns their losses and
    the last batch's accuracy: --iteration_per_loop steps per session call, as Ascend's iterations_per_loop.
    """

    def __init__(self, args, train):
        self.global_step = tf.compat.v1.train.get_or_create_global_step()
        self.iterator, self.feed = training_batches(train.images, train.labels, args.batch_size, args.seed)
        # The evaluation tower first: it creates the variables that the loop body then reuses (a while loop
        # cannot create variables).
        self.eval_images = tf.compat.v1.placeholder(tf.uint8, [None, mnist_idx.PIXELS], name="eval_images")
        self.eval_labels = tf.compat.v1.placeholder(tf.uint8, [None], name="eval_labels")
        eval_logits = lenet_model.inference(tf.cast(self.eval_images, tf.float32) / 255.0)
        self.eval_correct = tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(eval_logits, 1), tf.cast(self.eval_labels, tf.int64)), tf.float32))

        optimizer = tf.compat.v1.train.AdamOptimizer(args.learning_rate, beta1=0.9, beta2=0.999)
        optimizer = lenet_device.wrap_optimizer(optimizer, args.loss_scale_flag, args.loss_scale_value)
        self.loop_steps = tf.compat.v1.placeholder(tf.int32, [], name="loop_steps")

        def step(i, losses, _):
            images, labels = self.iterator.get_next()
            logits = lenet_model.inference(images)
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            with tf.control_dependencies([optimizer.minimize(loss, global_step=self.global_step)]):
                return i + 1, losses.write(i, loss), _accuracy(logits, tf.argmax(labels, 1))

        # One iteration at a time: the next batch's forward pass reads the weights this one updated.
        _, losses, self.last_accuracy = tf.compat.v1.while_loop(
            lambda i, *_: i < self.loop_steps, step,
            [tf.constant(0), tf.TensorArray(tf.float32, size=self.loop_steps), tf.constant(0.0)],
            parallel_iterations=1)
        self.losses = losses.stack()
        # Fetched only before a save: a finite loss can still leave non-finite weights after its update.
        self.weight_norm = tf.add_n([tf.reduce_sum(tf.abs(v)) for v in lenet_model.model_variables()])

    def accuracy(self, sess, split):
        correct = 0.0
        for start in range(0, len(split), EVAL_BATCH):
            end = start + EVAL_BATCH
            correct += sess.run(self.eval_correct, {self.eval_images: split.images[start:end],
                                                    self.eval_labels: split.labels[start:end]})
        return float(correct) / len(split)


def _accuracy(logits, label_ids):
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), label_ids), tf.float32))


class Summaries:
    """The run's two TensorBoard runs: logs/train (every --summary_steps) and logs/eval (validation accuracy
    after each epoch, test accuracy at the end)."""

    def __init__(self, folders, graph):
        self.train = tf.compat.v1.summary.FileWriter(folders["train_logs"], graph)
        self.eval = tf.compat.v1.summary.FileWriter(folders["eval_logs"])

    @staticmethod
    def scalar(writer, tag, value, step):
        writer.add_summary(tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=tag, simple_value=value)]),
                           step)

    def close(self):
        self.train.close()
        self.eval.close()


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


def _next_stop(step, total, args):
    """The step the next session call trains up to: --iteration_per_loop steps, or fewer so that it ends at
    the next summary, checkpoint or epoch end (each happens between calls)."""
    stops = [total, step + args.iteration_per_loop]
    stops += [(step // every + 1) * every for every in (args.summary_steps, args.save_checkpoints_steps, args.steps)]
    return min(stops)


def train(args, sess, graph, checkpoints, summaries, validation, stop, clock):
    """Runs the remaining steps, timing each on clock; returns the losses of this process."""
    total = args.epochs * args.steps
    step = sess.run(graph.global_step)
    if step >= total:
        print(f"checkpoint is at global step {step} of {total}: nothing left to train", flush=True)
    losses = []
    progress = run_report.Progress(total)
    while step < total:
        stop.stop_if_requested(step, lambda: checkpoints.save(sess, step))
        # Steps are counted here: a global_step fetched beside the loop may be read before its last increment.
        first, step = step + 1, _next_stop(step, total, args)
        start = time.perf_counter()
        loop_losses, accuracy = sess.run([graph.losses, graph.last_accuracy], {graph.loop_steps: step - first + 1})
        # A loop of N steps is timed as a whole: each of its steps took 1/N of it.
        elapsed = (time.perf_counter() - start) / len(loop_losses)
        for number, loss in enumerate(loop_losses, first):
            run_safety.check_finite(number, "--learning_rate", loss=loss)
            losses.append(float(loss))
            clock.add(elapsed)
            epoch, in_epoch = (number - 1) // args.steps + 1, (number - 1) % args.steps + 1
            print(f"epoch : {epoch}----step : {in_epoch}----loss : {loss}----sec/step : {elapsed}", flush=True)
        recent = clock.seconds[-100:]
        progress.update(step, loss=losses[-1], images_per_sec=args.batch_size * len(recent) / sum(recent),
                        force=step == total)
        if step % args.summary_steps == 0:
            for tag, value in (("loss", losses[-1]), ("train_accuracy", accuracy),
                               ("learning_rate", args.learning_rate), ("images_per_sec", clock.images_per_sec)):
                summaries.scalar(summaries.train, tag, value, step)
        if step % args.save_checkpoints_steps == 0 or step == total:
            checkpoints.save(sess, step)
        if step % args.steps == 0:
            report_epoch(args, sess, graph, summaries, validation, epoch, step, clock.seconds[-args.steps:])
    return losses


def report_epoch(args, sess, graph, summaries, validation, epoch, step, epoch_seconds):
    ips = args.batch_size * len(epoch_seconds) / sum(epoch_seconds)
    line = f"epoch {epoch} done: global step {step}, images/sec {ips:.1f}"
    if len(validation):
        accuracy = graph.accuracy(sess, validation)
        summaries.scalar(summaries.eval, "validation_accuracy", accuracy, step)
        line += f", validation accuracy {accuracy:.4f}"
    print(line, flush=True)


def train_and_evaluate(args, splits, source, folders, resume_from, stop, started):
    """The run after LeNet.run's checks: folders are its checked ckpt, train_logs and eval_logs folders,
    started its time.monotonic() start (for result.json's e2e_seconds)."""
    train_split, validation, test = splits
    chosen = lenet_device.precision(args.precision_mode)
    print(chosen.describe(), flush=True)
    print(f"data: {len(train_split)} train / {len(validation)} validation / {len(test)} test images from "
          f"{source}; batch_size {args.batch_size}, learning_rate {args.learning_rate}, "
          f"{args.epochs} epochs x {args.steps} steps", flush=True)
    config = lenet_device.session_config(chosen, args.output_path, args.over_dump, args.data_dump_flag,
                                         args.data_dump_step, args.profiling)
    clock = run_report.StepClock(args.batch_size)

    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(args.seed)
        graph = Graph(args, train_split)
        if resume_from:
            lenet_model.check_checkpoint(resume_from, tf.compat.v1.global_variables())
        elif args.restore_path:
            origin, names = restore_pretrained(args.restore_path, args.restore_exclude)
            print(f"initialised {len(names)} variables from {origin} (excluded: {args.restore_exclude or 'none'})")
        checkpoints = Checkpoints(folders["ckpt"], graph)
        summaries = Summaries(folders, tf.compat.v1.get_default_graph())
        try:
            with tf.compat.v1.Session(config=config) as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                if resume_from:
                    checkpoints.saver.restore(sess, resume_from)
                    print(f"resuming from {resume_from} at step {sess.run(graph.global_step)}", flush=True)
                else:
                    # A kill at any moment from here on leaves something to resume from.
                    checkpoints.save(sess, 0)
                sess.run(graph.iterator.initializer, graph.feed)
                tf.io.write_graph(sess.graph_def, folders["ckpt"], "graph.pbtxt")
                start = time.time()
                losses = train(args, sess, graph, checkpoints, summaries, validation, stop, clock)
                duration = time.time() - start
                accuracy = graph.accuracy(sess, test)
                global_step = int(sess.run(graph.global_step))
            summaries.scalar(summaries.eval, "test_accuracy", accuracy, global_step)
        finally:
            summaries.close()
    ms_per_step = clock.ms_per_step
    print(f"Final Accuracy accuracy : {accuracy:.4f}")
    print("Final Performance ms/step : " + ("NA" if ms_per_step is None else f"{ms_per_step:.4f}"))
    print(f"Final Training Duration sec : {duration:.2f}", flush=True)
    run_report.write_result(
        args.output_path, model=lenet_device.MODEL, launcher=args.launcher, device=chosen.device, precision=chosen.dtype,
        batch_size=args.batch_size, rank_size=1, steps=len(clock.seconds), warmup_steps=clock.warmup_excluded,
        ms_per_step=ms_per_step, images_per_sec=clock.images_per_sec, accuracy_name="test accuracy",
        accuracy=accuracy, final_loss=losses[-1] if losses else None,
        e2e_seconds=round(time.monotonic() - started, 2), global_step=global_step)
    return Outcome(accuracy, ms_per_step, duration, losses)
