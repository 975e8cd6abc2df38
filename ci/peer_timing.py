"""Times a Keras 3 peer model's training, for ci/bench.py; also its subprocess entry point.

    python ci/peer_timing.py <model>/benchmarks/keras_peer.py --batch=64 --steps=50 --precision=float32

A peer module (one per model, in its benchmarks/ folder) builds the plain Keras network of its model and
exposes `images_per_sec(batch, steps, precision)`; it calls `measure` below, so that every peer is timed
the same way: `model.fit` on a tf.data pipeline over synthetic in-memory images (no decoding: the peer's
number is what its training step can do, an upper bound of it on files), WARMUP_STEPS steps left out.
The result is printed as one JSON line starting with PEER_RESULT.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


def measure(build, optimizer, input_shape, classes, batch, steps, precision, logits=True):
    """images/sec of `build()` (a Keras model producing float32 logits, or probabilities with logits=False)
    trained with `optimizer` under the Keras dtype policy `precision`."""
    import keras

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    keras.mixed_precision.set_dtype_policy(precision)
    model = build()
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
                  jit_compile=False)
    clock = step_clock()
    model.fit(synthetic_dataset(input_shape, classes, batch), epochs=1, steps_per_epoch=WARMUP_STEPS + steps,
              callbacks=[clock], verbose=0, shuffle=False)
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
    args = parser.parse_args(argv)
    rate = load_peer(args.peer).images_per_sec(args.batch, args.steps, args.precision)
    print(PEER_RESULT + json.dumps({"images_per_sec": rate, "precision": args.precision}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
