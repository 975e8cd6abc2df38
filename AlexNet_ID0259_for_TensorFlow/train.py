"""The AlexNet training loop: TF1 graph, Momentum 0.9, per-epoch validation, checkpoints and side outputs.

Output folder (--output_path): model/model.ckpt (every epoch, resumed from), model_epoch<N>/ (every 10
epochs), history.json, loss.txt (mean training loss per epoch), acc.png, loss.png and
first_kernel_visualization/epoch_<N>.png (the 96 conv1 kernels).
"""
import json
import math
import os
import time

import numpy as np
import tensorflow as tf
from PIL import Image

import alexnet_device
import data_loader
import distributed
import model

MOMENTUM = 0.9
LR_WINDOW = 10        # epochs
LR_MIN_GAIN = 2.0     # points of training accuracy over the window, else lr / 10
SNAPSHOT_EVERY = 10   # epochs


class TrainingError(Exception):
    """Training cannot go on (e.g. the loss diverged); reported as one line."""


def build_graph(args, train_entries, val_entries, crops, cache, ranks=None):
    """ranks (distributed.py): several workers, each on its share of the training and held-out photos."""
    graph = tf.Graph()
    with graph.as_default():
        # Each worker draws its own dropout masks and augmentations; the broadcast equalises the initial weights.
        tf.compat.v1.set_random_seed(args.seed + args.mul_device_id)
        train_ds = data_loader.train_dataset(train_entries, args.batch_size, crops, cache, args.seed,
                                             args.mul_rank_size, args.mul_device_id)
        val_ds = data_loader.eval_dataset(val_entries[args.mul_device_id::args.mul_rank_size], args.batch_size,
                                          crops, cache)
        train_it = tf.compat.v1.data.make_initializable_iterator(train_ds)
        val_it = tf.compat.v1.data.make_initializable_iterator(val_ds)
        images, labels = train_it.get_next()
        logits = model.inference(model.network_input(images, args.pixels), model.KEEP_PROB,
                                 alexnet_device.dropout_op(), args.init)
        xent = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        l2 = tf.add_n([tf.nn.l2_loss(w) for w in model.weight_tensors()])
        loss = xent + model.WEIGHT_DECAY * l2
        lr = tf.compat.v1.get_variable("learning_rate", initializer=float(args.learning_rate * args.mul_rank_size),
                                       trainable=False)
        new_lr = tf.compat.v1.placeholder(tf.float32, [])
        optimizer = tf.compat.v1.train.MomentumOptimizer(lr, MOMENTUM)
        optimizer = ranks.optimizer(optimizer) if ranks else optimizer
        train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_or_create_global_step())
        hits = lambda out, y: tf.reduce_sum(tf.cast(tf.equal(tf.argmax(out, 1, output_type=tf.int32), y), tf.int32))
        val_images, val_labels = val_it.get_next()
        val_logits = model.inference(model.network_input(val_images, args.pixels))
        # An epoch's figures on this worker (mean loss, training accuracy, held-out hits and count) and their
        # mean over the workers: the global figures, the same on every worker (so is the lr rule's decision).
        figures = tf.compat.v1.placeholder(tf.float32, [4])
        ops = dict(
            train=train_op, loss=loss, hits=hits(logits, labels), lr=lr, set_lr=lr.assign(new_lr), new_lr=new_lr,
            val_hits=hits(val_logits, val_labels), val_count=tf.size(val_labels),
            init=[tf.compat.v1.global_variables_initializer(), train_it.initializer, val_it.initializer],
            iterators=[train_it.initializer, val_it.initializer],
            figures=figures, global_figures=ranks.mean(figures) if ranks else figures,
            broadcast=ranks.broadcast(tf.compat.v1.global_variables()) if ranks else tf.no_op(),
            weights=tf.compat.v1.trainable_variables(),
            conv1=[v for v in tf.compat.v1.trainable_variables() if v.name.startswith("conv1/weights")],
            saver=tf.compat.v1.train.Saver(max_to_keep=1), snapshot=tf.compat.v1.train.Saver(max_to_keep=None))
    return graph, ops


def evaluate(sess, ops, count, batch_size):
    """(hits, images) over this worker's held-out photos."""
    hits = seen = 0
    for _ in range(math.ceil(count / batch_size)):
        h, n = sess.run([ops["val_hits"], ops["val_count"]])
        hits, seen = hits + h, seen + n
    return hits, seen


def save_curves(out, history):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[Warning] matplotlib is not installed; acc.png and loss.png are not written")
        return
    epochs = range(1, len(history["loss"]) + 1)
    for name, series, ylabel in (("acc", (("train", history["train_acc"]), ("held-out", history["test_acc"])),
                                  "accuracy (%)"), ("loss", (("train", history["loss"]),), "loss")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, values in series:
            ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{name}.png"))
        plt.close(fig)


def save_kernels(out, epoch, kernels):
    """The 96 conv1 kernels (2 towers x 48) as an 8x12 grid, each scaled to 0..255, shown in RGB."""
    w = np.concatenate(kernels, axis=3)[:, :, ::-1, :]  # BGR input channels -> RGB for display
    w = w - w.min(axis=(0, 1, 2), keepdims=True)
    w = (255 * w / np.maximum(w.max(axis=(0, 1, 2), keepdims=True), 1e-12)).astype(np.uint8)
    k, pad, cols = w.shape[0], 1, 12
    rows = math.ceil(w.shape[3] / cols)
    grid = np.full((rows * (k + pad) + pad, cols * (k + pad) + pad, 3), 255, np.uint8)
    for i in range(w.shape[3]):
        r, c = divmod(i, cols)
        grid[pad + r * (k + pad):pad + r * (k + pad) + k, pad + c * (k + pad):pad + c * (k + pad) + k] = w[..., i]
    folder = os.path.join(out, "first_kernel_visualization")
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST).save(
        os.path.join(folder, f"epoch_{epoch}.png"))


def train(args, train_entries, val_entries, crops, cache, session_config, ranks=None, target=""):
    """ranks, target: several workers (distributed.py); worker 0 alone writes checkpoints, curves and images,
    every worker its history.json (the same on all, as every figure in it is global), its resume point."""
    chief = ranks is None or ranks.is_chief
    out = args.output_path
    ckpt_dir = os.path.join(out, "model")
    history_path = os.path.join(out, "history.json")
    per_rank = len(train_entries[args.mul_device_id::args.mul_rank_size])
    steps = args.step or per_rank // args.batch_size
    val_count = len(val_entries[args.mul_device_id::args.mul_rank_size])
    graph, ops = build_graph(args, train_entries, val_entries, crops, cache, ranks)
    history = {"loss": [], "train_acc": [], "test_acc": [], "lr_changed_at": 0}
    with tf.compat.v1.Session(target, graph=graph, config=session_config) as sess:
        sess.run(ops["init"])
        latest = tf.compat.v1.train.latest_checkpoint(ckpt_dir)  # None but on worker 0
        if os.path.isfile(history_path) and (latest or not chief):
            if latest:
                ops["saver"].restore(sess, latest)
            with open(history_path) as handle:
                history = json.load(handle)
            print(f"resuming from {latest or 'worker 0'} after epoch {len(history['loss'])}")
            if len(history["loss"]) >= args.epoch:
                raise TrainingError(f"--epoch: {out} already holds {len(history['loss'])} epochs; "
                                    "pass a larger --epoch to train on")
        if ranks:
            sync(sess, ops, ranks, len(history["loss"]))
        print(f"training: {per_rank} images on this rank, {steps} steps per epoch of batch {args.batch_size}, "
              f"epochs {len(history['loss']) + 1}..{args.epoch}, learning rate {sess.run(ops['lr']):g}")
        total = max(1, (args.epoch - len(history["loss"])) * steps)
        done = 0
        for epoch in range(len(history["loss"]) + 1, args.epoch + 1):
            losses, hits = [], 0
            for step in range(1, steps + 1):
                start = time.time()
                _, loss, h = sess.run([ops["train"], ops["loss"], ops["hits"]])
                step_time = time.time() - start
                done += 1
                if not math.isfinite(loss):
                    raise TrainingError(f"training diverged: loss is {loss} at epoch {epoch} step {step}; "
                                        "try a smaller --learning_rate")
                losses.append(float(loss))
                hits += int(h)
                print(f"epoch {epoch} step: {step} step_time {step_time:.4f} FPS {args.batch_size / step_time:.2f}")
                if step % args.log_every == 0 or step == steps:
                    print(f"progress : {100.0 * done / total:.2f}%  loss :{loss:.6f}", flush=True)
            figures = [np.mean(losses), 100.0 * hits / (steps * args.batch_size),
                       *evaluate(sess, ops, val_count, args.batch_size)]
            if ranks:
                figures = sess.run(ops["global_figures"], {ops["figures"]: figures})
            history["loss"].append(float(figures[0]))
            history["train_acc"].append(float(figures[1]))
            history["test_acc"].append(100.0 * float(figures[2]) / max(float(figures[3]), 1.0))
            print(f"test accuracy {history['test_acc'][-1]:.2f}")
            print(f"train accuracy {history['train_acc'][-1]:.2f}", flush=True)
            since = epoch - history["lr_changed_at"]
            if since > LR_WINDOW and history["train_acc"][-1] - history["train_acc"][-LR_WINDOW - 1] < LR_MIN_GAIN:
                lr = sess.run(ops["lr"]) / 10
                sess.run(ops["set_lr"], {ops["new_lr"]: lr})
                history["lr_changed_at"] = epoch
                print(f"learning rate -> {lr:g} (training accuracy rose less than {LR_MIN_GAIN} points "
                      f"in {LR_WINDOW} epochs)")
            if chief:
                ops["saver"].save(sess, os.path.join(ckpt_dir, "model.ckpt"))
                if epoch % SNAPSHOT_EVERY == 0:
                    ops["snapshot"].save(sess, os.path.join(out, f"model_epoch{epoch}", "model.ckpt"))
                with open(os.path.join(out, "loss.txt"), "w") as handle:
                    handle.writelines(f"{v:.6f}\n" for v in history["loss"])
                save_curves(out, history)
                save_kernels(out, epoch, sess.run(ops["conv1"]))
            # Written after the checkpoint: a run killed in between resumes from the older history, never
            # from a history that claims an epoch the checkpoint does not hold.
            with open(history_path + ".tmp", "w") as handle:
                json.dump(history, handle)
            os.replace(history_path + ".tmp", history_path)
        if ranks:
            print(f"worker {ranks.index}: weights digest at end: {distributed.digest(sess.run(ops['weights']))}")
    return history


def sync(sess, ops, ranks, epochs_done):
    """Worker 0's variables (initial or restored) to every worker, after initialisation as the broadcast
    must come (the original broadcast before initialising, so its ranks started apart); then a check that
    all workers resume after the same epoch, else their step counts, and collective ops, would not match."""
    sess.run(ops["broadcast"])
    mean_done = sess.run(ops["global_figures"], {ops["figures"]: [epochs_done, 0, 0, 0]})[0]
    if mean_done != epochs_done:
        raise TrainingError(f"--resume: worker {ranks.index} has {epochs_done} epochs in its history.json, the "
                            f"workers {mean_done:g} on average; resume every worker from the same run")
    print(f"worker {ranks.index}: weights digest after broadcast: {distributed.digest(sess.run(ops['weights']))}")
