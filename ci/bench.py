"""The zoo benchmark: each model's performance launcher against its plain Keras 3 peer, in one invocation.

    python ci/bench.py [--only MODEL] [--rounds N] [--precision float32|bf16|fp16|both] [--quick]

For every model (settings in ci/bench.toml) and precision mode it runs, in alternating rounds (project, peer,
in-memory peer, project, ...: a change in the load of a shared machine hits every side alike):
  project  <model>/test/<perf launcher> on the synthetic dataset of ci/datasets (the real on-disk format),
           --precision_mode=must_keep_origin_dtype (float32) or allow_mix_precision with ZOO_CPU_BF16=1 (bf16 on
           a CPU with avx512_bf16/amx_bf16 whatever zoo_precision's measured table says, fp16 on a GPU, else
           float32); images/sec and the precision used are the run's own record (result.json: steady state,
           run_report's timing rule)
  peer     <model>/benchmarks/keras_peer.py through ci/peer_timing.py: Keras `fit` on the model's own training
           input pipeline over the project's dataset (the same files, decoding and augmentation), the same
           batch, input size and optimizer; float32, or in the mixed mode mixed_bfloat16 where the CPU has
           native bf16 (mixed_float16 on a GPU, float32 elsewhere), so that both sides compute in the same dtype
  in-memory peer  the same peer fed synthetic in-memory images: its training step alone, without reading files
Also measured in the same invocation: the matmul roof (ci/matmul_roof.py, float32 and bfloat16), each run's
peak resident memory (ru_maxrss of its process tree, from os.wait4) and its achieved FLOP/s as a share of
the roof of the dtype it ran in (training FLOPs per image from ci/flops.py). With both modes it also sets each
model's measured bf16/float32 ratio beside zoo_precision.MEASURED_BF16's entry for this CPU kind, so that a
reader sees whether the table (which decides the launchers' default precision) needs updating. Writes
ci/work/bench.md and ci/work/bench.json (with the date, CPU model and flags, TensorFlow version); exits 1 if any
run failed.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ci import bench_infer, contract, flops, smoke  # noqa: E402
from ci.canonical import zoo_precision  # noqa: E402
from ci.matmul_roof import ROOF_RESULT  # noqa: E402
from ci.peer_timing import PEER_RESULT  # noqa: E402

# precision mode -> the launchers' --precision_mode, and their environment: the mixed mode measures bf16 on a
# CPU with native bf16 even where the table keeps the model float32 (no effect on other devices).
MODES = {"float32": "must_keep_origin_dtype", "mixed": "allow_mix_precision"}
MODE_ENV = {"float32": {}, "mixed": {zoo_precision.OVERRIDE: "1"}}
PRECISION_CHOICES = {"float32": ("float32",), "bf16": ("mixed",), "fp16": ("mixed",), "both": ("float32", "mixed")}
RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
# The launchers write to test/output/<this device number>, apart from a user's runs in output/0.
DEVICE_ID = os.environ.get("BENCH_DEVICE_ID", "6")
# What a run computed in (result.json's precision, the peer's Keras policy) -> the roof it is compared with.
ROOF_DTYPE = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16",
              "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
COLUMNS = ("model", "mode", "batch", "project img/s", "project dtype", "peer img/s", "peer dtype",
           "project/peer", "in-memory peer img/s", "project/in-memory peer", "project % roof", "peer % roof",
           "project peak MB", "peer peak MB")
# The runs of one round, in order; "peer" reads the project's files through the model's input pipeline.
SIDES = ("project", "peer", "peer_in_memory")


def schedule(models, modes, rounds):
    """[(model, mode, round, side)]: per model, each round runs every mode as project, peer, in-memory peer."""
    return [(model, mode, r, side) for model in models for r in range(1, rounds + 1) for mode in modes
            for side in SIDES]


def model_settings(config, model, quick):
    cfg = {k: v for k, v in config[model].items() if k != "quick"}
    if quick:
        cfg.update(config[model].get("quick", {}))
    return cfg


def peer_precision(mode, device, cpu_flag_set):
    if mode == "float32":
        return "float32"
    if device == "GPU":
        return "mixed_float16"
    return "mixed_bfloat16" if zoo_precision.cpu_kind(cpu_flag_set) else "float32"


def run_measured(command, cwd, env, log_path, timeout):
    """Runs command with stdout+stderr to log_path; (exit code, seconds, peak RSS MB of the process tree).

    os.wait4's ru_maxrss is the largest of the process and of every descendant it waited for (a launcher's
    bash waits for its python), so it is the run's peak resident memory."""
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    code = 124 if proc.returncode == -signal.SIGKILL else proc.returncode
    return code, time.time() - start, usage.ru_maxrss / 1024


def child_env(extra=None):
    """The environment of every run. oneDNN as the zoo's entry scripts set it (zoo_precision.prefer_onednn), for
    the peer and the inference timing too: both sides run the same kernels, so the ratio compares the code.
    (The peer, a plain Keras script, still imports matplotlib through Keras when it is installed; the entry
    scripts skip that, zoo_precision.before_tensorflow.)"""
    env = dict(os.environ, ASCEND_DEVICE_ID=DEVICE_ID)
    zoo_precision.prefer_onednn(env)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def read(path):
    with open(path, errors="replace") as handle:
        return handle.read()


def run_project(model, cfg, mode, round_no, work_dir):
    model_dir = os.path.join(REPO, model)
    launcher = cfg["launcher"]
    data = smoke.ensure_dataset(cfg["dataset"], os.path.dirname(work_dir))
    keep = os.path.join(work_dir, "runs", model, f"{mode}-r{round_no}")
    shutil.rmtree(keep, ignore_errors=True)
    os.makedirs(keep)
    command = ["bash", launcher, f"--data_path={data}", f"--{cfg['batch_flag']}={cfg['batch']}",
               f"--precision_mode={MODES[mode]}"] + cfg["args"]
    stdout_path = os.path.join(keep, "launcher.out")
    code, seconds, rss = run_measured(command, os.path.join(model_dir, "test"), child_env(MODE_ENV[mode]),
                                      stdout_path, cfg.get("timeout", 900))
    run = contract.Run(model_dir, launcher, read(stdout_path), DEVICE_ID)
    problems = contract.check(run, code)
    record = run.result  # result.json, read by the contract check
    result = {"side": "project", "images_per_sec": record.get("images_per_sec"),
              "precision": record.get("precision") or "-",
              "seconds": round(seconds, 1), "peak_rss_mb": round(rss, 1), "exit_code": code,
              "problems": problems, "outputs": os.path.relpath(keep, REPO)}
    keep_launcher_output(model_dir, keep)
    return result


def keep_launcher_output(model_dir, keep):
    """Moves the run's test/output/<id> (and its lock and .prev) under keep/, so that the next run starts fresh."""
    output = os.path.join(model_dir, "test", "output")
    for name in (DEVICE_ID, DEVICE_ID + ".prev"):
        if os.path.isdir(os.path.join(output, name)):
            os.rename(os.path.join(output, name), os.path.join(keep, "output" if name == DEVICE_ID else name))
    lock = os.path.join(output, DEVICE_ID + ".lock")
    if os.path.exists(lock):
        os.remove(lock)
    if not os.listdir(output):
        os.rmdir(output)  # the benchmark created it; leave the model folder as it found it


def run_peer(model, cfg, mode, round_no, work_dir, precision, side):
    """side "peer": on the project's dataset through the model's input pipeline; "peer_in_memory": on
    synthetic in-memory images."""
    keep = os.path.join(work_dir, "runs", model, f"{mode}-r{round_no}")
    os.makedirs(keep, exist_ok=True)
    peer = os.path.join(REPO, model, "benchmarks", "keras_peer.py")
    command = [sys.executable, os.path.join(REPO, "ci", "peer_timing.py"), peer, f"--batch={cfg['batch']}",
               f"--steps={cfg['peer_steps']}", f"--precision={precision}"]
    if side == "peer":
        command.append(f"--data_path={smoke.ensure_dataset(cfg['dataset'], os.path.dirname(work_dir))}")
    log_path = os.path.join(keep, f"{side}.log")
    code, seconds, rss = run_measured(command, REPO, child_env(cfg.get("peer_env")), log_path,
                                      cfg.get("timeout", 900))
    found = re.search("^" + PEER_RESULT + "(.*)$", read(log_path), re.M)
    rate = json.loads(found.group(1))["images_per_sec"] if found else None
    problems = [] if code == 0 and found else [f"peer exited {code} without a result (log: {log_path})"]
    return {"side": side, "images_per_sec": rate, "precision": precision, "seconds": round(seconds, 1),
            "peak_rss_mb": round(rss, 1), "exit_code": code, "problems": problems,
            "outputs": os.path.relpath(keep, REPO)}


def run_inference(model, cfg, training_results, modes, rounds, work_dir, quick, peer_precisions):
    """Exports the model's last good training run, then times graph and peer in alternating rounds per mode."""
    infer = cfg["infer"]
    keep = os.path.join(work_dir, "runs", model, "infer")
    shutil.rmtree(keep, ignore_errors=True)
    os.makedirs(keep)
    run_output = bench_infer.last_good_output(training_results, model)
    base = {"model": model, "side": "project", "batch": infer["batch"], "ms_per_batch": None}
    if run_output is None:
        return [dict(base, mode=modes[0], precision="-", problems=["no training run passed: nothing to export"])]
    export_log = os.path.join(keep, "export.log")
    code, _, _ = run_measured(bench_infer.export_command(infer, os.path.join(REPO, model),
                                                         os.path.join(REPO, run_output), keep),
                              keep, child_env(), export_log, cfg.get("timeout", 900))
    if code:
        return [dict(base, mode=modes[0], precision="-", problems=[f"export exited {code} (log: {export_log})"])]
    results = []
    for round_no in range(1, rounds + 1):
        for mode in modes:
            policy = peer_precisions[mode]
            for side, path, precision in bench_infer.sides(infer, os.path.join(keep, infer["graph"]),
                                                           os.path.join(REPO, model, "benchmarks", "keras_peer.py"),
                                                           policy):
                log_path = os.path.join(keep, f"{mode}-r{round_no}-{side}.log")
                code, _, _ = run_measured(bench_infer.timing_command(infer, side, path, precision, quick), REPO,
                                          child_env(cfg.get("peer_env")), log_path, cfg.get("timeout", 900))
                found = bench_infer.parse_result(read(log_path))
                problems = [] if code == 0 and found else [f"{side} exited {code} without a result (log: {log_path})"]
                results.append(dict(base, side=side, mode=mode, round=round_no, precision=precision,
                                    ms_per_batch=found and found["ms_per_batch"], problems=problems))
                print(f"  {model} inference {mode} round {round_no} {side}: "
                      f"{fmt(found and found['ms_per_batch'])} ms/batch of {infer['batch']} ({precision}), "
                      f"{'ok' if not problems else 'FAIL: ' + problems[0]}", flush=True)
    return results


def measure_roof(quick, work_dir):
    log_path = os.path.join(work_dir, "roof.log")
    size = "1024" if quick else "2048"
    code, _, _ = run_measured([sys.executable, os.path.join(REPO, "ci", "matmul_roof.py"), f"--size={size}"],
                              REPO, child_env(), log_path, 600)
    found = re.search("^" + ROOF_RESULT + "(.*)$", read(log_path), re.M)
    if code or not found:
        raise RuntimeError(f"ci/matmul_roof.py failed (exit {code}); see {log_path}")
    return json.loads(found.group(1))


def machine(roof):
    flags = zoo_precision.cpu_flags()
    model_name = "-"
    try:
        found = re.search(r"^model name\s*:\s*(.*)$", read("/proc/cpuinfo"), re.M)
        model_name = found.group(1).strip() if found else platform.processor() or "-"
    except OSError:
        pass
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "cpu_model": model_name,
            "cpus": os.cpu_count(), "cpu_flags": {f: f in flags for f in RELEVANT_FLAGS},
            "tf_version": roof["tf_version"], "device": roof["device"], "python": platform.python_version(),
            "TF_ENABLE_ONEDNN_OPTS": child_env()[zoo_precision.ONEDNN]}


def side_summary(runs, train_flops, roof_gflops):
    """Mean images/sec over the rounds, precision(s) used, achieved GFLOP/s, % of the roof, peak memory."""
    rates = [r["images_per_sec"] for r in runs if r["images_per_sec"]]
    precisions = sorted({r["precision"] for r in runs})
    mean = sum(rates) / len(rates) if rates else None
    achieved = mean * train_flops / 1e9 if mean else None
    roof = roof_gflops.get(ROOF_DTYPE.get(precisions[0], "")) if len(precisions) == 1 else None
    return {"rounds": [r["images_per_sec"] for r in runs], "images_per_sec": mean, "precision": "/".join(precisions),
            "gflops": achieved, "roof_gflops": roof, "roof_pct": 100 * achieved / roof if achieved and roof else None,
            "peak_rss_mb": max((r["peak_rss_mb"] for r in runs), default=None)}


def summarise(results, settings, roof_gflops):
    """One row per (model, mode) from the runs in schedule order."""
    rows = []
    for (model, mode) in dict.fromkeys((r["model"], r["mode"]) for r in results):
        cfg = settings[model]
        train_flops = flops.model_train_flops(model, **cfg.get("network", {}))
        sides = {side: side_summary([r for r in results if (r["model"], r["mode"], r["side"]) == (model, mode, side)],
                                    train_flops, roof_gflops) for side in SIDES}
        # Summed over the same rounds on every side, so a slow round weighs on all alike.
        totals = {s: sum(sides[s]["rounds"]) if sides[s]["rounds"] and all(sides[s]["rounds"]) else None
                  for s in SIDES}

        def ratio(peer):
            return totals["project"] / totals[peer] if totals["project"] and totals[peer] else None

        rows.append({"model": model, "mode": mode, "batch": cfg["batch"], "train_gflop_per_image": train_flops / 1e9,
                     **sides, "ratio": ratio("peer"), "ratio_in_memory": ratio("peer_in_memory")})
    return rows


def bf16_check(rows, kind):
    """Per model with both modes in rows: the project's measured bf16/float32 speed ratio (None unless its mixed
    run computed in bfloat16) beside MEASURED_BF16's entry for this CPU kind, and whether the table needs a change."""
    checks = []
    for model in dict.fromkeys(r["model"] for r in rows):
        project = {r["mode"]: r["project"] for r in rows if r["model"] == model}
        if set(project) != set(MODES):
            continue
        rates = (project["mixed"]["images_per_sec"], project["float32"]["images_per_sec"])
        measured = rates[0] / rates[1] if project["mixed"]["precision"] == "bfloat16" and all(rates) else None
        entry = zoo_precision.MEASURED_BF16.get((model, kind))
        table = entry.ratio if entry else None
        if kind is None:
            verdict = "this CPU has no native bf16: nothing to check"
        elif measured is None:
            verdict = f"no bf16 measurement (the mixed run computed in {project['mixed']['precision']})"
        elif table is None:
            verdict = f"not in the table: add it ({'bfloat16' if measured > 1 else 'float32'})"
        elif (measured > 1) == (table > 1):
            verdict = "agrees"
        else:
            verdict = f"disagrees: update the entry ({'bfloat16' if measured > 1 else 'float32'})"
        checks.append({"model": model, "cpu_kind": kind, "measured": measured, "table": table, "verdict": verdict})
    return checks


def bf16_lines(checks):
    kind = checks[0]["cpu_kind"] if checks else None
    lines = [f"## bf16 against the table (zoo_precision.MEASURED_BF16, CPU kind {kind or 'none'})", "",
             "| model | measured bf16/float32 | table entry | verdict |", "| --- | --- | --- | --- |"]
    return lines + [f"| {c['model']} | {fmt(c['measured'])} | {fmt(c['table'])} | {c['verdict']} |" for c in checks]


def fmt(value, digits=2):
    return "-" if value is None else f"{value:,.{digits}f}"


def table_rows(rows):
    return [[r["model"], r["mode"], str(r["batch"]), fmt(r["project"]["images_per_sec"]), r["project"]["precision"],
             fmt(r["peer"]["images_per_sec"]), r["peer"]["precision"], fmt(r["ratio"]),
             fmt(r["peer_in_memory"]["images_per_sec"]), fmt(r["ratio_in_memory"]), fmt(r["project"]["roof_pct"], 1),
             fmt(r["peer"]["roof_pct"], 1), fmt(r["project"]["peak_rss_mb"], 0), fmt(r["peer"]["peak_rss_mb"], 0)]
            for r in rows]


def markdown(info, roof, rows, settings_line, infer_rows, checks=()):
    flags = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in info["cpu_flags"].items())
    roofs = ", ".join(f"{d} {g:,.1f}" for d, g in roof["gflops"].items())
    lines = [f"# Zoo benchmark, {info['date']}", "",
             f"Machine: {info['cpu_model']}, {info['cpus']} CPUs ({flags}); device {info['device']}; "
             f"TensorFlow {info['tf_version']}; TF_ENABLE_ONEDNN_OPTS {info['TF_ENABLE_ONEDNN_OPTS']} for the project "
             "and the peer alike.",
             f"Matmul roof ({roof['size']}x{roof['size']}, GFLOP/s): {roofs}.", f"Settings: {settings_line}.",
             "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows)]
    lines += ["", "images/sec: mean over the rounds (project: the steady-state images/sec of the run's result.json; "
              "peer: Keras fit after 3 warm-up steps, reading the project's dataset through the model's own input "
              "pipeline; in-memory peer: the same on synthetic in-memory images, its training step alone); "
              "project/peer: ratio of the summed rates of the alternating rounds; % roof: images/sec x training "
              "FLOPs per image (ci/flops.py: 3 x forward "
              "conv/dense MACs x 2) over the matmul roof of the dtype the run computed in; peak MB: ru_maxrss "
              "of the run's process tree."]
    if checks:
        lines += [""] + bf16_lines(checks)
    if infer_rows:
        lines += ["", "## Inference", ""] + bench_infer.markdown_lines(infer_rows, fmt)
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="models whose directory name contains this text")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3, --quick 1)")
    parser.add_argument("--precision", choices=sorted(PRECISION_CHOICES), default="both",
                        help="float32, the mixed mode (bf16 on CPU, fp16 on GPU; bf16 and fp16 are one mode), "
                             "or both")
    parser.add_argument("--quick", action="store_true", help="tiny runs: checks the pipeline, not the speed")
    parser.add_argument("--no_inference", action="store_true",
                        help="training only (by default models with an infer table are also timed at inference)")
    parser.add_argument("--config", default=os.path.join(REPO, "ci", "bench.toml"))
    parser.add_argument("--work_dir", default=os.path.join(REPO, "ci", "work", "bench"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    with open(args.config, "rb") as handle:
        config = tomllib.load(handle)
    models = [m for m in config if args.only in m]
    if not models:
        print(f"[Error] ci/bench.py: no model in {args.config} matches {args.only!r}")
        return 1
    os.makedirs(args.work_dir, exist_ok=True)
    settings = {m: model_settings(config, m, args.quick) for m in models}
    modes = PRECISION_CHOICES[args.precision]
    roof = measure_roof(args.quick, args.work_dir)
    info = machine(roof)
    print(f"bench: {len(models)} models, modes {', '.join(modes)}, {rounds} round(s) on {info['cpu_model']} "
          f"({info['device']}); matmul roof GFLOP/s: " + ", ".join(f"{d} {g:.1f}" for d, g in roof["gflops"].items()),
          flush=True)
    flag_set = zoo_precision.cpu_flags()
    results = []
    for model, mode, round_no, side in schedule(models, modes, rounds):
        cfg = settings[model]
        if side == "project":
            result = run_project(model, cfg, mode, round_no, args.work_dir)
        else:
            result = run_peer(model, cfg, mode, round_no, args.work_dir, peer_precision(mode, info["device"], flag_set),
                              side)
        result.update(model=model, mode=mode, round=round_no)
        results.append(result)
        state = "ok" if not result["problems"] else "FAIL: " + "; ".join(result["problems"])
        print(f"  {model} {mode} round {round_no} {side}: {fmt(result['images_per_sec'])} images/sec "
              f"({result['precision']}), {result['peak_rss_mb']:.0f} MB, {result['seconds']:.0f} s, {state}",
              flush=True)
    infer_results = []
    peer_precisions = {mode: peer_precision(mode, info["device"], flag_set) for mode in modes}
    for model in models:
        if "infer" in settings[model] and not args.no_inference:
            infer_results += run_inference(model, settings[model], results, modes, rounds, args.work_dir, args.quick,
                                           peer_precisions)
    rows = summarise(results, settings, roof["gflops"])
    checks = bf16_check(rows, zoo_precision.cpu_kind(flag_set)) if info["device"] == "CPU" else []
    infer_rows = bench_infer.rows(infer_results)
    settings_line = f"{'quick' if args.quick else 'full'} runs, {rounds} round(s), ci/bench.toml"
    text = markdown(info, roof, rows, settings_line, infer_rows, checks)
    out_dir = os.path.dirname(args.work_dir)
    with open(os.path.join(out_dir, "bench.md"), "w") as handle:
        handle.write(text)
    with open(os.path.join(out_dir, "bench.json"), "w") as handle:
        json.dump({"machine": info, "roof": roof, "quick": args.quick, "rounds": rounds,
                   "flops_rule": flops.__doc__.split("\n\n")[1].replace("\n", " "), "rows": rows, "runs": results,
                   "bf16_check": checks,
                   "inference_rows": infer_rows, "inference_runs": infer_results},
                  handle, indent=1)
    print(text)
    failed = [r for r in results + infer_results if r["problems"]]
    print(f"bench: {len(results) + len(infer_results) - len(failed)} runs ok, {len(failed)} failed; table in "
          f"{os.path.join(out_dir, 'bench.md')}, data in {os.path.join(out_dir, 'bench.json')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
