"""What a run keeps in its output folder (--output_path) and how it resumes from it.

model/model.ckpt (every epoch, the resume point), model_epoch<N>/ (every SNAPSHOT_EVERY epochs), loss.txt
(mean training loss per epoch), acc.png, loss.png, first_kernel_visualization/epoch_<N>.png, and
history.json: the per-epoch figures and the epoch of the last learning-rate cut. With several workers, worker
0 alone writes all but history.json, which every worker keeps (the same on all: its figures are global).
"""
import json
import os

import tensorflow as tf

import plots

SNAPSHOT_EVERY = 10  # epochs


def new_history():
    return {"loss": [], "train_acc": [], "test_acc": [], "lr_changed_at": 0}


def load_history(path):
    with open(path) as handle:
        return json.load(handle)


def save_history(path, history):
    """Atomically: a run killed while writing keeps the previous history.json."""
    with open(path + ".tmp", "w") as handle:
        json.dump(history, handle)
    os.replace(path + ".tmp", path)


class RunOutputs:
    def __init__(self, folder, graph, conv1, chief=True, snapshot_every=SNAPSHOT_EVERY):
        """graph: the training graph, complete (its savers cover every variable); conv1: its conv1 kernels."""
        self.folder = folder
        self.chief = chief
        self.conv1 = conv1
        self.snapshot_every = snapshot_every
        self.history_path = os.path.join(folder, "history.json")
        with graph.as_default():
            self._latest = tf.compat.v1.train.Saver(max_to_keep=1)
            self._snapshots = tf.compat.v1.train.Saver(max_to_keep=None)

    def resume(self, sess):
        """The saved history, after restoring the checkpoint that goes with it (worker 0: its own; the others
        get worker 0's weights by broadcast); a new history when the folder holds no run."""
        latest = tf.compat.v1.train.latest_checkpoint(os.path.join(self.folder, "model"))  # None but on worker 0
        if not (os.path.isfile(self.history_path) and (latest or not self.chief)):
            return new_history()
        if latest:
            self._latest.restore(sess, latest)
        history = load_history(self.history_path)
        print(f"resuming from {latest or 'worker 0'} after epoch {len(history['loss'])}")
        return history

    def after_epoch(self, sess, epoch, history):
        if self.chief:
            self._latest.save(sess, os.path.join(self.folder, "model", "model.ckpt"))
            if epoch % self.snapshot_every == 0:
                self._snapshots.save(sess, os.path.join(self.folder, f"model_epoch{epoch}", "model.ckpt"))
            with open(os.path.join(self.folder, "loss.txt"), "w") as handle:
                handle.writelines(f"{v:.6f}\n" for v in history["loss"])
            plots.save_curves(self.folder, history)
            plots.save_kernels(self.folder, epoch, sess.run(self.conv1))
        # Written after the checkpoint: a run killed in between resumes from the older history, never from a
        # history that claims an epoch the checkpoint does not hold.
        save_history(self.history_path, history)
