"""The training graph and the loop: one step after another until --number_of_steps, nothing else.

Reporting (reporting.py) and checkpoint saving (checkpoints.py) are handed in; the device decides the
optimizer wrapper and session config (device_config.py).
"""
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

import checkpoints
import device_config
import input_pipeline
import losses
import reporting
from nets.deep_sort import network_definition as net_def


@dataclass(frozen=True)
class Hyper:
    batch_size: int
    learning_rate: float
    loss_mode: str  # a key of losses.LOSSES
    seed: int = None  # batch sampling, flips and initial weights; None: random


@dataclass(frozen=True)
class Schedule:
    number_of_steps: int = None  # None: train until stopped
    log_every: int = 10
    save_interval_secs: float = 600
    keep_checkpoint_max: int = 5


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: a training failure (exit 1), not a mistake in the user's input."""

    def __init__(self, value, step):
        super().__init__(f"loss is {value} at step {step}; lower --learning_rate")


class TrainingGraph:
    """The training graph of one run: train op, the minimised total and every loss, summaries."""

    def __init__(self, train_split, num_classes, hyper, chosen):
        self.graph = tf.Graph()
        with self.graph.as_default():
            if hyper.seed is not None:
                tf.compat.v1.set_random_seed(hyper.seed)
            self.global_step = tf.compat.v1.train.get_or_create_global_step()
            images, labels = tf.compat.v1.data.make_one_shot_iterator(
                input_pipeline.training_dataset(train_split, hyper.batch_size, hyper.seed)).get_next()
            features, logits = net_def.create_network(images, True, num_classes=num_classes,
                                                      global_step=self.global_step)
            self.losses = {name: loss(features, logits, labels) for name, loss in losses.LOSSES.items()}
            for name, value in self.losses.items():
                tf.compat.v1.summary.scalar(f"losses/{name}", value)
            regularization = tf.add_n(tf.compat.v1.losses.get_regularization_losses())
            self.total = tf.add(self.losses[hyper.loss_mode], regularization, name="total_loss")
            tf.compat.v1.summary.scalar("losses/total", self.total)
            optimizer = device_config.wrap_optimizer(tf.compat.v1.train.AdamOptimizer(hyper.learning_rate), chosen)
            with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
                self.train_op = optimizer.minimize(self.total, global_step=self.global_step)
            self.summaries = tf.compat.v1.summary.merge_all()
            self.init = tf.compat.v1.global_variables_initializer()

    def fetches(self, with_summary):
        fetch = {"train": self.train_op, "total": self.total, "losses": self.losses}
        return {**fetch, "summary": self.summaries} if with_summary else fetch


def run_steps(sess, graph, step, number_of_steps, reporter, throughput, saver):
    """Trains from global step `step` to number_of_steps (forever when None); returns the last step."""
    while number_of_steps is None or step < number_of_steps:
        step += 1
        begin = time.time()
        out = sess.run(graph.fetches(reporter.wants_summary(step)))
        seconds = time.time() - begin
        throughput.add(seconds)
        if not np.isfinite(out["total"]):
            raise TrainingDiverged(out["total"], step)
        reporter.step_done(step, seconds, out["total"], out["losses"], out.get("summary"))
        saver.maybe_save(sess, step)
    return step


def train(data, run_dir, hyper, schedule, chosen, config, restore_path=None):
    """Builds the graph, resumes or warm-starts, trains; the final checkpoint goes to run_dir."""
    graph = TrainingGraph(data.train, data.num_classes, hyper, chosen)
    with graph.graph.as_default(), tf.compat.v1.Session(config=config) as sess:
        saver = tf.compat.v1.train.Saver(max_to_keep=schedule.keep_checkpoint_max)
        sess.run(graph.init)
        checkpoints.restore_or_initialise(sess, saver, run_dir, restore_path)
        step = sess.run(graph.global_step)
        if schedule.number_of_steps is not None and step >= schedule.number_of_steps:
            print(f"global step {step} of {schedule.number_of_steps}: nothing left to train")
            print("Final Performance images/sec : NA")
            return step
        writer = tf.compat.v1.summary.FileWriter(run_dir, sess.graph)
        reporter = reporting.StepReporter(writer, hyper.batch_size, schedule.log_every, tuple(losses.LOSSES))
        throughput = reporting.Throughput(hyper.batch_size,
                                          reporting.warmup_steps(schedule.number_of_steps, step))
        timed = checkpoints.TimedSaver(saver, run_dir, schedule.save_interval_secs)
        try:
            step = run_steps(sess, graph, step, schedule.number_of_steps, reporter, throughput, timed)
            timed.save(sess, step)
        finally:
            writer.close()
    for line in throughput.final_lines():
        print(line)
    print(f"trained to step {step}; checkpoint in {run_dir}")
    return step

