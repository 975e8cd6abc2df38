"""The smoke harness: runs every launcher <model>/test/train_*.sh in smoke mode and checks the contract.

    python ci/smoke.py [--only SUBSTRING] [--root DIR] [--config FILE]

Launchers are discovered, so a new one is picked up without changing this file; its smoke arguments
come from ci/smoke.toml. Prints one row per launcher and exits 1 if any row fails.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ci import contract, device  # noqa: E402
from ci.datasets import GENERATORS  # noqa: E402

COLUMNS = ("model", "launcher", "device", "seconds", "images/sec", "accuracy", "loss", "result")


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
    try:
        proc = subprocess.run(command, cwd=os.path.dirname(path), env=env, capture_output=True, text=True,
                              timeout=cfg.get("timeout", 600))
        code, stdout = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        code, stdout = 124, f"timed out after {err.timeout} s"
    seconds = time.time() - start
    run = contract.Run(model_dir, launcher, stdout, env.get("ASCEND_DEVICE_ID", "0"))
    problems = contract.check(run, code, cfg.get("min_accuracy"), cfg.get("loss_must_fall", False))
    return run, seconds, problems


def row_for(path, config, work_dir, device_name):
    model = os.path.basename(os.path.dirname(os.path.dirname(path)))
    launcher = os.path.basename(path)
    cfg = settings(config, model, launcher)
    if cfg is None:
        return [model, launcher, device_name, "-", "-", "-", "-", f"FAIL: no [{model}] table in ci/smoke.toml"]
    run, seconds, problems = run_launcher(path, cfg, work_dir)
    accuracy = run.summary.get(run.accuracy_key, "-") if run.accuracy_key else "-"
    result = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    return [model, launcher, device_name, f"{seconds:.0f}", run.summary.get("ActualFPS", "-"), accuracy,
            run.summary.get("ActualLoss", "-"), result]


def format_table(rows):
    widths = [max(len(str(r[i])) for r in [COLUMNS] + rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for r in [COLUMNS] + rows:
        lines.append(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " | " + str(r[-1]))
    lines.insert(1, "-+-".join("-" * w for w in widths) + "-+-------")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=REPO, help="folder holding the model directories")
    parser.add_argument("--config", default=os.path.join(REPO, "ci", "smoke.toml"))
    parser.add_argument("--work_dir", default=os.path.join(REPO, "ci", "work"), help="generated datasets")
    parser.add_argument("--only", default="", help="run launchers whose path contains this text")
    args = parser.parse_args(argv)
    with open(args.config, "rb") as handle:
        config = tomllib.load(handle)
    launchers = [p for p in discover(args.root) if args.only in p]
    if not launchers:
        print(f"[Error] no launcher */test/train_*.sh under {args.root} matches {args.only!r}")
        return 1
    device_name = device.detect()
    print(f"smoke harness: {len(launchers)} launchers on {device_name}", flush=True)
    rows = []
    for path in launchers:
        rows.append(row_for(path, config, args.work_dir, device_name))
        print(f"  {rows[-1][0]}/test/{rows[-1][1]}: {rows[-1][-1]}", flush=True)
    print(format_table(rows))
    failed = sum(not r[-1].startswith("PASS") for r in rows)
    print(f"smoke: {len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
