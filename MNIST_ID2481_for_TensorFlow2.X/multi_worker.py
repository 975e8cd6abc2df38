"""Data-parallel training over several processes with tf.distribute.MultiWorkerMirroredStrategy (off Ascend).

The cluster comes from TF_CONFIG (test/train_performance_8p_static_eval.sh writes it). Keras 3 `fit` and
`evaluate` fail under this strategy (keras-team/keras#20585), so training and evaluation are loops around
`strategy.run`; they drive the callbacks of the 1p `fit` path, so the log markers are the same. Gradients
are summed over all replicas by the optimizer's collective all-reduce; the loss of each replica is divided
by the global batch, so the update equals one step on the union of the replicas' batches.
"""
import hashlib
import json
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

import common

SUM = tf.distribute.ReduceOp.SUM


def cluster_from_env():
    """(rank, number of workers) from TF_CONFIG, or None when it is unset (single-process training)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        workers, task = config["cluster"]["worker"], config["task"]
        rank = int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise common.UsageError(f"TF_CONFIG: not a worker cluster description ({err})") from None
    if task.get("type") != "worker" or not 0 <= rank < len(workers):
        raise common.UsageError(f"TF_CONFIG: task {task} is not one of the {len(workers)} workers")
    return rank, len(workers)


def create_strategy(timeout_seconds):
    """A collective all-reduce strategy whose collectives fail after timeout_seconds instead of waiting forever
    for a worker that hangs; a worker that dies is detected sooner by the strategy's peer health check."""
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (tf.errors.UnknownError, tf.errors.InvalidArgumentError) as err:
        address = json.loads(os.environ["TF_CONFIG"])
        address = address["cluster"]["worker"][address["task"]["index"]]
        raise common.UsageError(f"TF_CONFIG: cannot start this worker's server on {address} (port in use?): "
                                f"{first_line(err)}") from None


def first_line(err):
    return " ".join(str(getattr(err, "message", err)).split("\n")[0].split())


def lost_peer_message(err):
    """Names the lost worker when TensorFlow's message says which (/job:worker/replica:0/task:<n>)."""
    task = re.search(r"/job:worker/replica:\d+/task:(\d+)", str(err.message))
    who = f"worker rank {task.group(1)}" if task else "another worker"
    return f"lost contact with {who}: it died or stopped answering ({type(err).__name__} in a collective)"


def weights_digest(model):
    """sha256 of every weight's bytes: equal digests mean bitwise-equal replicas."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def check_same_start(strategy, model, rank):
    """Every rank logs its weights' digest and all must agree (a resume from a model_dir that only some ranks
    see would otherwise train diverged replicas without a word)."""
    digest = weights_digest(model)
    print(f"weights sha256 initial: {digest}", flush=True)
    value = float(int(digest[:12], 16))  # 48 bits: sums over a few replicas stay exact in float64
    total = strategy.reduce(SUM, strategy.run(lambda: tf.constant(value, tf.float64)), axis=None)
    if float(total) != value * strategy.num_replicas_in_sync:
        raise common.UsageError(f"rank {rank}: the workers start from different weights (a --model_dir "
                                "checkpoint that not every worker can read?)")


def _correct(labels, probs):
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1), tf.cast(labels, tf.int64)), tf.float32))


def make_steps(strategy, model, global_batch):
    """tf.functions for one training step and one evaluation step; both return global sums over replicas."""
    optimizer = model.optimizer
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def train_replica(images, labels):
        with tf.GradientTape() as tape:
            probs = model(images, training=True)
            loss = tf.reduce_sum(cross_entropy(labels, probs)) / global_batch
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, _correct(labels, probs)

    def eval_replica(images, labels):
        probs = model(images, training=False)
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        return tf.reduce_sum(cross_entropy(labels, probs)), _correct(labels, probs), count

    def summed_over_replicas(replica_fn):
        @tf.function
        def step(iterator):
            return [strategy.reduce(SUM, v, axis=None) for v in strategy.run(replica_fn, args=next(iterator))]
        return step

    return summed_over_replicas(train_replica), summed_over_replicas(eval_replica)


class Loop:
    """Training and evaluation steps over the distributed train and test datasets of this worker."""

    def __init__(self, strategy, model, train, test, global_batch):
        self.model, self.global_batch = model, global_batch
        self.train_step, self.eval_step = make_steps(strategy, model, global_batch)
        self.train_it = iter(strategy.distribute_datasets_from_function(lambda _: train))
        self.test = strategy.distribute_datasets_from_function(lambda _: test)

    def evaluate(self, steps):
        """(loss, accuracy) over the first `steps` batches of every worker's test shard (a fresh iterator
        each time, as Keras' evaluate, so every evaluation sees the same images)."""
        iterator, totals = iter(self.test), np.zeros(3)
        for _ in range(steps):
            totals += [float(v) for v in self.eval_step(iterator)]
        return totals[0] / totals[2], totals[1] / totals[2]

    def final_evaluation(self, steps):
        """evaluate() with the line Keras' evaluate prints (the launchers grep its accuracy) and the weights'
        final digest, which is the same on every rank when the replicas stayed in sync."""
        start = time.perf_counter()
        loss, accuracy = self.evaluate(steps)
        print(f"{steps}/{steps} - {time.perf_counter() - start:.0f}s - loss: {loss:.4f} - "
              f"sparse_categorical_accuracy: {accuracy:.4f}", flush=True)
        print(f"weights sha256 final: {weights_digest(self.model)}", flush=True)
        return loss, accuracy

    def fit(self, callbacks, epochs, initial_epoch, train_steps, eval_steps, epochs_between_evals):
        """Returns the last epoch's logs (loss, sparse_categorical_accuracy, val_* when it was validated)."""
        callbacks = keras.callbacks.CallbackList(callbacks, model=self.model, verbose=2, epochs=epochs,
                                                 steps=train_steps)
        logs = {}
        callbacks.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            start, totals = time.perf_counter(), np.zeros(2)
            for batch in range(train_steps):
                callbacks.on_train_batch_begin(batch)
                totals += [float(v) for v in self.train_step(self.train_it)]
                # As in `fit`, the logged loss is the running mean of the epoch so far.
                callbacks.on_train_batch_end(batch, {"loss": totals[0] / (batch + 1)})
            logs = {"loss": totals[0] / train_steps,
                    "sparse_categorical_accuracy": totals[1] / (train_steps * self.global_batch)}
            line = f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - start:.0f}s - loss: {logs['loss']:.4f}"
            if (epoch + 1) % epochs_between_evals == 0:
                logs["val_loss"], logs["val_sparse_categorical_accuracy"] = self.evaluate(eval_steps)
                line += (f" - val_loss: {logs['val_loss']:.4f}"
                         f" - val_sparse_categorical_accuracy: {logs['val_sparse_categorical_accuracy']:.4f}")
            print(line, flush=True)
            callbacks.on_epoch_end(epoch, logs)
        callbacks.on_train_end(logs)
        return logs
