"""What a run leaves in --model_dir: model.ckpt-<step> (model and optimizer, so a restart resumes) after
initialisation, after every epoch and when a signal stops the run, the newest KEEP of them kept; and the
SavedModel. The names carry the global step, so a checkpoint written mid-epoch orders correctly."""
import glob
import os
import tempfile

import keras
import tensorflow as tf

import run_safety

KEEP = 3  # a kill while the newest is written still leaves two complete ones behind it


def path(model_dir, step):
    return os.path.join(model_dir, f"model.ckpt-{step}")


def variable_shapes(checkpoint):
    """{name: shape} of what `checkpoint` writes. The names come from its object graph, which only a write
    reveals through public API, so it is written once to a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="mnist-ckpt-names-") as scratch:
        prefix = checkpoint.write(os.path.join(scratch, "probe"))
        return {name: shape for name, shape in tf.train.list_variables(prefix)
                if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def restore(checkpoint, model_dir, momentum):
    """Reads the newest loadable checkpoint of model_dir into `checkpoint` (damaged newer ones are skipped with
    a warning); returns the global step it holds, 0 when model_dir has none. A checkpoint of another model (or
    of another --momentum, which changes the optimizer's variables) is one RunSafetyError line."""
    prefix = run_safety.resume_point(model_dir)
    if prefix is None:
        return 0
    run_safety.check_variables(prefix, variable_shapes(checkpoint), what=f"this model (--momentum={momentum})")
    checkpoint.read(prefix).assert_existing_objects_matched()
    step = int(checkpoint.optimizer.iterations.numpy())
    print(f"resuming from {prefix} at step {step}", flush=True)
    return step


def save(checkpoint, model_dir, step):
    """Writes model.ckpt-<step>, then removes all but the newest KEEP older ones. Numbers above `step` are
    left alone: they can only be checkpoints the resume skipped as damaged, kept for the user to inspect."""
    prefix = checkpoint.write(path(model_dir, step))
    older = [p for number, p in run_safety.numbered_checkpoints(model_dir) if number < step]
    for stale in older[KEEP - 1:]:
        for file in glob.glob(glob.escape(stale) + ".*"):
            os.remove(file)
    return prefix


def export_saved_model(model, model_dir):
    """<model_dir>/saved_model: endpoint `serve`, float32 [None, 28, 28, 1] in, 10 probabilities out. It
    replaces an earlier export only once complete."""
    export_dir = run_safety.replace_folder(os.path.join(model_dir, "saved_model"),
                                           lambda path: model.export(path, verbose=False))
    print(f"saved model: {export_dir}", flush=True)
    return export_dir


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes model.ckpt-<global step> after every epoch (the loop has checked the weights are finite)."""

    def __init__(self, checkpoint, model_dir):
        super().__init__()
        self.checkpoint = checkpoint
        self.model_dir = model_dir

    def on_epoch_end(self, epoch, logs=None):
        save(self.checkpoint, self.model_dir, int(self.checkpoint.optimizer.iterations.numpy()))
