"""What a run leaves in --model_dir: model.ckpt-NNNN after every epoch (model and optimizer, so a restart
resumes) and the SavedModel."""
import glob
import os
import re
import shutil

import keras

CKPT_PATTERN = re.compile(r"model\.ckpt-(\d{4,})\.index$")


def latest_checkpoint(model_dir):
    """(path prefix, epoch) of the newest model.ckpt-NNNN in model_dir, or (None, 0)."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(model_dir), "model.ckpt-*.index")):
        match = CKPT_PATTERN.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path[: -len(".index")]))
    if not found:
        return None, 0
    epoch, prefix = max(found)
    return prefix, epoch


def restore(checkpoint, model_dir):
    """Reads the newest checkpoint of model_dir into `checkpoint`; returns the number of epochs it holds."""
    prefix, epoch = latest_checkpoint(model_dir)
    if prefix:
        checkpoint.read(prefix).assert_consumed()
        print(f"resuming from {prefix} at epoch {epoch}", flush=True)
    return epoch


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes model and optimizer state to <model_dir>/model.ckpt-{epoch:04d} after every epoch."""

    def __init__(self, checkpoint, model_dir):
        super().__init__()
        self.checkpoint = checkpoint
        self.model_dir = model_dir

    def on_epoch_end(self, epoch, logs=None):
        self.checkpoint.write(os.path.join(self.model_dir, f"model.ckpt-{epoch + 1:04d}"))


def export_saved_model(model, model_dir):
    """<model_dir>/saved_model: endpoint `serve`, float32 [None, 28, 28, 1] in, 10 probabilities out."""
    export_dir = os.path.join(model_dir, "saved_model")
    shutil.rmtree(export_dir, ignore_errors=True)
    model.export(export_dir, verbose=False)
    print(f"saved model: {export_dir}", flush=True)
    return export_dir
