"""What a run keeps in its output folder (--output_path) and how it resumes from it.

model/model.ckpt-<step> (numbered by global step: at step 0 of a fresh run, after every epoch and when a
signal stops the run; the last KEEP are kept), model_epoch<N>/ (after epochs 11, 21, 31, ...), loss.txt (mean
training loss per epoch), acc.png, loss.png, first_kernel_visualization/epoch_<N>.png, and history.json: the
per-epoch figures, the global step at the end of each epoch, the epoch of the last learning-rate cut and, after
a stop in mid-epoch, the figures of that epoch so far. With several workers, worker 0 alone writes all but
history.json, which every worker keeps (its epoch figures are global, the same on all).

history.json is written BEFORE each checkpoint and says at which step each epoch ended: whichever checkpoint a
resume restores (the newest may be damaged by a kill during its save), the epochs it does not hold are cut
from the history (`covered`), so figures and weights always agree.
"""
import glob
import json
import os

import tensorflow as tf

import plots
import run_safety

SNAPSHOT_EVERY = 10  # epochs: model_epoch11, 21, 31, ... as the original (beside its lr rule)
KEEP = 2             # numbered checkpoints: a kill during a save leaves the one before it
PREFIX = "model.ckpt"
MODEL_FOLDER = "model"           # the numbered checkpoints
SNAPSHOT_FOLDER = "model_epoch"  # + the epoch: the kept snapshots


def checkpoint_folders(folder):
    """The folders of the output folder `folder` that hold checkpoints: model/ and the model_epoch<N>/ snapshots."""
    snapshots = glob.glob(os.path.join(glob.escape(folder), SNAPSHOT_FOLDER + "*"))
    return [os.path.join(folder, MODEL_FOLDER), *sorted(snapshots)]


def milestone(epoch, every=SNAPSHOT_EVERY):
    """Epochs 11, 21, 31, ... (1-based; every=10): where the original kept a model_epoch<N> snapshot and
    applied its learning-rate rule (its 0-based epochs 10, 20, 30)."""
    return epoch > every and epoch % every == 1


def new_history():
    return {"loss": [], "train_acc": [], "test_acc": [], "steps": [], "lr_changed_at": 0, "partial": None}


def load_history(path):
    """The history in path; RunSafetyError when it is missing or unreadable (never replaced silently: it
    belongs to the checkpoints beside it)."""
    try:
        with open(path) as handle:
            history = json.load(handle)
        if not all(isinstance(history.get(key), list) for key in ("loss", "train_acc", "test_acc", "steps")):
            raise ValueError("not a history of this model")
    except FileNotFoundError:
        raise run_safety.RunSafetyError(f"{path} is missing; it goes with the checkpoints in "
                                        f"{os.path.join(os.path.dirname(path), 'model')}"
                                        ": put it back, or move the folder aside to start afresh") from None
    except (OSError, ValueError, AttributeError) as err:
        raise run_safety.RunSafetyError(run_safety.short(
            f"{path} is unreadable ({err}); repair it, or move the folder aside to start afresh")) from None
    history.setdefault("partial", None)
    return history


def save_history(path, history):
    """Atomically: a run killed while writing keeps the previous history.json."""
    with open(path + ".tmp", "w") as handle:
        json.dump(history, handle)
    os.replace(path + ".tmp", path)


def covered(history, step, notice=print):
    """The part of history that the weights at global step `step` hold: later epochs are cut (with a notice),
    and the mid-epoch figures are kept only when they were saved at this very step."""
    kept = sum(1 for end in history["steps"] if end <= step)
    if kept < len(history["loss"]):
        notice(f"[Warning] history.json has {len(history['loss'])} epochs, the checkpoint at step {step} holds "
               f"{kept}; epochs {kept + 1}.. are trained again")
        history = {**history, **{key: history[key][:kept] for key in ("loss", "train_acc", "test_acc", "steps")}}
        # The cut epoch's learning-rate change may be lost with it; the restored lr variable is what counts.
        history["lr_changed_at"] = min(history["lr_changed_at"], kept)
    partial = history.get("partial")
    return {**history, "partial": partial if partial and partial["step"] == step else None}


class RunOutputs:
    def __init__(self, folder, graph, conv1, chief=True, snapshot_every=SNAPSHOT_EVERY, settings=None):
        """graph: the training graph, complete (its savers cover every variable); conv1: its conv1 kernels;
        settings: flags that whoever uses the checkpoints needs (--pixels for export and predict), kept in
        history.json."""
        self.settings = settings or {}
        self.folder = folder
        self.model_dir = os.path.join(folder, MODEL_FOLDER)
        self.chief = chief
        self.conv1 = conv1
        self.snapshot_every = snapshot_every
        self.history_path = os.path.join(folder, "history.json")
        with graph.as_default():
            variables = tf.compat.v1.global_variables()
            self._shapes = {v.op.name: v.shape.as_list() for v in variables}
            # Weights and momentum: a step that made any of them NaN must not reach a checkpoint.
            self._finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables
                                          if v.dtype.base_dtype.is_floating])
            self._latest = tf.compat.v1.train.Saver(max_to_keep=KEEP, save_relative_paths=True)
            self._snapshots = tf.compat.v1.train.Saver(max_to_keep=None, save_relative_paths=True)

    def resume(self, sess):
        """(history, where) after restoring the newest checkpoint that loads (worker 0; the others get its
        weights by broadcast and keep their own history.json), or (None, None) when the folder holds no run."""
        if not self.chief:
            if not os.path.isfile(self.history_path):
                return None, None
            return load_history(self.history_path), "worker 0's checkpoint"
        prefix = run_safety.resume_point(self.model_dir)
        if prefix is None:
            self._keep_aside_old_history()
            return None, None
        run_safety.check_variables(prefix, self._shapes, "this AlexNet")
        history = load_history(self.history_path)
        # The saver deletes beyond KEEP only the checkpoints it knows of: those of the earlier runs too.
        self._latest.recover_last_checkpoints(
            [p for n, p in sorted(run_safety.numbered_checkpoints(self.model_dir)) if n <= _number(prefix)])
        self._latest.restore(sess, prefix)
        return history, prefix

    def _keep_aside_old_history(self):
        """A history.json with epochs but no checkpoint to go with it (model/ removed): kept as
        history.json.old rather than overwritten by the fresh run."""
        try:
            with open(self.history_path) as handle:
                keep = bool(json.load(handle).get("loss"))
        except FileNotFoundError:
            return
        except (OSError, ValueError, AttributeError):
            keep = True  # unreadable: not ours to judge
        if keep:
            os.replace(self.history_path, self.history_path + ".old")
            print(f"[Warning] {self.history_path} has no checkpoint in {self.model_dir}: a fresh run starts; "
                  "the old history is kept as history.json.old")

    def save_point(self, sess, step, history):
        """history.json, then (worker 0) checkpoint model/model.ckpt-<step>; its path (other workers: the
        history's). TrainingDiverged, and nothing written, when a variable is not finite."""
        if not sess.run(self._finite):
            raise run_safety.TrainingDiverged(f"weights are not finite after step {step}; lower --learning_rate")
        save_history(self.history_path, {**history, **self.settings})
        if not self.chief:
            return self.history_path
        return self._latest.save(sess, os.path.join(self.model_dir, PREFIX), global_step=step)

    def after_epoch(self, sess, epoch, history):
        saved = self.save_point(sess, history["steps"][-1], history)
        if self.chief:
            if milestone(epoch, self.snapshot_every):
                self._snapshots.save(sess, os.path.join(self.folder, f"{SNAPSHOT_FOLDER}{epoch}", PREFIX))
            with open(os.path.join(self.folder, "loss.txt"), "w") as handle:
                handle.writelines(f"{v:.6f}\n" for v in history["loss"])
            plots.save_curves(self.folder, history)
            plots.save_kernels(self.folder, epoch, sess.run(self.conv1))
        return saved


def _number(prefix):
    return int(prefix.rsplit("-", 1)[1])
