"""The inference half of the zoo benchmark (ci/bench.py): the graph users deploy against the Keras peer.

For a model whose ci/bench.toml table has an `infer` table, after its training rounds: the model's own export
script freezes the checkpoint of the benchmark's last successful training run (the deployed artefact: LeNet's
frozen graph, AlexNet's and MobileNetV1's frozen .pb, cosine's market1501.pb at deep_sort's batch of 32), then
ci/infer_timing.py times it and the peer's tf.function forward pass in alternating rounds, in each precision
mode: float32, and the mixed mode as the precision table has it (bf16 graph rewrite and mixed_bfloat16 on a CPU
with native bf16, fp16 on a GPU, float32 elsewhere).

Like with like: the peer takes the network's input (float pixels of the network's size), while a deployed graph
may begin with its own preprocessing (AlexNet's resize to shorter side 256 and centre crop of any photo; cosine's
uint8 BGR to float). Where the graph names the network's input (`network_input` in the model's infer table), the
project side feeds it there, with the peer's batch, and the ratio compares network with network; the deployed
graph from its raw input is timed too (side `deployed`) and shown in its own column.
"""
import json
import os
import re
import sys

from ci.infer_timing import INFER_RESULT, WARMUP_CALLS

# The peer's Keras policy -> the graph rewrite of the same precision.
GRAPH_PRECISION = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
COLUMNS = ("model", "mode", "batch", "project ms/batch", "project img/s", "project dtype", "peer ms/batch",
           "peer img/s", "peer dtype", "project/peer", "deployed ms/batch (raw input)")
QUICK_STEPS = 5


def export_command(cfg, model_dir, run_output, export_dir):
    values = {"python": sys.executable, "model": model_dir, "run": run_output, "out": export_dir}
    return [part.format(**values) for part in cfg["export"]]


def last_good_output(results, model):
    """The output folder of the model's last training run that passed, or None."""
    runs = [r for r in results if r["model"] == model and r["side"] == "project" and not r["problems"]]
    return os.path.join(runs[-1]["outputs"], "output") if runs else None


def parse_result(log_text):
    found = re.search("^" + INFER_RESULT + "(.*)$", log_text, re.M)
    return json.loads(found.group(1)) if found else None


def sides(cfg, graph_path, peer_path, policy):
    """(side, path, precision) of each timed side in one round: project, deployed (where the graph names its
    network input) and peer, the graph in the precision of the peer's Keras policy."""
    graph = [("project", graph_path, GRAPH_PRECISION[policy])]
    if cfg.get("network_input"):
        graph.append(("deployed", graph_path, GRAPH_PRECISION[policy]))
    return graph + [("peer", peer_path, policy)]


def timing_command(cfg, side, path, precision, quick):
    """The ci/infer_timing.py command of one side: project (the exported graph, fed at its network input where
    the table names one), deployed (the exported graph from its raw input) or peer."""
    steps = QUICK_STEPS if quick else cfg["steps"]
    peer_shape = cfg.get("peer_shape", cfg["shape"])
    at_network = side == "peer" or (side == "project" and cfg.get("network_input"))
    command = [sys.executable, os.path.join("ci", "infer_timing.py"), "peer" if side == "peer" else "graph", path,
               "--shape=" + ",".join(str(n) for n in (peer_shape if at_network else cfg["shape"])),
               f"--batch={cfg['batch']}", f"--steps={steps}", f"--precision={precision}"]
    if side == "peer":
        return command
    if at_network:
        return command + [f"--input={cfg['network_input']}", f"--output={cfg['output']}", "--dtype=float32"]
    return command + [f"--input={cfg['input']}", f"--output={cfg['output']}", f"--dtype={cfg.get('dtype', 'float32')}"]


def rows(results):
    """One row per (model, mode): mean latency and images/sec of each side over its rounds."""
    table = []
    for model, mode in dict.fromkeys((r["model"], r["mode"]) for r in results):
        row = {"model": model, "mode": mode,
               "batch": next(r["batch"] for r in results if (r["model"], r["mode"]) == (model, mode))}
        for side in ("project", "peer", "deployed"):
            runs = [r for r in results
                    if (r["model"], r["mode"], r["side"]) == (model, mode, side) and r["ms_per_batch"]]
            ms = sum(r["ms_per_batch"] for r in runs) / len(runs) if runs else None
            row[side] = {"ms_per_batch": ms, "images_per_sec": row["batch"] * 1000.0 / ms if ms else None,
                         "precision": "/".join(sorted({r["precision"] for r in runs})) or "-"}
        both = row["project"]["ms_per_batch"] and row["peer"]["ms_per_batch"]
        row["ratio"] = row["peer"]["ms_per_batch"] / row["project"]["ms_per_batch"] if both else None
        table.append(row)
    return table


def markdown_lines(table, fmt):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for r in table:
        cells = [r["model"], r["mode"], str(r["batch"]), fmt(r["project"]["ms_per_batch"]),
                 fmt(r["project"]["images_per_sec"]), r["project"]["precision"], fmt(r["peer"]["ms_per_batch"]),
                 fmt(r["peer"]["images_per_sec"]), r["peer"]["precision"], fmt(r["ratio"]),
                 fmt(r["deployed"]["ms_per_batch"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", f"Inference: mean latency of one batch over the timed calls after {WARMUP_CALLS} warm-up calls "
                        "(ci/infer_timing.py), the same synthetic batch on both sides; project: the model's "
                        "exported frozen graph in a Session; peer: the Keras peer's forward pass in tf.function "
                        "(training=False); project/peer: peer latency over project latency. Where the graph names its "
                        "network input, the project side is fed there (the peer's input) and the deployed column "
                        "times the whole graph from its raw input, preprocessing included."]
