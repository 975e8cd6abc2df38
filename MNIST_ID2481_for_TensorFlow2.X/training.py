"""The training recipe (SGD, the learning-rate rule) and the one training loop, for every strategy.

The loop runs `strategy.run` steps instead of Keras `fit`, because Keras 3 `fit` and `evaluate` fail under
MultiWorkerMirroredStrategy (keras-team/keras#20585); one loop serves one process and a cluster alike. It drives
Keras callbacks, which do the logging and the checkpoints. Each replica's loss is divided by the global batch
and the strategy sums the gradients over all replicas, so a step equals one step on the union of the
replicas' batches (with one replica: the mean loss of its batch, as `fit`).

Run safety in the loop: the summed loss is checked every step and the weights before every checkpoint (no
NaN is ever saved); a SIGTERM / SIGINT stops every worker after the same step, because the stop request
travels with the step's own all-reduce.
"""
import math
import signal
import time

import keras
import numpy as np
import tensorflow as tf

import run_report
import run_safety

DECAY_STEPS = 100000
DECAY_RATE = 0.96
SUM = tf.distribute.ReduceOp.SUM


def learning_rate(step, initial, decay_steps=DECAY_STEPS, decay_rate=DECAY_RATE):
    """The original's rate after `step` updates: smooth exponential decay, x0.96 per 100,000 steps. Works on
    Python numbers and on float tensors."""
    return initial * decay_rate ** (step / decay_steps)


class DecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, initial):
        self.initial = initial

    def __call__(self, step):
        return learning_rate(tf.cast(step, tf.float32), self.initial)

    def get_config(self):
        return {"initial": self.initial}


def create_optimizer(initial_rate, momentum):
    return keras.optimizers.SGD(learning_rate=DecaySchedule(initial_rate), momentum=momentum)


def _correct(labels, probs):
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1), tf.cast(labels, tf.int64)), tf.float32))


def make_steps(strategy, model, optimizer, global_batch):
    """tf.functions for one training step and one evaluation step; both return global sums over replicas. The
    training step takes a stop flag (0 or 1) and returns [loss, correct, flag], summed in one all-reduce: a
    positive flag means some worker was asked to stop."""
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def train_replica(images, labels, stop_flag):
        with tf.GradientTape() as tape:
            probs = model(images, training=True)
            loss = tf.reduce_sum(cross_entropy(labels, probs)) / global_batch
            scaled = optimizer.scale_loss(loss)  # loss scaling under mixed_float16; the loss itself otherwise
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return tf.stack([tf.cast(loss, tf.float32), _correct(labels, probs), stop_flag])

    def eval_replica(images, labels):
        probs = model(images, training=False)
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        return tf.reduce_sum(cross_entropy(labels, probs)), _correct(labels, probs), count

    @tf.function
    def train_step(iterator, stop_flag):
        return strategy.reduce(SUM, strategy.run(train_replica, args=(*next(iterator), stop_flag)), axis=None)

    @tf.function
    def eval_step(iterator):
        return [strategy.reduce(SUM, v, axis=None) for v in strategy.run(eval_replica, args=next(iterator))]

    return train_step, eval_step


class TrainingLoop:
    """Training and evaluation steps of `model` over this process's batched train and test datasets (one
    batch per local replica per step); global_batch is the number of images of one step over all replicas."""

    def __init__(self, strategy, model, optimizer, train, test, global_batch):
        self.model, self.global_batch = model, global_batch
        self.train_step, self.eval_step = make_steps(strategy, model, optimizer, global_batch)
        self.train_it = iter(strategy.distribute_datasets_from_function(lambda _: train))
        self.test = strategy.distribute_datasets_from_function(lambda _: test)

    def evaluate(self, steps):
        """(loss, accuracy) over the first `steps` batches of the test set (a fresh iterator each time, as
        Keras' evaluate, so every evaluation sees the same images)."""
        iterator, totals = iter(self.test), np.zeros(3)
        progress = run_report.Progress(steps, unit="eval step")
        for done in range(1, steps + 1):
            totals += [float(v) for v in self.eval_step(iterator)]
            progress.update(done, loss=totals[0] / totals[2])
        return float(totals[0] / totals[2]), float(totals[1] / totals[2])

    def check_weights(self, step):
        """TrainingDiverged when a weight is NaN or infinite: the loss of a step is computed before its update,
        so only this check proves that what a checkpoint would hold is finite."""
        total = math.fsum(float(np.sum(w, dtype=np.float64)) for w in self.model.get_weights())
        run_safety.check_finite(step, **{"a weight": total})

    def fit(self, callbacks, epochs, first_step, train_steps, eval_steps, epochs_between_evals, stop=None,
            save=None):
        """Trains from global step first_step (a resume may start mid-epoch) to the end of epoch `epochs`,
        validating every epochs_between_evals-th epoch; returns the last epoch's logs (loss,
        sparse_categorical_accuracy over the steps run here, and val_* when that epoch was validated). Each
        step's batch logs: loss (the epoch's running mean, as `fit`), batch_loss, batch_accuracy and seconds
        (the step's wall time, ending when its results reached the host).
        stop: a run_safety.StopSignals; when any worker was signalled, all stop after the same step, call
        save(step) (returns the checkpoint's path) and raise run_safety.Stopped."""
        callbacks = keras.callbacks.CallbackList(callbacks, model=self.model, verbose=2, epochs=epochs,
                                                 steps=train_steps)
        logs, step = {}, first_step
        callbacks.on_train_begin()
        for epoch in range(first_step // train_steps, epochs):
            callbacks.on_epoch_begin(epoch)
            totals, done = np.zeros(2), 0
            for batch in range(step - epoch * train_steps, train_steps):
                callbacks.on_train_batch_begin(batch)
                start = time.perf_counter()
                flag = tf.constant(float(stop is not None and stop.requested))
                # One copy to the host: iterating the tensor would run an eager slice per value.
                loss, correct, stopping = self.train_step(self.train_it, flag).numpy().tolist()
                seconds = time.perf_counter() - start
                step, done = step + 1, done + 1
                run_safety.check_finite(step, loss=loss)
                totals += [loss, correct]
                callbacks.on_train_batch_end(batch, {"loss": totals[0] / done, "batch_loss": loss,
                                                     "batch_accuracy": correct / self.global_batch,
                                                     "seconds": seconds})
                if stopping:
                    self.stop(stop, step, save)
            logs = {"loss": float(totals[0] / done),
                    "sparse_categorical_accuracy": float(totals[1] / (done * self.global_batch))}
            if (epoch + 1) % epochs_between_evals == 0:
                logs["val_loss"], logs["val_sparse_categorical_accuracy"] = self.evaluate(eval_steps)
            self.check_weights(step)
            callbacks.on_epoch_end(epoch, logs)
        callbacks.on_train_end(logs)
        return logs

    def stop(self, stop, step, save):
        """A worker that was not signalled itself stops as if by SIGTERM (its peer's launcher was stopped)."""
        if not stop.requested:
            stop.signum = signal.SIGTERM
        self.check_weights(step)
        stop.stop_if_requested(step, lambda: save(step))
