"""The inference benchmark's sides: the network compared with the peer's network on the same input, and the
deployed graph (its own preprocessing included) timed beside it."""
import tomllib

from ci import bench, bench_infer
from ci.tests.conftest import REPO

CONFIG = {"graph": "g.pb", "input": "images:0", "network_input": "network_input:0", "output": "out:0",
          "shape": [227, 227, 3], "peer_shape": [224, 224, 3], "dtype": "uint8", "batch": 32, "steps": 7}


def test_a_graph_that_names_its_network_input_is_fed_there_and_timed_whole_beside_it():
    sides = bench_infer.sides(CONFIG, "/o/g.pb", "/m/peer.py", "mixed_bfloat16")
    assert sides == [("project", "/o/g.pb", "bfloat16"), ("deployed", "/o/g.pb", "bfloat16"),
                     ("peer", "/m/peer.py", "mixed_bfloat16")]
    project, deployed, peer = (bench_infer.timing_command(CONFIG, side, path, precision, quick=False)[3:]
                               for side, path, precision in sides)
    assert project == ["/o/g.pb", "--shape=224,224,3", "--batch=32", "--steps=7", "--precision=bfloat16",
                       "--input=network_input:0", "--output=out:0", "--dtype=float32"]
    assert deployed == ["/o/g.pb", "--shape=227,227,3", "--batch=32", "--steps=7", "--precision=bfloat16",
                        "--input=images:0", "--output=out:0", "--dtype=uint8"]
    assert peer == ["/m/peer.py", "--shape=224,224,3", "--batch=32", "--steps=7", "--precision=mixed_bfloat16"]


def test_without_a_network_input_the_project_side_is_the_deployed_graph():
    plain = {k: v for k, v in CONFIG.items() if k != "network_input"}
    assert [side for side, _, _ in bench_infer.sides(plain, "g", "p", "float32")] == ["project", "peer"]
    assert bench_infer.timing_command(plain, "project", "g", "float32", quick=True)[-3:] == [
        "--input=images:0", "--output=out:0", "--dtype=uint8"]


def test_the_deployed_latency_gets_its_own_column_and_stays_out_of_the_ratio():
    def run(side, ms):
        return {"model": "M", "mode": "float32", "side": side, "batch": 32, "ms_per_batch": ms, "precision": "float32"}

    row, = bench_infer.rows([run("project", 80.0), run("deployed", 100.0), run("peer", 88.0)])
    assert row["ratio"] == 88.0 / 80.0 and row["deployed"]["ms_per_batch"] == 100.0
    cells = bench_infer.markdown_lines([row], bench.fmt)[2].strip("| ").split(" | ")
    assert cells[-2:] == [bench.fmt(1.1), bench.fmt(100.0)]


def test_the_models_that_preprocess_in_their_graph_name_their_network_input():
    with open(f"{REPO}/ci/bench.toml", "rb") as handle:
        config = tomllib.load(handle)
    named = sorted(m for m, cfg in config.items() if isinstance(cfg, dict) and cfg.get("infer", {}).get("network_input"))
    assert named == ["AlexNet_ID0259_for_TensorFlow", "cosine_metric_learning"]
