"""The machine's matmul roof for ci/bench.py: GFLOP/s of a square matmul per dtype, plus what TensorFlow sees.

    python ci/matmul_roof.py [--size=2048] [--repeats=5]

Prints one JSON line starting with ROOF_RESULT: {"tf_version", "device", "gflops": {dtype: GFLOP/s}}.
A matmul of n x n by n x n is 2 n^3 FLOPs; the best of the repeats counts (the roof is what the machine can
do, not what it did on average while shared). float16 is measured on a GPU only (on CPU it is emulated and
no zoo model trains in it there).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ci import device as zoo_device  # noqa: E402  (the launchers' own choice: Ascend, GPU or CPU)
ROOF_RESULT = "ROOF_RESULT "


def gflops(tf, size, dtype, repeats):
    a = tf.random.uniform((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype)
    b = tf.cast(tf.random.uniform((size, size), dtype=tf.float32), dtype)

    @tf.function
    def product():
        return tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))

    product().numpy()  # traces and warms up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()  # .numpy() waits for the result, also on a GPU
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import tensorflow as tf

    device = zoo_device.detect()
    dtypes = ["float32", "bfloat16"] + (["float16"] if device == "GPU" else [])
    result = {"tf_version": tf.__version__, "device": device, "size": args.size,
              "gflops": {d: gflops(tf, args.size, getattr(tf, d), args.repeats) for d in dtypes}}
    print(ROOF_RESULT + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
