"""Times a Keras 3 peer model's training, for ci/bench.py; also its subprocess entry point.

    python ci/peer_timing.py <model>/benchmarks/keras_peer.py --batch=64 --steps=50 --precision=float32
    python ci/peer_timing.py <peer> --batch=64 --steps=50 --data_path=<the dataset the project reads>

A peer module (one per model, in its benchmarks/ folder) builds the plain Keras network of its model and
exposes `training_input(data_path, batch)` -> (batched dataset, classes), the model's own training input
pipeline on a folder in its on-disk format, and `images_per_sec(batch, steps, precision, data=None)`, which
calls `measure` below so that every peer is timed the same way: `model.fit`, WARMUP_STEPS steps left out.
With --data_path the peer trains on training_input (the project's files, decoding and augmentation: like for
like with the project's run); without it, on a tf.data pipeline over synthetic in-memory images (no decoding:
what the peer's training step alone can do). The result is printed as one JSON line starting with PEER_RESULT.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ci.canonical import zoo_precision  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Run directly, the peer gets the kernels the zoo's entry scripts choose (the benchmark sets the same).
zoo_precision.prefer_onednn(os.environ)

# The first steps trace the function and fill the pipeline; they are not steady state.
WARMUP_STEPS = 3
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
PEER_RESULT = "PEER_RESULT "
# Distinct synthetic samples the pipeline cycles through (more would only cost memory).
POOL_BATCHES = 2


def synthetic_dataset(input_shape, classes, batch):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    count = POOL_BATCHES * batch
    images = rng.uniform(0.0, 1.0, (count, *input_shape)).astype("float32")
    labels = rng.integers(0, classes, count).astype("int32")
    return (tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
            .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def step_clock():
    """A callback noting the time at the end of every training step; reading the loss waits for the step
    to finish (Keras is imported here so that the timing arithmetic can be tested without TensorFlow)."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            float((logs or {}).get("loss", 0.0))
            self.ends.append(time.perf_counter())

    return StepClock()


def steady_rate(ends, batch, warmup):
    """images/sec between the end of the last warm-up step and the end of the last step."""
    timed = len(ends) - warmup
    if warmup < 1 or timed < 1:
        raise ValueError(f"need at least one warm-up and one timed step, got {len(ends)} steps, warm-up {warmup}")
    return batch * timed / (ends[-1] - ends[warmup - 1])


def loss_for(dataset, logits):
    """Cross-entropy for the dataset's labels: class ids, or one-hot rows (LeNet's pipeline makes those)."""
    import keras

    if dataset.element_spec[1].shape.rank == 2:
        return keras.losses.CategoricalCrossentropy(from_logits=logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits)


def measure(build, optimizer, input_shape, classes, batch, steps, precision, logits=True, dataset=None):
    """images/sec of `build()` (a Keras model producing float32 logits, or probabilities with logits=False)
    trained with `optimizer` under the Keras dtype policy `precision`, on `dataset` (batches of `batch`
    (images, labels)) or, when it is None, on synthetic in-memory images."""
    import keras

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    keras.mixed_precision.set_dtype_policy(precision)
    dataset = synthetic_dataset(input_shape, classes, batch) if dataset is None else dataset
    model = build()
    model.compile(optimizer=optimizer, loss=loss_for(dataset, logits), jit_compile=False)
    clock = step_clock()
    model.fit(dataset, epochs=1, steps_per_epoch=WARMUP_STEPS + steps, callbacks=[clock], verbose=0, shuffle=False)
    return steady_rate(clock.ends, batch, WARMUP_STEPS)


def load_peer(path):
    spec = importlib.util.spec_from_file_location("keras_peer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", help="path of a keras_peer.py")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True, help="timed steps after the warm-up")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--data_path", default=None,
                        help="a dataset in the model's on-disk format, read by the model's own input pipeline "
                             "(default: synthetic in-memory images)")
    args = parser.parse_args(argv)
    peer = load_peer(args.peer)
    data = None
    if args.data_path:
        try:
            data = peer.training_input(args.data_path, args.batch)
        except Exception as err:  # the model's own reader refused the folder; its message names what is wrong
            print(f"[Error] {args.peer}: --data_path={args.data_path}: {err}", flush=True)
            return 1
    rate = peer.images_per_sec(args.batch, args.steps, args.precision, data)
    print(PEER_RESULT + json.dumps({"images_per_sec": rate, "precision": args.precision,
                                    "input": "model pipeline" if args.data_path else "in memory"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
