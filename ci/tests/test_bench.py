"""The zoo benchmark's own logic (ci/bench.py, ci/flops.py, ci/peer_timing.py, ci/gpu_check.sh), without
running any model: FLOP counts against hand counts, the alternation of the rounds, the table and the JSON."""
import json
import os
import subprocess

import pytest

from ci import bench, bench_infer, flops, infer_timing, peer_timing

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_one_layer_against_a_hand_count():
    # LeNet's first layer: 28x28 SAME outputs x 6 maps, each a 5x5x1 window: 28*28*6*25 = 117,600 MACs.
    assert flops.layer_macs(("conv", 28, 28, 5, 5, 1, 6)) == 117_600
    # Training: x2 FLOPs per MAC, x3 for forward + backward (input and weight gradients).
    assert flops.train_flops_per_image([("conv", 28, 28, 5, 5, 1, 6)]) == 6 * 117_600
    # A depthwise 3x3 layer has one filter per channel: 112*112*9*32.
    assert flops.layer_macs(("dwconv", 112, 112, 3, 3, 32)) == 3_612_672


def test_whole_networks_against_independent_counts():
    # LeNet by hand: 117,600 + 14*14*16*5*5*6 (470,400) + 784*120 + 120*84 + 84*10.
    assert flops.forward_macs(flops.lenet()) == 117_600 + 470_400 + 94_080 + 10_080 + 840
    # MobileNetV1 1.0/224 with 1000 classes: 569 million MACs in the MobileNets paper (Table 1).
    assert round(flops.forward_macs(flops.mobilenet_v1(classes=1000)) / 1e6) == 569
    # AlexNet's VALID sizes: 227 -> conv1 55 -> pool 27 (conv2 SAME) -> pool 13 (conv3-5) -> pool 6.
    assert flops.alexnet()[0][1:3] == (55, 55) and flops.alexnet()[-3] == ("dense", 6 * 6 * 256, 4096)


def test_every_benchmarked_model_has_a_flop_count_and_a_peer():
    import tomllib

    with open(os.path.join(REPO, "ci", "bench.toml"), "rb") as handle:
        config = tomllib.load(handle)
    assert set(config) == set(flops.NETWORKS)
    for model in config:
        assert os.path.isfile(os.path.join(REPO, model, "benchmarks", "keras_peer.py")), model
        assert os.path.isfile(os.path.join(REPO, model, "test", config[model]["launcher"])), model
        assert flops.model_train_flops(model, **config[model].get("network", {})) > 0


def test_rounds_alternate_project_and_peer():
    order = bench.schedule(["A", "B"], ("float32", "mixed"), 2)
    assert [side for *_, side in order] == ["project", "peer", "peer_in_memory"] * 8
    # Each project run is followed by its two peers in the same model, mode and round.
    for first, second, third in zip(order[::3], order[1::3], order[2::3]):
        assert first[:3] == second[:3] == third[:3]
    # Rounds interleave the modes (a load change hits both modes), models one after the other.
    assert [(m, mode, r) for m, mode, r, _ in order[::3]] == [
        ("A", "float32", 1), ("A", "mixed", 1), ("A", "float32", 2), ("A", "mixed", 2),
        ("B", "float32", 1), ("B", "mixed", 1), ("B", "float32", 2), ("B", "mixed", 2)]


def test_peer_precision_follows_the_hardware():
    assert bench.peer_precision("float32", "CPU", {"avx512_bf16"}) == "float32"
    assert bench.peer_precision("mixed", "CPU", {"avx2"}) == "float32"
    assert bench.peer_precision("mixed", "CPU", {"amx_bf16"}) == "mixed_bfloat16"
    assert bench.peer_precision("mixed", "CPU", {"avx512_bf16"}) == "mixed_bfloat16"
    assert bench.peer_precision("mixed", "GPU", set()) == "mixed_float16"


def test_steady_rate_leaves_the_warmup_out():
    # 2 warm-up steps (slow), then 4 steps of 0.5 s at batch 10: 80 images in 2 s.
    assert peer_timing.steady_rate([5.0, 6.0, 6.5, 7.0, 7.5, 8.0], 10, 2) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        peer_timing.steady_rate([1.0, 2.0], 10, 2)


def run(model, mode, side, rate, precision, rss, round_no=1):
    return {"model": model, "mode": mode, "side": side, "round": round_no, "images_per_sec": rate,
            "precision": precision, "peak_rss_mb": rss, "problems": []}


def test_summary_ratio_roof_share_table_and_json():
    model = "LeNet_ID0127_for_TensorFlow"
    results = [run(model, "float32", "project", 1000.0, "float32", 700.0),
               run(model, "float32", "peer", 400.0, "float32", 600.0),
               run(model, "float32", "peer_in_memory", 1000.0, "float32", 500.0),
               run(model, "float32", "project", 500.0, "float32", 710.0, 2),
               run(model, "float32", "peer", 600.0, "float32", 590.0, 2),
               run(model, "float32", "peer_in_memory", 2000.0, "float32", 500.0, 2)]
    rows = bench.summarise(results, {model: {"batch": 64}}, {"float32": 100.0, "bfloat16": 50.0})
    assert len(rows) == 1
    row = rows[0]
    assert row["ratio"] == pytest.approx(1500 / 1000)  # summed over the rounds, not a mean of ratios
    assert row["ratio_in_memory"] == pytest.approx(1500 / 3000)
    assert row["project"]["images_per_sec"] == pytest.approx(750.0)
    assert row["project"]["peak_rss_mb"] == 710.0
    per_image = 6 * 693_000  # LeNet's hand count above, x6
    assert row["project"]["roof_pct"] == pytest.approx(100 * 750 * per_image / 1e9 / 100.0)
    info = {"date": "2026-12-01T00:00:00+00:00", "cpu_model": "Test CPU", "cpus": 2, "device": "CPU",
            "cpu_flags": {"avx2": True, "avx512f": False, "avx512_bf16": False, "amx_bf16": False},
            "tf_version": "2.21.0", "TF_ENABLE_ONEDNN_OPTS": "unset"}
    roof = {"size": 1024, "gflops": {"float32": 100.0, "bfloat16": 50.0}}
    text = bench.markdown(info, roof, rows, "quick runs", [])
    lines = text.splitlines()
    header = lines.index("| " + " | ".join(bench.COLUMNS) + " |")
    assert lines[header + 1] == "|" + " --- |" * len(bench.COLUMNS)
    cells = [c.strip() for c in lines[header + 2].strip("|").split("|")]
    assert cells[:10] == [model, "float32", "64", "750.00", "float32", "500.00", "float32", "1.50", "1,500.00",
                          "0.50"]
    assert cells[-1] == "600"  # the peak memory of the peer that reads the files
    assert "Test CPU" in text and "avx512_bf16 no" in text and "TensorFlow 2.21.0" in text
    assert json.loads(json.dumps(rows)) == rows  # the JSON file holds the rows as they are


def bf16_rows(model, float32_rate, mixed_rate, mixed_dtype="bfloat16"):
    results = [run(model, "float32", "project", float32_rate, "float32", 700.0),
               run(model, "float32", "peer", 100.0, "float32", 600.0),
               run(model, "mixed", "project", mixed_rate, mixed_dtype, 700.0),
               run(model, "mixed", "peer", 100.0, "float32", 600.0)]
    return bench.summarise(results, {model: {"batch": 64}}, {"float32": 100.0, "bfloat16": 400.0})


@pytest.mark.parametrize("model, kind, rates, table, verdict", [
    # The table below: LeNet 0.96x on AMX (float32), AlexNet 1.58x (bfloat16), nothing on AVX-512 bf16.
    ("LeNet_ID0127_for_TensorFlow", "amx_bf16", (1000.0, 900.0), 0.96, "agrees"),
    ("LeNet_ID0127_for_TensorFlow", "amx_bf16", (1000.0, 1200.0), 0.96, "disagrees: update the entry (bfloat16)"),
    ("AlexNet_ID0259_for_TensorFlow", "amx_bf16", (50.0, 40.0), 1.58, "disagrees: update the entry (float32)"),
    ("cosine_metric_learning", "amx_bf16", (40.0, 60.0), None, "not in the table: add it (bfloat16)"),
    ("AlexNet_ID0259_for_TensorFlow", "avx512_bf16", (50.0, 45.0), None, "not in the table: add it (float32)"),
])
def test_bf16_check_sets_the_measured_ratio_beside_the_table(monkeypatch, model, kind, rates, table, verdict):
    measured = bench.zoo_precision.Measurement
    monkeypatch.setattr(bench.zoo_precision, "MEASURED_BF16", {
        ("LeNet_ID0127_for_TensorFlow", "amx_bf16"): measured(0.96, "test"),
        ("AlexNet_ID0259_for_TensorFlow", "amx_bf16"): measured(1.58, "test")})
    (check,) = bench.bf16_check(bf16_rows(model, *rates), kind)
    assert check["measured"] == pytest.approx(rates[1] / rates[0])
    assert (check["table"], check["verdict"], check["cpu_kind"]) == (table, verdict, kind)
    lines = bench.bf16_lines([check])
    assert kind in lines[0] and lines[-1].startswith(f"| {model} | {bench.fmt(rates[1] / rates[0])} | ")


def test_bf16_check_without_a_bf16_run_or_a_bf16_cpu():
    model = "AlexNet_ID0259_for_TensorFlow"
    (no_bf16,) = bench.bf16_check(bf16_rows(model, 50.0, 49.0, "float32"), "amx_bf16")
    assert no_bf16["measured"] is None
    assert no_bf16["verdict"] == "no bf16 measurement (the mixed run computed in float32)"
    (avx2,) = bench.bf16_check(bf16_rows(model, 50.0, 49.0, "float32"), None)
    assert avx2["table"] is None and avx2["verdict"] == "this CPU has no native bf16: nothing to check"
    float32_only = bf16_rows(model, 50.0, 49.0)[:1]
    assert bench.bf16_check(float32_only, "amx_bf16") == []  # --precision float32: nothing to compare


def test_the_mixed_mode_forces_bf16_for_the_project_run():
    assert bench.child_env(bench.MODE_ENV["mixed"])["ZOO_CPU_BF16"] == "1"
    assert bench.MODE_ENV["float32"] == {}


def test_a_failed_round_gives_no_ratio():
    model = "LeNet_ID0127_for_TensorFlow"
    results = [run(model, "mixed", "project", None, "-", 10.0), run(model, "mixed", "peer", 400.0, "float32", 600.0)]
    row = bench.summarise(results, {model: {"batch": 64}}, {"float32": 100.0})[0]
    assert row["ratio"] is None and bench.table_rows([row])[0][7] == "-"
    # No in-memory peer ran: no ratio for it either, and the table says so.
    assert row["ratio_in_memory"] is None and bench.table_rows([row])[0][8:10] == ["-", "-"]


def infer_run(mode, side, ms, precision, round_no=1):
    return {"model": "cosine_metric_learning", "mode": mode, "side": side, "round": round_no, "batch": 32,
            "ms_per_batch": ms, "precision": precision, "problems": []}


def test_inference_rows_latency_ratio_and_table():
    results = [infer_run("float32", "project", 20.0, "float32"), infer_run("float32", "peer", 30.0, "float32"),
               infer_run("float32", "project", 40.0, "float32", 2), infer_run("float32", "peer", 60.0, "float32", 2),
               infer_run("mixed", "project", None, "bfloat16"), infer_run("mixed", "peer", 10.0, "mixed_bfloat16")]
    float32, mixed = bench_infer.rows(results)
    assert float32["project"]["ms_per_batch"] == pytest.approx(30.0)
    assert float32["project"]["images_per_sec"] == pytest.approx(32 * 1000 / 30.0)
    assert float32["ratio"] == pytest.approx(45.0 / 30.0)  # peer latency over project latency: > 1 is faster
    assert mixed["ratio"] is None and mixed["project"]["precision"] == "-"
    lines = bench_infer.markdown_lines([float32], bench.fmt)
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells == ["cosine_metric_learning", "float32", "32", "30.00", "1,066.67", "float32", "45.00", "711.11",
                     "float32", "1.50", "-"]


def test_inference_commands_from_the_config():
    import tomllib

    with open(os.path.join(REPO, "ci", "bench.toml"), "rb") as handle:
        config = tomllib.load(handle)
    infer = config["LeNet_ID0127_for_TensorFlow"]["infer"]
    export = bench_infer.export_command(infer, "/m", "/r", "/o")
    assert export[1:] == ["/m/LeNet_frozen_graph.py", "--ckpt_path=/r/ckpt_npu", "--output_path=/o/lenet.pb"]
    graph = bench_infer.timing_command(infer, "project", "/o/lenet.pb", "bfloat16", quick=True)
    assert graph[2:] == ["graph", "/o/lenet.pb", "--shape=784", "--batch=64", f"--steps={bench_infer.QUICK_STEPS}",
                         "--precision=bfloat16", "--input=input_image:0", "--output=predictions:0", "--dtype=float32"]
    peer = bench_infer.timing_command(infer, "peer", "/p.py", "float32", quick=False)
    assert peer[2:] == ["peer", "/p.py", "--shape=28,28,1", "--batch=64", "--steps=300", "--precision=float32"]
    for model, cfg in config.items():  # every deployed graph the issue names is timed
        if model != "MNIST_ID2481_for_TensorFlow2.X":
            assert {"export", "graph", "input", "output", "shape", "batch", "steps"} <= set(cfg["infer"]), model
    assert config["cosine_metric_learning"]["infer"]["batch"] == 32  # deep_sort's batch


def test_inference_timing_leaves_the_warmup_out():
    calls = []
    ms, seconds = infer_timing.time_calls(lambda: calls.append(1), 3)
    assert len(calls) == infer_timing.WARMUP_CALLS + 3 and len(seconds) == 3
    assert ms == pytest.approx(1000 * sum(seconds) / 3)
    assert infer_timing.result(25.0, 32, "float32")["images_per_sec"] == pytest.approx(1280.0)
    assert bench_infer.parse_result("noise\n" + infer_timing.INFER_RESULT + '{"ms_per_batch": 2.0}\n') == {
        "ms_per_batch": 2.0}
    assert bench_infer.parse_result("no result") is None


def test_gpu_check_without_a_gpu_says_so_and_passes(tmp_path):
    # A PATH without nvidia-smi (only what the script needs before its GPU test), then one whose nvidia-smi
    # fails as it does without a driver.
    os.symlink(subprocess.run(["bash", "-c", "command -v dirname"], capture_output=True, text=True).stdout.strip(),
               tmp_path / "dirname")
    for stub in (None, "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n"):
        if stub:
            (tmp_path / "nvidia-smi").write_text(stub)
            (tmp_path / "nvidia-smi").chmod(0o755)
        proc = subprocess.run(["/bin/bash", os.path.join(REPO, "ci", "gpu_check.sh")], capture_output=True, text=True,
                              env={"PATH": str(tmp_path)}, timeout=10)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            "ci/gpu_check.sh: no NVIDIA GPU on this machine (nvidia-smi missing or failing); nothing to check"]


def test_the_peer_runs_with_the_same_onednn_setting_as_the_project(monkeypatch):
    """The entry scripts turn oneDNN on unless the user chose; every run of the bench gets what they would."""
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert bench.child_env()["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert bench.child_env({"BENCH_IMAGE_SIZE": 96})["TF_ENABLE_ONEDNN_OPTS"] == "0"
