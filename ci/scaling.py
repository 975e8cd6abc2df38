"""Projected data-parallel scaling of the 8p models: how many bytes each step all-reduces, what that costs on a
10 and a 25 Gbit/s link, and what step time, images/sec and scaling efficiency follow for 2, 8 and 64 workers.

    python ci/scaling.py [--bench ci/work/bench.json] [--out ci/work/scaling.md] [--repeats 5]

What is measured and what is projected:
- gradient bytes per step: counted from each model's trainable variables (its graph built here, no data):
  the sum of elements x dtype bytes, which is what the all-reduce moves (distributed.py all-reduces every
  gradient once per step; MNIST TF2's MultiWorkerMirroredStrategy the same);
- compute time per step on one rank: from ci/bench.py's output (`bash ci/bench.sh --precision float32`: the
  perf launcher's steady-state images/sec at the bench batch, float32) -> ms/step = batch x 1000 / images/sec;
- all-reduce time of a float32 tensor of that many bytes between two workers on two network-namespace hosts
  (ci/canonical/netns_hosts.py) through TensorFlow's collective all-reduce (distributed.Cluster.mean), with
  the veth link unshaped and shaped by `tc` (token bucket) to 10 and 25 Gbit/s; and the raw TCP rate of the
  same link (one stream), since a shaped rate above what the veth reaches unshaped changes nothing;
- projected: a ring all-reduce sends and receives 2(n-1)/n of the bytes per worker, so the two-worker time
  (factor 1) scales by 2(n-1)/n for n workers; a step is compute + all-reduce (the graphs all-reduce after the
  backward pass, without overlap); images/sec = n x batch x 1000 / step ms; efficiency = compute / step.
  Per-hop latency, which grows with n in a ring, is left out: the projection is optimistic for small tensors.
Needs root (namespaces, tc); takes a few minutes. Not part of the tests (ci/tests/test_scaling.py tests the
arithmetic and the byte count).
"""
import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from ci.canonical import netns_hosts  # noqa: E402

MODELS = ("MNIST_ID2481_for_TensorFlow2.X", "AlexNet_ID0259_for_TensorFlow", "MobileNetV1_for_TensorFlow")
WORKERS = (2, 8, 64)
LINKS_MBIT = (10000, 25000)

# Builds each model's training network as its entry script does (the bench's settings) and prints the trainable
# variables as JSON [[name, shape, dtype], ...]. Run in the model's folder: the folders reuse module names.
NETWORKS = {
    "MNIST_ID2481_for_TensorFlow2.X": """
import mnist_main
variables = mnist_main.create_model().trainable_weights
""",
    "AlexNet_ID0259_for_TensorFlow": """
import model
graph = tf.Graph()
with graph.as_default():
    model.inference(tf.zeros([1, 227, 227, 3]), keep_prob=0.5, init="scaled")
    variables = tf.compat.v1.trainable_variables()
""",
    "MobileNetV1_for_TensorFlow": """
from nets import mobilenet_v1
graph = tf.Graph()
with graph.as_default():
    mobilenet_v1.mobilenet_v1(tf.zeros([1, 224, 224, 3]), num_classes=1001, is_training=True)
    variables = tf.compat.v1.trainable_variables()
""",
}
PRINT_VARIABLES = """
import json, sys
sys.path.insert(0, {repo!r})
from ci.scaling import describe
print("VARIABLES " + json.dumps(describe(variables)))
"""


def describe(variables):
    """[(name, shape, dtype name)] of TensorFlow or Keras variables."""
    import tensorflow as tf

    return [(v.name, [int(d) for d in v.shape], tf.as_dtype(v.dtype).base_dtype.name) for v in variables]


def dtype_bytes(dtype):
    return {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int32": 4, "int64": 8}[dtype]


def gradient_bytes(variables):
    """Bytes all-reduced per step for trainable variables [(name, shape, dtype name)]: each gradient once."""
    total = 0
    for _, shape, dtype in variables:
        count = 1
        for dim in shape:
            count *= dim
        total += count * dtype_bytes(dtype)
    return total


def model_variables(model):
    code = "import tensorflow as tf\n" + NETWORKS[model] + PRINT_VARIABLES.format(repo=REPO)
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.path.join(REPO, model), capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("VARIABLES ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"[Error] scaling.py: building {model}'s network failed: {proc.stderr[-1500:]}")
    return json.loads(lines[-1][len("VARIABLES "):])


def step_compute(bench, model):
    """(batch, ms per step) of the model's float32 project row in ci/bench.py's JSON."""
    for row in bench["rows"]:
        if row["model"] == model and row["mode"] == "float32":
            return row["batch"], row["batch"] * 1000.0 / row["project"]["images_per_sec"]
    raise SystemExit(f"[Error] scaling.py: no float32 row for {model} in the bench output; run "
                     "bash ci/bench.sh --precision float32 first")


def ring_factor(workers):
    """The share of the tensor each worker sends (and receives) in a ring all-reduce: 2(n-1)/n."""
    return 2.0 * (workers - 1) / workers


def project(compute_ms, batch, allreduce_ms_two, workers):
    """(step ms, images/sec, efficiency) for `workers` ranks from the two-worker all-reduce time (factor 1)."""
    comm = allreduce_ms_two * ring_factor(workers) / ring_factor(2)
    step = compute_ms + comm
    return step, workers * batch * 1000.0 / step, compute_ms / step


# One worker of the all-reduce measurement: TF_CONFIG set, argv = sizes in bytes, repeats. Rank 0 prints
# "ALLREDUCE {bytes: median seconds}".
ALLREDUCE_WORKER = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
from ci.canonical import distributed
cluster = distributed.Cluster.from_environ(os.environ, timeout_seconds=600)
sizes, repeats = [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
config, target = cluster.connect(tf.compat.v1.ConfigProto())
ops = {}
with tf.device(cluster.device()):
    for size in sizes:
        value = tf.compat.v1.get_variable(f"v{size}", [size // 4], tf.float32, tf.compat.v1.ones_initializer())
        ops[size] = tf.reduce_sum(cluster.mean(value.read_value()))  # a scalar back: the fetch costs nothing
    init = tf.compat.v1.global_variables_initializer()
timings = {}
with tf.compat.v1.Session(target, config=config) as sess:
    sess.run(init)
    for size in sizes:
        sess.run(ops[size])  # the first run sets the collective up
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            sess.run(ops[size])
            runs.append(time.perf_counter() - start)
        timings[size] = sorted(runs)[len(runs) // 2]
if cluster.index == 0:
    print("ALLREDUCE " + json.dumps(timings), flush=True)
time.sleep(2)  # the other worker's last collective ends before this server goes
"""

# Raw TCP: host 1 sends argv[2] bytes to host 0 at argv[1]:7000 over one connection; host 0 prints the rate.
TCP_SINK = """
import socket, sys, time
server = socket.create_server((sys.argv[1], 7000))
print("ready", flush=True)
conn, _ = server.accept()
total, start = 0, None
while True:
    data = conn.recv(1 << 20)
    if not data:
        break
    start = start or time.perf_counter()
    total += len(data)
print(f"RATE {total * 8 / (time.perf_counter() - start) / 1e6:.0f}", flush=True)
"""
TCP_SOURCE = """
import socket, sys
conn = socket.create_connection((sys.argv[1], 7000))
block, left = b"x" * (1 << 20), int(sys.argv[2])
while left > 0:
    conn.sendall(block)
    left -= len(block)
conn.close()
"""


def tcp_mbit(hosts, total=1 << 30):
    sink = subprocess.Popen(hosts.command(0, [sys.executable, "-c", TCP_SINK, hosts.address(0)]),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout.readline().strip() == "ready"
        subprocess.run(hosts.command(1, [sys.executable, "-c", TCP_SOURCE, hosts.address(0), str(total)]),
                       check=True, timeout=600)
        return float(sink.communicate(timeout=60)[0].split()[-1])
    finally:
        sink.kill()


def allreduce_seconds(hosts, sizes, repeats):
    workers = [f"{hosts.address(i)}:2222" for i in range(2)]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                      "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(hosts.command(index, [sys.executable, "-c", ALLREDUCE_WORKER, REPO,
                                                            ",".join(map(str, sizes)), str(repeats)]),
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [proc.communicate(timeout=1800) for proc in procs]
    lines = [line for line in outs[0][0].splitlines() if line.startswith("ALLREDUCE ")]
    if not lines:
        raise SystemExit(f"[Error] scaling.py: the all-reduce measurement failed: {outs[0][1][-1500:]}")
    return {int(k): v for k, v in json.loads(lines[-1][len("ALLREDUCE "):]).items()}


def measure_links(sizes, repeats):
    """{link: (TCP Mbit/s, {bytes: all-reduce seconds})} for the unshaped veth and each shaped rate."""
    reason = netns_hosts.unusable_reason()
    if reason:
        raise SystemExit(f"[Error] scaling.py: the link measurement needs network namespaces: {reason}")
    results = {}
    for mbit in (None, *LINKS_MBIT):
        with netns_hosts.Hosts(2) as hosts:
            if mbit:
                hosts.shape(mbit)
            results[mbit] = (tcp_mbit(hosts), allreduce_seconds(hosts, sizes, repeats))
        print(f"link {'unshaped' if mbit is None else f'{mbit} Mbit/s'}: TCP {results[mbit][0]:.0f} Mbit/s, "
              f"all-reduce {results[mbit][1]}", file=sys.stderr, flush=True)
    return results


def cpu_model():
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def link_remarks(rows, links):
    """What the measured rates say about the shaped rows: a shaping above the veth's own rate changes nothing,
    and an all-reduce slower than every link is bound by the cores, not by the link."""
    unshaped = links[None][0]
    remarks = ""
    above = [mbit for mbit in LINKS_MBIT if mbit >= unshaped]
    if above:
        remarks += (f" Shaping to {' and '.join(f'{m // 1000} Gbit/s' for m in above)} is above what the veth "
                    "reaches unshaped, so it changes nothing.")
    fastest = max(row["bytes"] * 8 / by_bytes[row["bytes"]] / 1e6 for row in rows for _, by_bytes in links.values())
    if fastest < min(LINKS_MBIT):
        remarks += (f" TensorFlow's all-reduce moves at most {fastest / 1000:.1f} Gbit/s here, below every link "
                    "rate: the all-reduce rows are bound by this VM's 2 cores (gRPC copying and serialising), not "
                    "by the link rate they are named after.")
    return remarks


def table(rows, links, command):
    """The Markdown section: inputs (measured) per model, then the projection per link and worker count."""
    today = datetime.date.today().isoformat()
    unshaped = links[None][0]
    out = [f"Measured on {today}, {cpu_model()} ({os.cpu_count()} cores), two network-namespace hosts joined by "
           f"veth on one VM; command: `{command}`. Method in `ci/scaling.py`'s header: the gradient bytes are "
           "counted from the trainable variables, the compute time is one rank's float32 ms/step from "
           "`ci/bench.py`, the all-reduce time is measured (TensorFlow collective all-reduce between the two "
           "hosts, median of the repeats), and everything for 8 and 64 workers is projected (ring: 2(n-1)/n of "
           "the bytes per worker; step = compute + all-reduce, no overlap; per-hop latency left out).",
           "",
           f"Raw TCP over the veth, one stream: {unshaped:,.0f} Mbit/s unshaped; "
           + ", ".join(f"{links[m][0]:,.0f} Mbit/s shaped to {m:,}" for m in LINKS_MBIT) + "."
           + link_remarks(rows, links),
           "",
           "| model | gradient MB / step (measured count) | batch | compute ms/step, 1 rank (measured) | link | "
           "all-reduce ms, 2 workers (measured) | all-reduce Gbit/s effective | workers | step ms (projected) | "
           "images/sec (projected) | efficiency (projected) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        for mbit in (None, *LINKS_MBIT):
            seconds = links[mbit][1][row["bytes"]]
            name = "veth unshaped" if mbit is None else f"tc {mbit // 1000} Gbit/s"
            for workers in WORKERS:
                step, images, efficiency = project(row["compute_ms"], row["batch"], seconds * 1000, workers)
                out.append(f"| {row['model']} | {row['bytes'] / 1e6:.2f} | {row['batch']} | {row['compute_ms']:.0f} | "
                           f"{name} | {seconds * 1000:.1f} | {row['bytes'] * 8 / seconds / 1e9:.2f} | {workers} | "
                           f"{step:.0f} | {images:,.0f} | {efficiency:.0%} |")
    return "\n".join(out) + "\n"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", default=os.path.join(REPO, "ci", "work", "bench.json"),
                        help="ci/bench.py's JSON output (float32 rows)")
    parser.add_argument("--out", default=os.path.join(REPO, "ci", "work", "scaling.md"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        with open(args.bench) as handle:
            bench = json.load(handle)
    except (OSError, ValueError) as err:
        raise SystemExit(f"[Error] scaling.py: --bench {args.bench}: {err}") from None
    rows = []
    for model in MODELS:
        batch, compute_ms = step_compute(bench, model)
        rows.append({"model": model, "bytes": gradient_bytes(model_variables(model)), "batch": batch,
                     "compute_ms": compute_ms})
    links = measure_links(sorted({row["bytes"] for row in rows}), args.repeats)
    command = "python ci/scaling.py " + " ".join(argv)
    text = table(rows, links, command.strip())
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
