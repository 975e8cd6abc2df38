"""Checks one launcher run against the launcher contract (ci/launcher_contract.md); returns the reasons it fails.

Vendored: model tests use byte-identical copies (ci/vendored.toml); edit this file, then python ci/vendor.py sync.
"""
import glob
import json
import math
import os
import platform

SUMMARY_KEYS_BEFORE = ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime"]
ACCURACY_KEYS = ("TrainAccuracy", "Accuracy")
SUMMARY_KEYS_AFTER = ["ActualLoss", "E2ETrainingTime"]
NUMERIC_KEYS = ("RankSize", "BatchSize", "ActualFPS", "TrainingTime", "ActualLoss", "E2ETrainingTime")
RESULT_KEYS = ("model", "launcher", "device", "precision", "batch_size", "rank_size", "steps", "warmup_steps",
               "ms_per_step", "images_per_sec", "accuracy_name", "accuracy", "final_loss", "e2e_seconds")
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
        self.result = {}

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


def same(a, b):
    """Equal as printed: the logs and the summary round differently (4 decimals, 6 significant digits)."""
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4)


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
    if run.value("ActualLoss") is not None and not same(run.losses[-1], run.value("ActualLoss")):
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


def check_result(run):
    """result.json (run_report.write_result) in the reporting folder, and a summary built from it."""
    path = os.path.join(run.out_dir, "result.json")
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError) as error:
        return [f"no readable result record {path}: {error}"]
    run.result = record
    missing = [key for key in RESULT_KEYS if key not in record]
    if missing:
        return [f"result.json lacks {', '.join(missing)}"]
    problems = []
    accuracy = record["accuracy"]
    if accuracy is not None and not 0.0 <= accuracy <= 1.0:
        problems.append(f"result.json accuracy {accuracy} is not a fraction in 0..1")
    if record["images_per_sec"] is not None and record["ms_per_step"]:
        expected = record["batch_size"] * 1000.0 / record["ms_per_step"]
        if not math.isclose(record["images_per_sec"], expected, rel_tol=1e-3):
            problems.append(f"result.json images_per_sec {record['images_per_sec']} is not "
                            f"batch_size {record['batch_size']} * 1000 / ms_per_step {record['ms_per_step']}")
    # The launcher prints rates and ms with 2 decimals and the accuracy with 4 (finish_from_result).
    pairs = [("ActualFPS", "images_per_sec", 2), ("TrainingTime", "ms_per_step", 2), ("ActualLoss", "final_loss", None),
             (run.accuracy_key, "accuracy", 4), ("RankSize", "rank_size", None)]
    for summary_key, record_key, decimals in pairs:
        text, value = run.summary.get(summary_key), record[record_key]
        number = to_number(text)
        if value is None:
            agree = text == "NA"
        else:
            agree = number is not None and (same(number, value) or
                                            decimals is not None and abs(number - value) <= 0.5001 * 10 ** -decimals)
        if not agree:
            problems.append(f"summary {summary_key} = {text} but result.json {record_key} = {value}")
    if record["batch_size"] != run.value("BatchSize") * run.value("RankSize"):
        problems.append(f"result.json batch_size {record['batch_size']} is not the global batch "
                        f"{run.summary['BatchSize']} x {run.summary['RankSize']}")
    return problems


def read_scalars(folder):
    """{run: {tag: [(step, value), ...]}} of the TensorBoard event files under folder, where run is the event
    file's folder relative to folder ("." for folder itself). Reads TF1 (simple_value) and TF2 (tensor)
    scalars; TensorFlow is imported here only, so the launcher checks above stay light."""
    import tensorflow as tf
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"), recursive=True)):
        tags = runs.setdefault(os.path.relpath(os.path.dirname(path), folder), {})
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number = value.simple_value
                elif kind == "tensor":
                    array = tf.make_ndarray(value.tensor)
                    if array.ndim != 0 or array.dtype.kind not in "fiu":
                        continue
                    number = float(array)
                else:
                    continue
                tags.setdefault(value.tag, []).append((event.step, number))
    return runs


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
    return (check_loss_file(run) + check_final_block(run) + check_result(run)
            + check_learning(run, min_accuracy, loss_must_fall))
