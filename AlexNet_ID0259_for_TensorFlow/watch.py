"""What a training run measures while it trains, besides its log lines (report.py): the step times
(run_report.StepClock, the zoo's one timing rule), the loss the launcher's loss file ends with, and the
TensorBoard events under the output folder: train/ (loss, cross_entropy, learning_rate, accuracy and
images_per_sec at every `progress` line) and validation/ (held-out accuracy after every epoch), numbered by
global step. With several workers only worker 0 writes events; every worker times its steps."""
import os

import tensorflow as tf

import run_report

TRAIN, VALIDATION = "train", "validation"


class Watch:
    def __init__(self, folder, global_batch, events=True):
        self.clock = run_report.StepClock(global_batch)
        self.folder = folder
        self.events = events
        self.last_loss = None  # as the last `progress` line printed it
        self._writers = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for writer in self._writers.values():
            writer.close()

    def log_point(self, step, loss, cross_entropy, learning_rate, accuracy):
        """At a `progress` line: loss (with weight decay) and cross_entropy of the step, the running training
        accuracy of the epoch (0..1)."""
        self.last_loss = float(f"{loss:.6f}")
        self._scalars(TRAIN, step, loss=loss, cross_entropy=cross_entropy, learning_rate=learning_rate,
                      accuracy=accuracy, images_per_sec=self.clock.images_per_sec)

    def epoch_end(self, step, held_out_accuracy):
        """held_out_accuracy: 0..1. The events so far reach the disk here, not only every 2 minutes."""
        self._scalars(VALIDATION, step, accuracy=held_out_accuracy)
        for writer in self._writers.values():
            writer.flush()

    def _scalars(self, run, step, **values):
        if not self.events:
            return
        if run not in self._writers:
            with tf.Graph().as_default():  # the v1 writer refuses to be made while eager execution is on
                self._writers[run] = tf.compat.v1.summary.FileWriter(os.path.join(self.folder, run))
        self._writers[run].add_summary(tf.compat.v1.Summary(value=[
            tf.compat.v1.Summary.Value(tag=tag, simple_value=float(value))
            for tag, value in values.items() if value is not None]), step)
