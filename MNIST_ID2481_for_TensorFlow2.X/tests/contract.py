"""Checks one launcher run against the launcher contract (ci/launcher_contract.md); returns the reasons it fails.

Vendored: model tests use byte-identical copies (ci/vendored.toml); edit this file, then python ci/vendor.py sync.
"""
import glob
import math
import os
import platform

SUMMARY_KEYS_BEFORE = ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime"]
ACCURACY_KEYS = ("TrainAccuracy", "Accuracy")
SUMMARY_KEYS_AFTER = ["ActualLoss", "E2ETrainingTime"]
NUMERIC_KEYS = ("RankSize", "BatchSize", "ActualFPS", "TrainingTime", "ActualLoss", "E2ETrainingTime")
FINAL_BLOCK = ("------------------ Final result ------------------", "Final Performance images/sec :",
               "Final Train Accuracy :", "E2E Training Duration sec :")


class Run:
    """What one launcher left behind: its stdout, its output folder and the parsed summary."""

    def __init__(self, model_dir, launcher, stdout, device_id="0"):
        self.model_dir = model_dir
        self.launcher = launcher
        self.stdout = stdout
        if self.multi_device:
            device_id = last_rank_folder(model_dir) or device_id
        self.out_dir = os.path.join(model_dir, "test", "output", device_id)
        self.device_id = device_id
        self.summary = {}
        self.losses = []

    @property
    def network(self):
        return os.path.basename(self.model_dir)

    @property
    def multi_device(self):
        return "_8p" in self.launcher

    @property
    def kind(self):
        return "acc" if self.launcher.startswith("train_full") else "perf"

    @property
    def accuracy_key(self):
        return next((k for k in ACCURACY_KEYS if k in self.summary), None)

    def value(self, key):
        return to_number(self.summary.get(key, ""))


def to_number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def last_rank_folder(model_dir):
    """The folder an 8p launcher reports in: as the originals, the last rank's output/<RANK_SIZE - 1>/, the
    one holding the newest summary (*.log that is not train_/eval_) under test/output/<digits>/."""
    summaries = [path for path in glob.glob(os.path.join(model_dir, "test", "output", "*", "*.log"))
                 if os.path.basename(os.path.dirname(path)).isdigit()
                 and not os.path.basename(path).startswith(("train_", "eval_"))]
    return os.path.basename(os.path.dirname(max(summaries, key=os.path.getmtime))) if summaries else None


def check_rank_logs(run):
    """An 8p run leaves output/<r>/train_<r>.log for every rank r and reports in the last rank's folder."""
    size = int(run.value("RankSize"))
    if run.device_id != str(size - 1):
        return [f"the summary of a {size}-rank run is in output/{run.device_id}, not output/{size - 1}"]
    return [f"no training log test/output/{r}/train_{r}.log of rank {r}" for r in range(size)
            if not os.path.isfile(os.path.join(run.model_dir, "test", "output", str(r), f"train_{r}.log"))]


def parse_summary(path):
    pairs = []
    with open(path) as handle:
        for line in handle:
            if line.strip():
                key, sep, value = line.partition(" = ")
                pairs.append((key.strip(), value.strip() if sep else None))
    return pairs


def find_summary(run):
    """The summary is the one *.log in the output folder that is not a train_/eval_ log."""
    if not os.path.isdir(run.out_dir):
        return None, [f"no output folder test/output/{run.device_id}"]
    names = [n for n in os.listdir(run.out_dir)
             if n.endswith(".log") and not n.startswith(("train_", "eval_"))]
    if len(names) != 1:
        return None, [f"expected one summary *.log in {run.out_dir}, found {sorted(names) or 'none'}"]
    return os.path.join(run.out_dir, names[0]), []


def check_summary(run, summary_path):
    pairs = parse_summary(summary_path)
    problems = [f"summary line without ' = ': {k!r}" for k, v in pairs if v is None]
    run.summary = {k: v for k, v in pairs if v is not None}
    keys = [k for k, _ in pairs]
    accuracy = [k for k in keys if k in ACCURACY_KEYS]
    if len(accuracy) != 1:
        return problems + [f"summary needs exactly one of {ACCURACY_KEYS}, has {accuracy or 'none'}"]
    expected = SUMMARY_KEYS_BEFORE + accuracy + SUMMARY_KEYS_AFTER
    if keys != expected:
        return problems + [f"summary keys {keys} differ from the contract's {expected}"]
    for key in NUMERIC_KEYS:
        if run.value(key) is None or not math.isfinite(run.value(key)):
            problems.append(f"summary {key} = {run.summary[key]!r} is not a finite number")
    acc = run.summary[accuracy[0]]
    if not (acc == "NA" and run.kind == "perf") and run.value(accuracy[0]) is None:
        problems.append(f"summary {accuracy[0]} = {acc!r} is not a number (NA only in a perf run)")
    if run.summary["Network"] != run.network:
        problems.append(f"Network = {run.summary['Network']} but the directory is {run.network}")
    if run.summary["DeviceType"] != platform.machine():
        problems.append(f"DeviceType = {run.summary['DeviceType']} but uname -m is {platform.machine()}")
    case = run.summary["CaseName"]
    prefix = f"{run.network}_bs{run.summary['BatchSize']}_{run.summary['RankSize']}p_"
    if not case.startswith(prefix) or not case.endswith(run.kind):
        problems.append(f"CaseName {case} is not {prefix}<...>{run.kind}")
    if os.path.basename(summary_path) != case + ".log":
        problems.append(f"summary file {os.path.basename(summary_path)} is not named {case}.log")
    return problems


def check_loss_file(run):
    case = run.summary.get("CaseName", "")
    for name in (f"train_{case}_loss.txt", f"{case}_loss.txt"):
        path = os.path.join(run.out_dir, name)
        if os.path.isfile(path):
            break
    else:
        return [f"no loss file train_{case}_loss.txt (or {case}_loss.txt)"]
    with open(path) as handle:
        run.losses = [to_number(line) for line in handle if line.strip()]
    if not run.losses:
        return [f"{name} is empty"]
    if any(v is None or not math.isfinite(v) for v in run.losses):
        return [f"{name} holds a value that is not a finite number"]
    if run.value("ActualLoss") is not None and not math.isclose(run.losses[-1], run.value("ActualLoss"), rel_tol=1e-6):
        return [f"ActualLoss {run.summary['ActualLoss']} is not the last value of {name}"]
    return []


def check_final_block(run):
    lines = [line.strip() for line in run.stdout.splitlines() if line.strip()][-4:]
    if len(lines) < 4 or lines[0] != FINAL_BLOCK[0] or not all(
            line.startswith(prefix) for line, prefix in zip(lines[1:], FINAL_BLOCK[1:])):
        return ["stdout does not end with the four-line 'Final result' block"]
    values = [line.rsplit(":", 1)[1].strip() for line in lines[1:]]
    problems = []
    if to_number(values[0]) != run.value("ActualFPS"):
        problems.append(f"final block images/sec {values[0]} != ActualFPS {run.summary.get('ActualFPS')}")
    if run.accuracy_key and values[1] != run.summary[run.accuracy_key]:
        problems.append(f"final block accuracy {values[1]} != {run.accuracy_key} {run.summary[run.accuracy_key]}")
    if to_number(values[2]) != run.value("E2ETrainingTime"):
        problems.append(f"final block duration {values[2]} != E2ETrainingTime {run.summary.get('E2ETrainingTime')}")
    return problems


def check_learning(run, min_accuracy=None, loss_must_fall=False):
    """Synthetic smoke data is learnable, so a real run must do better than chance."""
    problems = []
    if min_accuracy is not None and run.accuracy_key:
        accuracy = run.value(run.accuracy_key)
        if accuracy is None or accuracy < min_accuracy:
            problems.append(f"{run.accuracy_key} {run.summary[run.accuracy_key]} below {min_accuracy}")
    if loss_must_fall and len(run.losses) >= 4:
        k = max(1, len(run.losses) // 10)
        first, last = sum(run.losses[:k]) / k, sum(run.losses[-k:]) / k
        if not last < first:
            problems.append(f"loss did not fall (first {k}: {first:.4f}, last {k}: {last:.4f})")
    return problems


def check(run, exit_code, min_accuracy=None, loss_must_fall=False):
    """All contract checks for one run; an empty list means PASS."""
    if exit_code != 0:
        tail = [line for line in run.stdout.splitlines() if line.strip()][-1:] or ["no output"]
        return [f"exit code {exit_code}: {tail[0]}"]
    if not os.path.isfile(os.path.join(run.out_dir, f"train_{run.device_id}.log")):
        return [f"no training log test/output/{run.device_id}/train_{run.device_id}.log"]
    summary_path, problems = find_summary(run)
    if summary_path is None:
        return problems
    problems = check_summary(run, summary_path)
    if not problems and run.multi_device:
        problems = check_rank_logs(run)
    if problems:
        return problems
    return (check_loss_file(run) + check_final_block(run)
            + check_learning(run, min_accuracy, loss_must_fall))
