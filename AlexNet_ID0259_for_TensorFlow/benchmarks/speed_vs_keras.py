"""Benchmark (not a test): throughput of train_performance_1p.sh in float32 and in its bfloat16 mixed mode
against a plain Keras 3 model of the same two-tower network (benchmarks/keras_peer.py, float32), in one
invocation on one machine, same batch, same 227x227x3 input and the same tf.data pipeline; prints the
images/sec of each and the ratios.

    python benchmarks/speed_vs_keras.py [--data_path=DIR] [--batch_size=100] [--steps=20] [--rounds=1]

Only steady-state steps are timed, the same ones for every model: the first pass over the training photos
(it decodes the JPEGs into the in-memory cache) and two more steps are warm-up. --data_path defaults to
../shared/datasets/dogs_vs_cats (real photos), else a synthetic set from tests/synthetic/dogs_cats.py. With
--rounds > 1 the models alternate, so a change in the load of a shared machine hits all of them; the
ratios of the summed rates are reported.
"""
import argparse
import math
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(MODEL_DIR)
REAL = os.path.join(os.path.dirname(REPO), "shared", "datasets", "dogs_vs_cats")
HELD_OUT = 0.5  # fraction of the photos held out: fewer training photos, a shorter decoding first pass
DEVICE_ID = os.environ.get("BENCH_DEVICE_ID", "6")  # its own test/output/<id>/, apart from user runs


def env():
    e = dict(os.environ, ASCEND_DEVICE_ID=DEVICE_ID)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    return e


def run(cmd, pattern, what, environment=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=environment or env())
    found = re.search(pattern, proc.stdout)
    if proc.returncode or not found:
        sys.exit(f"[Error] {what} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout, found


def ours(args, data, warmup, precision_mode):
    """images/sec of the launcher's steps after warm-up, and the device line of its log."""
    cmd = ["bash", os.path.join(MODEL_DIR, "test", "train_performance_1p.sh"), f"--data_path={data}",
           f"--batch={args.batch_size}", f"--max_step={warmup + args.steps}", f"--precision_mode={precision_mode}",
           f"--val_photos={HELD_OUT}"]
    run(cmd, r"Final Performance images/sec : ([0-9.]+)", "train_performance_1p.sh")
    with open(os.path.join(MODEL_DIR, "test", "output", DEVICE_ID, f"train_{DEVICE_ID}.log")) as handle:
        log = handle.read()
    times = [float(t) for t in re.findall(r"^epoch \d+ step: \d+ step_time ([0-9.]+)", log, re.M)][warmup:]
    device = re.search(r"^device: (.*)$", log, re.M).group(1)
    return args.batch_size * len(times) / sum(times), device


def keras(args, data, warmup):
    cmd = [sys.executable, os.path.join(HERE, "keras_peer.py"), f"--data_path={data}", f"--held_out={HELD_OUT}",
           f"--batch_size={args.batch_size}", f"--steps={warmup + args.steps}", f"--warmup={warmup}"]
    plain = env()
    plain.pop("TF_ENABLE_ONEDNN_OPTS", None)  # TensorFlow's own default, as a user runs Keras
    out, found = run(cmd, r"keras peer images/sec : ([0-9.]+)", "keras_peer.py", plain)
    return float(found.group(1)), re.search(r"oneDNN (\w+)", out).group(1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", default=REAL if os.path.isdir(REAL) else "")
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--steps", type=int, default=20, help="timed steps after the warm-up")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    data = args.data_path
    if not data:
        sys.path.insert(0, os.path.join(MODEL_DIR, "tests"))  # the tests' generator: the folder stays self-contained
        from synthetic import dogs_cats
        data = dogs_cats.generate(os.path.join(tempfile.mkdtemp(), "dogs_cats"), per_class=200)
    sys.path.insert(0, MODEL_DIR)
    import data_loader
    entries, _ = data_loader.list_photos(data, log=lambda line: None)
    train, _ = data_loader.split(entries, HELD_OUT)
    warmup = math.ceil(len(train) / args.batch_size) + 2
    print(f"speed benchmark: batch {args.batch_size}, {warmup} warm-up + {args.steps} timed steps, "
          f"{args.rounds} round(s), {os.cpu_count()} CPUs, {len(train)} training photos from {data}", flush=True)
    names = ("tf1 graph float32", "tf1 graph bf16 mode", "keras 3 peer float32")
    totals = [0.0, 0.0, 0.0]
    for r in range(args.rounds):
        fp32, _ = ours(args, data, warmup, "must_keep_origin_dtype")
        mixed, device = ours(args, data, warmup, "allow_mix_precision")
        peer, onednn = keras(args, data, warmup)
        totals = [t + v for t, v in zip(totals, (fp32, mixed, peer))]
        print(f"round {r + 1}: " + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, (fp32, mixed, peer)))
              + f" images/sec (bf16 mode: {device}; keras peer: oneDNN {onednn} by TensorFlow's default)",
              flush=True)
    for name, total in zip(names, totals):
        print(f"{name} images/sec : {total / args.rounds:.2f}")
    print(f"ratio float32 : {totals[0] / totals[2]:.2f}")
    print(f"ratio bf16 mode : {totals[1] / totals[2]:.2f}")


if __name__ == "__main__":
    main()
