"""The training step alone: this model's step (training.make_steps, as mnist_main.py runs it) against Keras
`fit`'s own step on the same network, in one process, alternating rounds, on the same in-memory batches.

    python benchmarks/step_vs_fit.py [--policy float32|mixed_bfloat16] [--batch 256] [--steps 60] [--rounds 3]

Both sides time each step's call from its start until its results are on the host (the project copies them to
the host in the call; `fit` hands its logs to the callbacks), the first 10 steps of a round left out; it prints
each round's median ms per step and images/sec, then project / fit over the rounds' medians. It isolates the
step from what the launchers add around it (reading TFRecords, logging, evaluation, checkpoints).
"""
import argparse
import os
import statistics
import sys
import time

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, MODEL_DIR)
import zoo_precision  # noqa: E402

WARMUP = 10


def batches(batch):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.random((batch * 8, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, batch * 8)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch, drop_remainder=True).cache().repeat()


def project_step_seconds(dataset, batch, steps):
    import keras
    import tensorflow as tf

    import mnist_model
    import training

    model = mnist_model.create_model()
    train_step, _ = training.make_steps(tf.distribute.get_strategy(), model, keras.optimizers.SGD(0.05), batch)
    iterator, flag, seconds = iter(dataset), tf.constant(0.0), []
    for _ in range(steps):
        start = time.perf_counter()
        train_step(iterator, flag).numpy()
        seconds.append(time.perf_counter() - start)
    return seconds


def fit_step_seconds(dataset, batch, steps):
    import keras

    import mnist_model

    seconds = []

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch_index, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch_index, logs=None):
            seconds.append(time.perf_counter() - self.start)

    model = mnist_model.create_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", jit_compile=False)
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[StepClock()])
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", choices=("float32", "mixed_bfloat16"), default="float32")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60, help=f"steps per round, the first {WARMUP} not timed")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.steps <= WARMUP or args.rounds < 1:
        print(f"[Error] step_vs_fit.py: --batch and --rounds must be >= 1, --steps > {WARMUP}")
        return 1
    zoo_precision.before_tensorflow()
    import keras

    keras.mixed_precision.set_global_policy(args.policy)
    dataset = batches(args.batch)
    medians = {"project": [], "fit": []}
    for number in range(1, args.rounds + 1):
        for side, timed in (("project", project_step_seconds), ("fit", fit_step_seconds)):
            median = statistics.median(timed(dataset, args.batch, args.steps)[WARMUP:])
            medians[side].append(median)
            print(f"round {number} {side}: {median * 1000:.1f} ms/step, {args.batch / median:,.0f} images/sec",
                  flush=True)
    ratio = sum(medians["fit"]) / sum(medians["project"])
    print(f"{args.policy}, batch {args.batch}: project / fit {ratio:.2f} (speed; over {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
