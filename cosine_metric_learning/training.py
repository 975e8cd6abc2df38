"""The training graph and the loop: one step after another until --number_of_steps, nothing else.

Reporting (reporting.py) and checkpoint saving (checkpoints.py) are handed in; the device decides the
optimizer wrapper and session config (device_config.py). Never lose a run: a fresh run saves step 0 right
after initialisation, SIGTERM / SIGINT save and stop (run_safety.StopSignals), a NaN/Inf loss or weights stop
the run before anything is saved from them, and an image the decoder rejects is named.
"""
import time
from dataclasses import dataclass

import tensorflow as tf

import checkpoints
import device_config
import input_pipeline
import losses
import reporting
import run_report
import run_safety
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
    save_interval_secs: float = 300
    keep_checkpoint_max: int = 5  # at least 2: a kill during a save leaves the one before


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
            regularization = tf.add_n(tf.compat.v1.losses.get_regularization_losses())
            self.total = tf.add(self.losses[hyper.loss_mode], regularization, name="total_loss")
            self.scalars = self.summary_scalars(hyper, regularization, logits, labels)
            optimizer = device_config.wrap_optimizer(tf.compat.v1.train.AdamOptimizer(hyper.learning_rate), chosen)
            with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
                self.train_op = optimizer.minimize(self.total, global_step=self.global_step)
            self.init = tf.compat.v1.global_variables_initializer()
            # The loss of step N is computed before its update: only the weights show a diverged last step.
            self.finite = checkpoints.finite_checks(tf.compat.v1.global_variables())

    def summary_scalars(self, hyper, regularization, logits, labels):
        """The original's TensorBoard scalars under its tag names, for hyper.loss_mode."""
        logged = [name for name in self.losses if name in losses.ALWAYS_LOGGED or name == hyper.loss_mode]
        scalars = {losses.TAGS[name]: self.losses[name] for name in logged}
        scalars.update(total_loss=self.total, weight_loss=regularization,
                       learning_rate=tf.constant(hyper.learning_rate))
        if hyper.loss_mode == "cosine-softmax":
            hits = tf.equal(tf.argmax(logits, 1, output_type=labels.dtype), labels)
            scalars.update({"classification_accuracy": tf.reduce_mean(tf.cast(hits, tf.float32)),
                            "ball/scale": net_def.scale_variable()})
        return scalars

    def fetches(self, with_summary):
        fetch = {"train": self.train_op, "total": self.total, "losses": self.losses}
        return {**fetch, "scalars": self.scalars} if with_summary else fetch


def run_steps(sess, graph, step, number_of_steps, reporter, saver, stop):
    """Trains from global step `step` to number_of_steps (forever when None); returns the last step."""
    while number_of_steps is None or step < number_of_steps:
        step += 1
        begin = time.time()
        out = sess.run(graph.fetches(reporter.wants_summary(step)))
        seconds = time.time() - begin
        run_safety.check_finite(step, loss=out["total"])
        reporter.step_done(step, seconds, out["total"], out["losses"], out.get("scalars"))
        saver.maybe_save(sess, step)
        stop.stop_if_requested(step, lambda: saver.save(sess, step))
    return step


def weights_check(sess, graph):
    """The TimedSaver's last check: the loss of step N is computed before step N's update, so a diverged
    last step shows only in the weights, and a checkpoint of them would poison every resume."""
    def weights_ok(step):
        bad = checkpoints.first_non_finite(sess, graph.finite)
        if bad is not None:
            raise run_safety.TrainingDiverged(f"{bad} holds NaN or Inf after step {step}; lower --learning_rate "
                                              "(no checkpoint written)")
    return weights_ok


def train(data, run_dir, hyper, schedule, chosen, config, record, start=checkpoints.Start()):
    """Builds the graph, resumes, restores or warm-starts (start), trains; the final checkpoint goes to run_dir,
    the run's figures to record (a reporting.Record)."""
    with run_safety.StopSignals() as stop:
        try:
            return train_until_stopped(data, run_dir, hyper, schedule, chosen, config, record, start, stop)
        except tf.errors.InvalidArgumentError as err:
            raise input_pipeline.decode_failure(data.train.paths, err) from None


def train_until_stopped(data, run_dir, hyper, schedule, chosen, config, record, start, stop):
    graph = TrainingGraph(data.train, data.num_classes, hyper, chosen)
    with graph.graph.as_default(), tf.compat.v1.Session(config=config) as sess:
        saver = tf.compat.v1.train.Saver(max_to_keep=schedule.keep_checkpoint_max, save_relative_paths=True)
        timed = checkpoints.TimedSaver(saver, run_dir, schedule.save_interval_secs,
                                       weights_ok=weights_check(sess, graph))
        sess.run(graph.init)
        source, in_run_dir = checkpoints.resume_or_initialise(sess, saver, run_dir, start)
        step = sess.run(graph.global_step)
        if source:
            print(f"resuming from {source} at step {step}")
        if in_run_dir:
            timed.already_saved(step, in_run_dir)
        else:
            timed.save(sess, step)  # in run_dir: a kill at any moment from now on can resume
        stop.stop_if_requested(step, lambda: timed.save(sess, step))
        clock = run_report.StepClock(hyper.batch_size)
        final_loss = None  # None: this process trained no step
        if schedule.number_of_steps is not None and step >= schedule.number_of_steps:
            print(f"global step {step} of {schedule.number_of_steps}: nothing left to train")
        else:
            writer = tf.compat.v1.summary.FileWriter(run_dir, sess.graph)
            reporter = reporting.StepReporter(writer, clock, schedule.log_every, tuple(losses.LOSSES),
                                              schedule.number_of_steps)
            try:
                step = run_steps(sess, graph, step, schedule.number_of_steps, reporter, timed, stop)
                timed.save(sess, step)
            finally:
                writer.close()  # also on a stop or a failure: the events file stays complete
            final_loss = reporter.final_loss
    print("\n".join(reporting.final_lines(clock)))
    record.write_training(chosen, step, clock, final_loss)
    print(f"trained to step {step}; checkpoint in {run_dir}")
    return step
