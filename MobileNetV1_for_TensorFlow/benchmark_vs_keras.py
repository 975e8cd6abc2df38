"""Training speed: this model's performance launcher vs keras.applications.MobileNet, in one invocation.

    python benchmark_vs_keras.py [--data_path=DIR] [--batch_size=64] [--steps=12] [--keras_steps=8]

1. Runs test/train_performance_1p.sh at 224x224, 1001 classes, on --data_path (default: synthetic slim
   TFRecords of about 256 px written by tests/synthetic/slim_imagenet.py into a temporary folder), output in
   test/output/benchmark/. Its images/sec is the launcher's ActualFPS (first logging interval left out).
2. Trains keras.applications.MobileNet(weights=None, classes=1001) with SGD+momentum on in-memory random
   batches of the same size (no input pipeline: the peer's number is an upper bound of what it would do on
   the same files), timing `keras_steps` steps after 2 warm-up steps.
Prints both images/sec and the ratio. Both run in this process's machine one after the other, so the
ratio is meaningful even when the machine is shared; absolute figures are not.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

MODEL_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(MODEL_DIR, "tests"))
from synthetic import slim_imagenet  # noqa: E402  (the tests' generator: this folder stays self-contained)
KERAS_PEER = r"""
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
batch, steps = int(sys.argv[1]), int(sys.argv[2])
model = keras.applications.MobileNet(weights=None, classes=1001, input_shape=(224, 224, 3))
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
              loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (batch, 224, 224, 3)).astype("float32")
y = rng.integers(0, 1001, (batch,))
for _ in range(2):
    model.train_on_batch(x, y)
start = time.time()
for _ in range(steps):
    model.train_on_batch(x, y)
print(f"keras images/sec: {batch * steps / (time.time() - start):.2f}")
"""


def synthetic_data(folder):
    return slim_imagenet.generate(folder, train_count=160, validation_count=10, train_shards=4,
                                  validation_shards=1, image_size=256)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12, help="performance-launcher steps (logged every 2)")
    parser.add_argument("--keras_steps", type=int, default=8)
    args = parser.parse_args()
    env = dict(os.environ, ASCEND_DEVICE_ID="benchmark")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data_path or synthetic_data(os.path.join(scratch, "data"))
        launcher = subprocess.run(
            ["bash", "test/train_performance_1p.sh", f"--data_path={data}", f"--batch_size={args.batch_size}",
             f"--max_train_steps={args.steps}", "--iterations_per_loop=2", "--image_size=224", "--num_classes=1001"],
            cwd=MODEL_DIR, env=env, capture_output=True, text=True)
    match = re.search(r"Final Performance images/sec : ([0-9.]+)", launcher.stdout)
    if launcher.returncode != 0 or not match:
        sys.exit(f"[Error] benchmark_vs_keras.py: the performance launcher failed:\n{launcher.stdout[-2000:]}")
    ours = float(match.group(1))
    print(f"MobileNetV1_for_TensorFlow train_performance_1p.sh, batch {args.batch_size}, 224x224: "
          f"{ours:.2f} images/sec", flush=True)
    peer = subprocess.run([sys.executable, "-c", KERAS_PEER, str(args.batch_size), str(args.keras_steps)],
                          env=env, capture_output=True, text=True)
    match = re.search(r"keras images/sec: ([0-9.]+)", peer.stdout)
    if peer.returncode != 0 or not match:
        sys.exit(f"[Error] benchmark_vs_keras.py: the Keras peer failed:\n{peer.stderr[-2000:]}")
    keras_ips = float(match.group(1))
    print(f"keras.applications.MobileNet(weights=None, classes=1001), batch {args.batch_size}: "
          f"{keras_ips:.2f} images/sec")
    print(f"ratio (this model / Keras peer): {ours / keras_ips:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
