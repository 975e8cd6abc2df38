"""Benchmark (not a test): throughput of train_performance_1p.sh against a plain Keras 3 model of the same
two-tower network (benchmarks/keras_peer.py), in one invocation on one machine, same batch, same
227x227x3 input and the same tf.data pipeline; prints both images/sec and the ratio.

    python benchmarks/speed_vs_keras.py [--data_path=DIR] [--batch_size=100] [--steps=30] [--rounds=1]
          [--precision_mode=must_keep_origin_dtype]

--data_path defaults to ../shared/datasets/dogs_vs_cats (real photos), else a synthetic set from
ci/datasets/dogs_cats.py. With --rounds > 1 the two models alternate, so a change in the load of a shared
machine hits both; the ratio of the summed rates is reported.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(MODEL_DIR)
REAL = os.path.join(os.path.dirname(REPO), "shared", "datasets", "dogs_vs_cats")


def env():
    e = dict(os.environ, ASCEND_DEVICE_ID=os.environ.get("BENCH_DEVICE_ID", "6"))
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    return e


def ours(args, data):
    cmd = ["bash", os.path.join(MODEL_DIR, "test", "train_performance_1p.sh"), f"--data_path={data}",
           f"--batch={args.batch_size}", f"--max_step={args.steps}", f"--precision_mode={args.precision_mode}",
           "--val_photos=0.2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env())
    found = re.search(r"Final Performance images/sec : ([0-9.]+)", proc.stdout)
    if proc.returncode or not found:
        sys.exit(f"[Error] train_performance_1p.sh failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return float(found.group(1))


def keras(args, data, onednn):
    """onednn False: TensorFlow's default (as a user runs Keras); True: TF_ENABLE_ONEDNN_OPTS=1 like main.py."""
    e = env()
    e.pop("TF_ENABLE_ONEDNN_OPTS", None)
    if onednn:
        e["TF_ENABLE_ONEDNN_OPTS"] = "1"
    cmd = [sys.executable, os.path.join(HERE, "keras_peer.py"), f"--data_path={data}",
           f"--batch_size={args.batch_size}", f"--steps={args.steps}", "--warmup=5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=e)
    found = re.search(r"keras peer images/sec : ([0-9.]+)", proc.stdout)
    if proc.returncode or not found:
        sys.exit(f"[Error] keras_peer.py failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return float(found.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default=REAL if os.path.isdir(REAL) else "")
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--steps", type=int, default=30, help="timed steps + warm-up; the first 5 are not timed")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--precision_mode", default="must_keep_origin_dtype")
    args = p.parse_args()
    data = args.data_path
    if not data:
        sys.path.insert(0, REPO)
        from ci.datasets import dogs_cats
        data = dogs_cats.generate(os.path.join(tempfile.mkdtemp(), "dogs_cats"), per_class=200)
    print(f"speed benchmark: batch {args.batch_size}, {args.steps} steps, {args.rounds} round(s), "
          f"{os.cpu_count()} CPUs, data {data}", flush=True)
    totals = [0.0, 0.0, 0.0]
    for r in range(args.rounds):
        rates = ours(args, data), keras(args, data, False), keras(args, data, True)
        totals = [t + v for t, v in zip(totals, rates)]
        print(f"round {r + 1}: tf1 graph (train_performance_1p.sh) {rates[0]:.2f}, keras 3 peer {rates[1]:.2f}, "
              f"keras 3 peer with oneDNN forced on {rates[2]:.2f} images/sec", flush=True)
    print(f"tf1 graph images/sec : {totals[0] / args.rounds:.2f}")
    print(f"keras 3 peer images/sec : {totals[1] / args.rounds:.2f}")
    print(f"keras 3 peer (TF_ENABLE_ONEDNN_OPTS=1) images/sec : {totals[2] / args.rounds:.2f}")
    print(f"ratio : {totals[0] / totals[1]:.2f}")
    print(f"ratio against the oneDNN peer : {totals[0] / totals[2]:.2f}")


if __name__ == "__main__":
    main()
