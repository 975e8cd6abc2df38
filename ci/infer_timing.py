"""Times inference of a model's deployed graph and of its Keras peer, for ci/bench.py; also its entry point.

    python ci/infer_timing.py graph FROZEN.pb --input=images:0 --output=features:0 --shape=128,64,3 \
        --dtype=uint8 --batch=32 --steps=50 [--precision=float32|bfloat16]
    python ci/infer_timing.py peer <model>/benchmarks/keras_peer.py --shape=128,64,3 --batch=32 --steps=50 \
        [--precision=float32|mixed_bfloat16|mixed_float16]

Both sides are timed alike: the same synthetic batch (uniform pixels, generated once) is run WARMUP_CALLS times,
then `steps` calls are timed one by one; the result is the mean latency per batch and images/sec, printed as one
JSON line starting with INFER_RESULT.
  graph  the frozen GraphDef users deploy, in a tf.compat.v1 Session (the way the originals' inference scripts
         and deep_sort load it). bfloat16 / float16: TensorFlow's auto-mixed-precision graph rewrite (oneDNN bf16
         on a CPU, fp16 on a GPU) runs the float32 frozen graph in the lower precision.
  peer   the Keras peer's network (its build()), called through tf.function with training=False, under the
         Keras dtype policy `precision`.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from canonical import zoo_precision  # noqa: E402
from peer_timing import PRECISIONS, load_peer  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The first calls build and optimise the graph or trace the function; they are not steady state.
WARMUP_CALLS = 5
INFER_RESULT = "INFER_RESULT "
GRAPH_PRECISIONS = ("float32", "bfloat16", "float16")


def synthetic_batch(shape, batch, dtype):
    import numpy as np

    rng = np.random.default_rng(0)
    high = 255.0 if dtype == "uint8" else 1.0
    return rng.uniform(0.0, high, (batch, *shape)).astype(dtype)


def time_calls(call, steps):
    """(mean ms per call, list of per-call seconds) over `steps` calls after WARMUP_CALLS untimed ones."""
    if steps < 1:
        raise ValueError(f"need at least one timed call, got {steps}")
    for _ in range(WARMUP_CALLS):
        call()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return 1000.0 * sum(seconds) / steps, seconds


def result(ms_per_batch, batch, precision):
    return {"ms_per_batch": ms_per_batch, "images_per_sec": batch * 1000.0 / ms_per_batch, "precision": precision}


def graph_call(path, input_name, output_name, images, precision):
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    # The models' own rewrite switch: fp16 is a GPU precision, bf16 a CPU one (zoo_precision's table).
    chosen = zoo_precision.Precision("GPU" if precision == "float16" else "CPU", precision, "ci/infer_timing.py")
    session = tf.compat.v1.Session(graph=graph, config=chosen.apply_to_session_config(tf.compat.v1.ConfigProto()))
    output = graph.get_tensor_by_name(output_name)
    feed = {graph.get_tensor_by_name(input_name): images}
    return lambda: session.run(output, feed)


def peer_call(peer_path, images, precision):
    import keras
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    keras.mixed_precision.set_dtype_policy(precision)
    model = load_peer(peer_path).build()
    forward = tf.function(lambda x: model(x, training=False))
    batch = tf.constant(images)
    return lambda: forward(batch).numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("side", choices=("graph", "peer"))
    parser.add_argument("path", help="the frozen .pb (graph) or the keras_peer.py (peer)")
    parser.add_argument("--shape", required=True, help="one image's shape, e.g. 128,64,3")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True, help="timed calls after the warm-up")
    parser.add_argument("--dtype", default="float32", choices=("float32", "uint8"), help="graph input dtype")
    parser.add_argument("--input", default=None, help="graph input tensor name")
    parser.add_argument("--output", default=None, help="graph output tensor name")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args(argv)
    shape = tuple(int(n) for n in args.shape.split(","))
    if args.side == "graph":
        if not (args.input and args.output):
            parser.error("graph needs --input and --output")
        if args.precision not in GRAPH_PRECISIONS:
            parser.error(f"graph --precision is one of {', '.join(GRAPH_PRECISIONS)}")
        call = graph_call(args.path, args.input, args.output, synthetic_batch(shape, args.batch, args.dtype),
                          args.precision)
    else:
        call = peer_call(args.path, synthetic_batch(shape, args.batch, "float32"), args.precision)
    ms, _ = time_calls(call, args.steps)
    print(INFER_RESULT + json.dumps(result(ms, args.batch, args.precision)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
