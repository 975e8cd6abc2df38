"""The AlexNet training loop: epochs of steps, the held-out evaluation after each, the learning-rate rule.

The graph comes from training_graph.py; the log lines from report.py; checkpoints, history.json and the
pictures from run_outputs.py, called once per epoch, at step 0 of a fresh run and when a signal stops it.
"""
import functools
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf

import distributed
import report
import run_outputs
import run_report
import run_safety

LR_EVERY = 10       # epochs: the rule runs after epochs 11, 21, 31, ... (the original's 0-based 10, 20, 30)
LR_MIN_GAIN = 2.0   # points of training accuracy over the mean of the 9 epochs before, else lr / 10


class TrainingError(Exception):
    """Training cannot go on (e.g. --epoch already reached); reported as one line."""


class Plan(NamedTuple):
    epochs: int            # train up to this epoch
    steps: int             # per epoch
    batch_size: int
    held_out_batches: int  # one pass over this worker's held-out images
    log_every: int         # steps between progress lines


def learning_rate_after(epoch, lr, train_acc, min_gain=LR_MIN_GAIN):
    """The lr for the epochs after `epoch`, train_acc holding the training accuracy (%) of epochs 1..epoch.
    As the original: after epochs 11, 21, 31, ... the lr is divided by 10 when that epoch's accuracy exceeds
    the mean of the 9 epochs before it by less than min_gain points."""
    if not run_outputs.milestone(epoch, LR_EVERY):
        return lr
    before = train_acc[epoch - LR_EVERY:epoch - 1]
    return lr / 10 if train_acc[epoch - 1] - sum(before) / len(before) < min_gain else lr


def evaluate(sess, net, batches):
    """(hits, images) over one pass of this worker's held-out images."""
    hits = seen = 0
    progress = run_report.Progress(batches, unit="held-out batch")
    for done in range(1, batches + 1):
        h, n = sess.run(net.held_out)
        hits, seen = hits + int(h), seen + int(n)
        progress.update(done)
    return hits, seen


def train(sess, net, plan, history, outputs, step, watch, stop=None):
    """Trains from global step `step` up to epoch plan.epochs, appending each epoch's figures to history
    (run_outputs.covered at that step: its epochs, and the figures of the current one so far when it was
    stopped in mid-epoch). outputs: run_outputs.RunOutputs (after_epoch, save_point); watch: a watch.Watch
    (step times, TensorBoard events); stop: a run_safety.StopSignals, asked after every step."""
    first = len(history["loss"]) + 1
    into = step - (history["steps"][-1] if history["steps"] else 0)  # steps of epoch `first` already trained
    partial = history["partial"] or {"losses": [], "hits": 0}
    total = max(1, (plan.epochs - first + 1) * plan.steps - into)
    progress = run_report.Progress(total)
    lr = net.learning_rate.get(sess)
    done = 0
    for epoch in range(first, plan.epochs + 1):
        index, losses, hits = (into, list(partial["losses"]), partial["hits"]) if epoch == first else (0, [], 0)
        history["partial"] = None
        # An epoch always gets at least one step: one resumed past its end (a smaller --step) has figures then.
        while index < plan.steps or not losses:
            start = time.time()
            _, loss, cross_entropy, h = sess.run(net.step)
            seconds = time.time() - start
            step, index, done = step + 1, index + 1, done + 1
            watch.clock.add(seconds)  # the very figure the step line prints: the launcher's greps agree with it
            report.step(epoch, index, seconds, plan.batch_size)
            run_safety.check_finite(step, loss=loss)
            losses.append(float(loss))
            hits += int(h)
            if index % plan.log_every == 0 or index >= plan.steps:
                report.progress(done, total, loss)
                watch.log_point(step, loss, cross_entropy, lr, hits / (len(losses) * plan.batch_size))
            progress.update(done, loss=float(loss), images_per_sec=watch.clock.images_per_sec)
            if stop:
                in_epoch = {**history, "partial": {"step": step, "losses": losses, "hits": hits}}
                stop.stop_if_requested(step, functools.partial(outputs.save_point, sess, step, in_epoch))
        loss, train_acc, held_out_hits, held_out = net.averaged(
            sess, [np.mean(losses), 100.0 * hits / (len(losses) * plan.batch_size),
                   *evaluate(sess, net, plan.held_out_batches)])
        history["loss"].append(loss)
        history["train_acc"].append(train_acc)
        history["test_acc"].append(100.0 * held_out_hits / max(held_out, 1.0))
        history["steps"].append(step)
        report.epoch(history["test_acc"][-1], train_acc)
        watch.epoch_end(step, history["test_acc"][-1] / 100.0)
        cut = learning_rate_after(epoch, lr, history["train_acc"])
        if cut != lr:
            net.learning_rate.set(sess, cut)
            lr = cut
            history["lr_changed_at"] = epoch
            report.learning_rate_cut(cut, LR_EVERY - 1, LR_MIN_GAIN)
        outputs.after_epoch(sess, epoch, history)
    return history


def run(net, plan, outputs, session_config, watch, ranks=None, target=""):
    """Opens the session, resumes from outputs (run_outputs.RunOutputs) and trains, timing the steps in watch
    (watch.Watch); returns the history. ranks, target: several workers (distributed.py), which start from
    worker 0's weights. SIGTERM / SIGINT end it after the current step with a checkpoint (run_safety.Stopped)."""
    with tf.compat.v1.Session(target, graph=net.graph, config=session_config) as sess, \
            run_safety.StopSignals() as stop:
        sess.run(net.init)
        history, where = outputs.resume(sess)
        if ranks:
            sess.run(net.broadcast)
        step = int(sess.run(net.global_step))
        fresh = history is None
        history = run_outputs.covered(history or run_outputs.new_history(), step)
        done = len(history["loss"])
        if done >= plan.epochs:
            raise TrainingError(f"--epoch: {outputs.folder} already holds {done} epochs; "
                                "pass a larger --epoch to train on")
        if ranks:
            sync(sess, net, ranks, done)
        if fresh:  # a kill from here on finds a checkpoint to resume from
            outputs.save_point(sess, step, history)
        else:
            print(f"resuming from {where} at step {step}, after epoch {done}")
        print(f"training: {plan.steps} steps per epoch of batch {plan.batch_size}, epochs {done + 1}..{plan.epochs}, "
              f"learning rate {net.learning_rate.get(sess):g}")
        train(sess, net, plan, history, outputs, step, watch, stop)
        report.speed(watch.clock)
        if ranks:
            print(f"worker {ranks.index}: weights digest at end: {distributed.digest(sess.run(net.weights))}")
    return history


def sync(sess, net, ranks, epochs_done):
    """After worker 0's variables (initial or restored) were broadcast to every worker (after initialisation,
    as it must come: the original broadcast before initialising, so its ranks started apart): a check that
    all workers resume after the same epoch, else their step counts, and collective ops, would not match."""
    mean_done = net.averaged(sess, [epochs_done, 0, 0, 0])[0]
    if mean_done != epochs_done:
        raise TrainingError(f"--resume: worker {ranks.index} has {epochs_done} epochs in its history.json, the "
                            f"workers {mean_done:g} on average; resume every worker from the same run")
    print(f"worker {ranks.index}: weights digest after broadcast: {distributed.digest(sess.run(net.weights))}")
