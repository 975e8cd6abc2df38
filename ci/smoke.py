"""The smoke harness: runs every launcher <model>/test/train_*.sh in smoke mode and checks the contract.

    python ci/smoke.py [--only SUBSTRING] [--root DIR] [--config FILE] [--work_dir DIR]

Launchers are discovered, so a new one is picked up without changing this file; its smoke arguments
come from ci/smoke.toml. Prints one row per launcher and exits 1 if any row fails. For a CI job it leaves,
under --work_dir (default ci/work):
  smoke-junit.xml                    one JUnit test case per launcher (failure message and log tail)
  runs/<model>/<launcher>/output/    what the launcher left in <model>/test/output (also after a failure
                                     or a timeout), so the next launcher of the model cannot overwrite it
A model's own test/output from an earlier user run is moved aside while its launchers run and put back.
"""
import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ci import contract, device  # noqa: E402
from ci.datasets import GENERATORS  # noqa: E402

COLUMNS = ("model", "launcher", "device", "precision", "seconds", "images/sec", "accuracy", "loss", "result")
# TensorFlow's start-up chatter, which would otherwise fill the tail shown for a failed launcher.
BANNER = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] |WARNING: All log messages before absl|"
                    r"I0000 |W0000 |E0000 |To enable the following instructions|oneDNN custom operations|"
                    r"WARNING:tensorflow:|.*cuda_?(dnn|blas|fft)|.*computation placer|.*TF-TRT)")
TAIL_LINES = 8


def discover(root):
    return sorted(glob.glob(os.path.join(root, "*", "test", "train_*.sh")))


def ensure_dataset(name, work_dir):
    """Generates a dataset once; the .complete stamp marks a folder that was fully written."""
    target = os.path.join(work_dir, "datasets", name)
    if os.path.isfile(os.path.join(target, ".complete")):
        return target
    if name not in GENERATORS:
        raise KeyError(f"unknown dataset generator {name!r} (known: {sorted(GENERATORS)})")
    shutil.rmtree(target, ignore_errors=True)
    GENERATORS[name](target)
    open(os.path.join(target, ".complete"), "w").close()
    return target


def settings(config, model, launcher):
    model_cfg = config.get(model)
    if model_cfg is None:
        return None
    merged = {k: v for k, v in model_cfg.items() if k != "launchers"}
    own = model_cfg.get("launchers", {}).get(launcher, {})
    merged["args"] = list(model_cfg.get("args", [])) + list(own.get("args", []))
    merged["env"] = {**model_cfg.get("env", {}), **own.get("env", {})}
    for key in ("min_accuracy", "loss_must_fall", "timeout", "dataset"):
        if key in own:
            merged[key] = own[key]
    return merged


def run_launcher(path, cfg, work_dir):
    """Runs one launcher from inside its test/ folder, as the originals' READMEs do."""
    model_dir = os.path.dirname(os.path.dirname(path))
    launcher = os.path.basename(path)
    data_path = ensure_dataset(cfg["dataset"], work_dir)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update({k: str(v) for k, v in cfg["env"].items()})
    command = ["bash", launcher, f"--data_path={data_path}"] + cfg["args"]
    start = time.time()
    # Its own process group, so that a timeout stops the launcher's training processes too (they hold the
    # output pipes; killing bash alone would leave them running and this harness waiting).
    proc = subprocess.Popen(command, cwd=os.path.dirname(path), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=cfg.get("timeout", 600))
        code = proc.returncode
    except subprocess.TimeoutExpired as err:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, _ = proc.communicate()
        code, stdout = 124, (stdout or "") + f"\n[Error] ci/smoke.py: timed out after {err.timeout} s"
    seconds = time.time() - start
    run = contract.Run(model_dir, launcher, stdout, env.get("ASCEND_DEVICE_ID", "0"))
    problems = contract.check(run, code, cfg.get("min_accuracy"), cfg.get("loss_must_fall", False))
    return run, seconds, problems


def meaningful_tail(text, count=TAIL_LINES):
    """The last lines of a log that are not TensorFlow's start-up banner."""
    lines = [line for line in text.splitlines() if line.strip() and not BANNER.match(line)]
    return lines[-count:]


def precision_used(log_path):
    """What the training log says it ran in (models print 'precision: <dtype>[ mixed] (...)' first)."""
    try:
        with open(log_path, errors="replace") as handle:
            for line in handle:
                found = re.search(r"precision: ([\w.]+(?: mixed)?)", line)
                if found:
                    return found.group(1)
    except OSError:
        pass
    return "-"


def keep_outputs(model_dir, launcher, work_dir):
    """Moves <model>/test/output to runs/<model>/<launcher>/output; returns the training log's new path."""
    target = os.path.join(work_dir, "runs", os.path.basename(model_dir), launcher)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    source = os.path.join(model_dir, "test", "output")
    if os.path.isdir(source):
        os.rename(source, os.path.join(target, "output"))
    return os.path.join(target, "output")


def row_for(path, config, work_dir, device_name):
    """(row, failure text or None, log tail)."""
    model_dir = os.path.dirname(os.path.dirname(path))
    model, launcher = os.path.basename(model_dir), os.path.basename(path)
    cfg = settings(config, model, launcher)
    if cfg is None:
        return [model, launcher, device_name, "-", "-", "-", "-", "-", f"FAIL: no [{model}] table in ci/smoke.toml"], []
    run, seconds, problems = run_launcher(path, cfg, work_dir)
    kept = keep_outputs(model_dir, launcher, work_dir)
    log = os.path.join(kept, run.device_id, f"train_{run.device_id}.log")
    accuracy = run.summary.get(run.accuracy_key, "-") if run.accuracy_key else "-"
    loss = contract.to_number(run.summary.get("ActualLoss"))
    result = "PASS"
    tail = []
    if problems:
        result = "FAIL: " + "; ".join(problems) + f" (log: {os.path.relpath(log, REPO)})"
        try:
            with open(log, errors="replace") as handle:
                tail = meaningful_tail(handle.read())
        except OSError:
            tail = meaningful_tail(run.stdout)
    row = [model, launcher, device_name, precision_used(log), f"{seconds:.0f}", run.summary.get("ActualFPS", "-"),
           accuracy, "-" if loss is None else f"{loss:.4f}", result]
    return row, tail


def format_table(rows):
    widths = [max(len(str(r[i])) for r in [COLUMNS] + rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for r in [COLUMNS] + rows:
        lines.append(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " | " + str(r[-1]))
    lines.insert(1, "-+-".join("-" * w for w in widths) + "-+-------")
    return "\n".join(lines)


def write_junit(path, results):
    suite = ET.Element("testsuite", name="smoke", tests=str(len(results)),
                       failures=str(sum(not row[-1].startswith("PASS") for row, _ in results)))
    for row, tail in results:
        seconds = row[COLUMNS.index("seconds")]
        case = ET.SubElement(suite, "testcase", classname=row[0], name=row[1],
                             time=seconds if seconds != "-" else "0")
        if not row[-1].startswith("PASS"):
            failure = ET.SubElement(case, "failure", message=row[-1])
            failure.text = "\n".join(tail)
    ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)


def run_model_launchers(model_dir, paths, config, work_dir, device_name):
    """A user's own <model>/test/output is moved aside while the harness runs the model and put back after."""
    output = os.path.join(model_dir, "test", "output")
    parked = output + ".before-smoke"
    if os.path.isdir(output) and not os.path.exists(parked):
        os.rename(output, parked)
    results = []
    try:
        for path in paths:
            row, tail = row_for(path, config, work_dir, device_name)
            results.append((row, tail))
            print(f"  {row[0]}/test/{row[1]}: {row[-1]}", flush=True)
            for line in tail:
                print(f"      {line}", flush=True)
    finally:
        if os.path.isdir(parked):
            shutil.rmtree(output, ignore_errors=True)
            os.rename(parked, output)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=REPO, help="folder holding the model directories")
    parser.add_argument("--config", default=os.path.join(REPO, "ci", "smoke.toml"))
    parser.add_argument("--work_dir", default=os.path.join(REPO, "ci", "work"),
                        help="generated datasets, kept launcher outputs and smoke-junit.xml")
    parser.add_argument("--only", default="", help="run launchers whose path contains this text")
    args = parser.parse_args(argv)
    with open(args.config, "rb") as handle:
        config = tomllib.load(handle)
    launchers = [p for p in discover(args.root) if args.only in p]
    if not launchers:
        print(f"[Error] no launcher */test/train_*.sh under {args.root} matches {args.only!r}")
        return 1
    device_name = device.detect()
    print(f"smoke harness: {len(launchers)} launchers on {device_name}; outputs kept in "
          f"{os.path.join(args.work_dir, 'runs')}", flush=True)
    results = []
    by_model = {}
    for path in launchers:
        by_model.setdefault(os.path.dirname(os.path.dirname(path)), []).append(path)
    for model_dir, paths in by_model.items():
        results += run_model_launchers(model_dir, paths, config, args.work_dir, device_name)
    rows = [row for row, _ in results]
    print(format_table(rows))
    os.makedirs(args.work_dir, exist_ok=True)
    junit = os.path.join(args.work_dir, "smoke-junit.xml")
    write_junit(junit, results)
    failed = sum(not r[-1].startswith("PASS") for r in rows)
    print(f"smoke: {len(rows) - failed} passed, {failed} failed (JUnit: {junit})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
