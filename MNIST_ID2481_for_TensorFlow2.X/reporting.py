"""What a run prints: the markers the launchers grep (params, per-step loss and time, epoch duration, steady
ms/step and imgs/s, the evaluation line ending 'sparse_categorical_accuracy: <v>'), Keras-style epoch lines,
and the epoch metrics as TensorBoard event files."""
import math
import os
import time

import keras
import tensorflow as tf


class StepLogger(keras.callbacks.Callback):
    """Prints params, 'step:<i> ,loss: <f> ,time: <sec>' per step, the epoch's duration and metrics, and at
    the end the steady-state ms/step and imgs/s of this process (batch_size images per step)."""

    def __init__(self, batch_size, first_step=0):
        super().__init__()
        self.batch_size = batch_size
        self.step = first_step
        self.epochs = []  # per run epoch: list of batch seconds

    def on_train_begin(self, logs=None):
        print(f"params: {self.params}", flush=True)
        self.train_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.epochs.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self.batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])  # waits for the step, so the time below is the step's real duration
        seconds = time.perf_counter() - self.batch_start
        self.epochs[-1].append(seconds)
        self.step += 1
        print(f"step:{self.step} ,loss: {loss:.6f} ,time: {seconds:.6f}", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.epoch_start
        metrics = "".join(f" - {key}: {value:.4f}" for key, value in (logs or {}).items())
        print(f"Epoch {epoch + 1}/{self.params['epochs']} - {seconds:.0f}s{metrics}", flush=True)
        print(f"epoch_duration: {seconds:.3f}", flush=True)

    def on_train_end(self, logs=None):
        seconds = steady_step_seconds(self.epochs)
        if seconds:
            print(f"ms/step: {seconds * 1000:.3f}", flush=True)
            print(f"imgs/s: {self.batch_size / seconds:.2f}", flush=True)
        print(f"train_duration_sec: {time.perf_counter() - self.train_start:.3f}", flush=True)


def steady_step_seconds(epochs):
    """Mean step time without warm-up: drop the first run epoch (graph tracing, cache filling) when there is
    a later one, else the first step; then drop outliers above 3x the median. None without steps."""
    steps = [s for e in epochs[1:] for s in e] if len(epochs) > 1 else epochs[0][1:] if epochs else []
    steps = steps or [s for e in epochs for s in e]
    if not steps:
        return None
    median = sorted(steps)[len(steps) // 2]
    kept = [s for s in steps if s <= 3 * median]
    return math.fsum(kept) / len(kept)


def timed_evaluation(evaluate, steps):
    """Runs evaluate(steps) -> (loss, accuracy) and prints the line Keras' evaluate prints with verbose=2; the
    launchers take the accuracy from its end."""
    start = time.perf_counter()
    loss, accuracy = evaluate(steps)
    print(f"{steps}/{steps} - {time.perf_counter() - start:.0f}s - loss: {loss:.4f} - "
          f"sparse_categorical_accuracy: {accuracy:.4f}", flush=True)
    return loss, accuracy


class EpochSummaries(keras.callbacks.Callback):
    """Epoch metrics as TensorBoard event files in <model_dir>/train and /validation (core tf.summary.write,
    so the tensorboard package is not needed to write them)."""

    def __init__(self, model_dir):
        super().__init__()
        self.writers = {kind: tf.summary.create_file_writer(os.path.join(model_dir, kind))
                        for kind in ("train", "validation")}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            kind, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self.writers[kind].as_default():
                tf.summary.write(f"epoch_{name}", tf.constant(float(value)), step=epoch + 1)
        for writer in self.writers.values():
            writer.flush()
