"""What a run reports: the markers the launchers grep (params, per-step loss and time, epoch duration, steady
ms/step and imgs/s, the evaluation line ending 'sparse_categorical_accuracy: <v>'), Keras-style epoch lines,
[progress] lines, and the training and validation metrics as TensorBoard event files."""
import os
import time

import keras
import numpy as np
import tensorflow as tf

import run_report


class StepLogger(keras.callbacks.Callback):
    """Prints params, 'step:<i> ,loss: <f> ,time: <sec>' per step, the epoch's duration and metrics, and at
    the end the steady-state ms/step and imgs/s of this process (rank_batch images per step) by the zoo's
    timing rule (clock, a run_report.StepClock); [progress] lines while it trains. The loop passes each step's
    wall time as logs["seconds"]."""

    def __init__(self, clock, rank_batch, first_step=0):
        super().__init__()
        self.clock, self.rank_batch = clock, rank_batch
        self.step = first_step
        self.last_loss = None  # as printed: the launchers' loss file ends with it

    def on_train_begin(self, logs=None):
        print(f"params: {self.params}", flush=True)
        self.train_start = time.perf_counter()
        self.progress = run_report.Progress(self.params["epochs"] * self.params["steps"])

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.clock.add(logs["seconds"])
        self.step += 1
        self.last_loss = round(float(logs["loss"]), 6)
        print(f"step:{self.step} ,loss: {self.last_loss:.6f} ,time: {logs['seconds']:.6f}", flush=True)
        self.progress.update(self.step, loss=self.last_loss, images_per_sec=self.clock.images_per_sec)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.epoch_start
        metrics = "".join(f" - {key}: {value:.4f}" for key, value in (logs or {}).items())
        print(f"Epoch {epoch + 1}/{self.params['epochs']} - {seconds:.0f}s{metrics}", flush=True)
        print(f"epoch_duration: {seconds:.3f}", flush=True)

    def on_train_end(self, logs=None):
        if self.clock.ms_per_step:
            print(f"ms/step: {self.clock.ms_per_step:.3f}", flush=True)
            print(f"imgs/s: {self.rank_batch * 1000.0 / self.clock.ms_per_step:.2f}", flush=True)
        print(f"train_duration_sec: {time.perf_counter() - self.train_start:.3f}", flush=True)


def timed_evaluation(evaluate, steps):
    """Runs evaluate(steps) -> (loss, accuracy) and prints the line Keras' evaluate prints with verbose=2; the
    launchers take the accuracy from its end."""
    start = time.perf_counter()
    loss, accuracy = evaluate(steps)
    print(f"{steps}/{steps} - {time.perf_counter() - start:.0f}s - loss: {loss:.4f} - "
          f"sparse_categorical_accuracy: {accuracy:.4f}", flush=True)
    return loss, accuracy


SUMMARY_EVERY = 10  # training steps between TensorBoard points: a curve even in one epoch, cheap beside a step


class Summaries(keras.callbacks.Callback):
    """TensorBoard event files in <model_dir>/train and /validation, at global steps. Training, every
    SUMMARY_EVERY steps and at each epoch's end: loss and sparse_categorical_accuracy (means over the steps
    since the last point), learning_rate, and images_per_sec (the clock's steady state, once it has one).
    Validation: loss and sparse_categorical_accuracy of each evaluation. The loop passes each step's own
    loss and accuracy as logs["batch_loss"] / ["batch_accuracy"]; learning_rate(step) is the rate then."""

    def __init__(self, model_dir, clock, learning_rate, first_step=0):
        super().__init__()
        self.writers = {kind: tf.summary.create_file_writer(os.path.join(model_dir, kind))
                        for kind in ("train", "validation")}
        self.clock, self.learning_rate = clock, learning_rate
        self.step, self.window = first_step, []

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.window.append((logs["batch_loss"], logs["batch_accuracy"]))
        if self.step % SUMMARY_EVERY == 0:
            self.write_training()

    def on_epoch_end(self, epoch, logs=None):
        self.write_training()
        validation = {key[4:]: value for key, value in (logs or {}).items() if key.startswith("val_")}
        if validation:
            self.write("validation", validation)
        for writer in self.writers.values():
            writer.flush()

    def write_training(self):
        if not self.window:
            return
        loss, accuracy = np.mean(self.window, axis=0)
        self.window = []
        scalars = {"loss": loss, "sparse_categorical_accuracy": accuracy,
                   "learning_rate": self.learning_rate(self.step)}
        if self.clock.images_per_sec:
            scalars["images_per_sec"] = self.clock.images_per_sec
        self.write("train", scalars)

    def write(self, kind, scalars):
        with self.writers[kind].as_default():
            for name, value in scalars.items():
                tf.summary.scalar(name, float(value), step=self.step)
