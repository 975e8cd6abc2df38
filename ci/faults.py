"""The fault harness: kills, moves, SIGTERMs and feeds bad inputs to each model's real launcher.

    python ci/faults.py [--only MODEL] [--seed N] [--kills N]      (bash ci/faults.sh sets up .venv first)

Per model (settings: ci/smoke.toml, then ci/faults.toml), on the smoke datasets (ci/work/datasets):
  kills      a fresh run, SIGKILLed (the launcher's whole process group) at seeded random moments, some the
             instant TensorFlow's temporary save files appear (a kill inside a save), each followed by
             `--resume=True`. A kill is lost when the next launch fails on its own or starts behind the newest
             checkpoint that was on disk when it was killed.
  moved      a partial run is killed after a checkpoint, output/0 is moved away and back as output/5, and
             ASCEND_DEVICE_ID=5 --resume=True must continue (its first step is not 1).
  SIGTERM    that run gets SIGTERM: exit 143, one `[Error] stopped by SIGTERM ...` line; the next
             --resume=True continues after it. It runs to the end: exit 0, a summary with the contract's
             keys, step lines covering 1..total_steps (repeats after a resume are fine), and none of the
             unfinished save files the kills left.
  NaN        a fresh run with a huge learning rate: exit 1, one [Error] line saying `is nan`/`is inf`, no
             Traceback, no checkpoint newer than the last finite step.
  exports    the export users run after training (`export` in ci/faults.toml: a frozen graph, a SavedModel),
             from the finished run: once whole, then SIGKILLed at seeded moments, some the instant it starts
             writing (a `<name>.partial` appears or an output changes); after each kill every output must be
             whole (or wait whole at `<name>.earlier`, the moment between a folder swap's two renames), and a
             last export must end with exit 0, whole outputs and nothing left beside them.
  bad inputs no --data_path, a missing / empty / another model's data folder, a bad flag value, a cut data
             file, a second launcher on the device in use: each must exit non-zero with exactly one
             `[Error]` line and no Traceback, and leave the finished run's files in output/5 (or output/5.prev).
             No room: a fresh run under a file size limit of half a checkpoint (how a full disk fails, without
             filling one) must say so in one `[Error]` line and leave nothing of the failed save behind.
A model's own test/output is parked under ci/work/faults/<model>/ while it runs and put back; what the harness
left is kept as ci/work/faults/<model>/output. Writes ci/work/faults.json and ci/work/faults.md; exits 1 if a
run was lost or a check failed.
"""
import argparse
import datetime
import glob
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ci import contract  # noqa: E402
from ci.canonical.run_safety import EARLIER, PARTIAL  # noqa: E402  (what write_whole / replace_folder leave)
from ci.smoke import ensure_dataset, settings  # noqa: E402

# Names TensorFlow gives a checkpoint while it is being written: the V2 saver's <prefix>_temp/ folder (older
# builds: <prefix>_temp_<uuid>), the state file's checkpoint.tmp<uuid>, TF2's *.tempstate<n> files.
TEMP_NAME = re.compile(r"_temp|\.tmp|tempstate")
CHECKPOINT_INDEX = re.compile(r"-(\d+)\.index$")
KILL_SIGNALED = (-signal.SIGKILL, 128 + signal.SIGKILL)
COLUMNS = ("model", "kills survived", "in a save", "runs lost", "moved resume", "SIGTERM", "NaN",
           "bad inputs handled", "export kills", "seconds")
MOVED_DEVICE, NAN_DEVICE, NO_ROOM_DEVICE = "5", "6", "7"
POLL = 0.002  # seconds between looks at the output folder while waiting for a save to start


# ---- the harness's own logic (unit-tested in ci/tests/test_faults.py) --------------------------------

class StepParser:
    """Global step numbers (and loss texts) from a model's per-step log lines."""

    def __init__(self, pattern, steps_per_epoch=None):
        self.pattern = re.compile(pattern, re.M)
        self.steps_per_epoch = steps_per_epoch

    def parse(self, text):
        found = []
        for match in self.pattern.finditer(text):
            step = int(match.group("step"))
            if "epoch" in match.groupdict() and match.group("epoch") is not None:
                step += (int(match.group("epoch")) - 1) * self.steps_per_epoch
            found.append((step, match.group("loss")))
        return found


def missing_steps(steps, total):
    """The ranges (first, last) of 1..total that no step line covers."""
    seen = set(steps)
    gaps, start = [], None
    for step in range(1, total + 1):
        if step not in seen and start is None:
            start = step
        elif step in seen and start is not None:
            gaps.append((start, step - 1))
            start = None
    if start is not None:
        gaps.append((start, total))
    return gaps


def describe_gaps(gaps):
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps)


def kill_plan(seed, model, kills, save_share=0.4):
    """[(kind, fraction)] for kills 2..kills (the first ends the calibration run): kind "save" waits for a
    checkpoint save to start, "time" kills at fraction of the launch's window. The same seed and model give the
    same plan, and the models' plans differ."""
    rng = random.Random(f"{seed}:{model}")
    return [("save" if rng.random() < save_share else "time", rng.random()) for _ in range(max(kills - 1, 0))]


def error_lines(console):
    return [line for line in console.splitlines() if line.startswith("[Error]")]


def verdict(code, console, intact=True, must_say=None):
    """'' when a launch failed as the project promises, else why not."""
    errors = error_lines(console)
    if code == 0:
        return "exit 0"
    if code in KILL_SIGNALED or code == 124:
        return "did not end (killed by the harness)"
    if "Traceback" in console:
        return "a Traceback on the console"
    if len(errors) != 1:
        return f"{len(errors)} [Error] lines"
    if must_say and not re.search(must_say, errors[0]):
        return f"the [Error] line does not say {must_say!r}: {errors[0][:120]}"
    if not intact:
        return "the previous run's files are gone"
    return ""


def snapshot(folder):
    """{relative path: size} of a run's files other than logs (checkpoints, summaries, exports)."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            if not name.endswith(".log") and os.path.isfile(path):
                files[os.path.relpath(path, folder)] = os.path.getsize(path)
    return files


def still_there(before, folders):
    """Every file of the snapshot, same size, in one of folders (a fresh run keeps the old one as .prev)."""
    return any(before and all(snapshot(folder).get(path) == size for path, size in before.items())
               for folder in folders if os.path.isdir(folder))


def checkpoint_numbers(folder):
    """N of every <prefix>-N.index under folder (an index is written last: the checkpoint is complete)."""
    numbers = []
    for root, _, names in os.walk(folder):
        for name in names:
            match = CHECKPOINT_INDEX.search(name)
            if match and not TEMP_NAME.search(root):
                numbers.append(int(match.group(1)))
    return sorted(numbers)


def save_files(folder):
    """The paths under folder that TensorFlow names a save in progress, as they are found (the poll needs one)."""
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            if TEMP_NAME.search(name):
                yield os.path.join(root, name)


def saving_now(folder):
    return next(save_files(folder), None) is not None


def export_files(path):
    """{relative path: size} of an export: a file, or every file of a folder ({} when there is none)."""
    if os.path.isfile(path):
        return {os.path.basename(path): os.path.getsize(path)}
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            files[os.path.relpath(os.path.join(root, name), path)] = os.path.getsize(os.path.join(root, name))
    return files


# A serialised graph's size varies by a few bytes from one export of the same checkpoint to the next (function
# names carry a per-process counter, fingerprints are varints); a file cut by a kill lacks a whole write.
PROTO_SLACK = 64


def same_export(found, whole):
    """Whether found ({relative path: size}) is the whole export: the same files, each of the same size, a
    serialised graph (*.pb) within PROTO_SLACK bytes of it."""
    return found.keys() == whole.keys() and all(
        abs(size - whole[name]) <= (PROTO_SLACK if name.endswith(".pb") else 0) for name, size in found.items())


def half_exports(outputs, whole):
    """Why the exports at outputs are not whole after a kill (empty: they are). whole: {output: export_files of
    a complete export}. Sizes, not bytes, are compared: a frozen graph's serialisation order varies from one
    export to the next. An output missing while <output>.earlier holds a whole one is the window between
    replace_folder's two renames, which the next export heals."""
    why = []
    for path in outputs:
        found = export_files(path)
        if same_export(found, whole[path]):
            continue
        if not os.path.exists(path) and same_export(export_files(path + EARLIER), whole[path]):
            continue
        why.append(f"{os.path.basename(path)}: " + (
            "missing" if not found else f"{len(found)} file(s), {sum(found.values())} bytes, whole: "
            f"{len(whole[path])} file(s), {sum(whole[path].values())} bytes"))
    return why


def export_leftovers(outputs):
    return [os.path.basename(path + end) for path in outputs for end in (PARTIAL, EARLIER)
            if os.path.exists(path + end)]


def export_text(result):
    return f"{result['done']} ok, {result['inside_write']} in a write" if result["ok"] else "FAIL"


def ok_text(value):
    return "-" if value is None else ("ok" if value is True else "FAIL")


def row_cells(result):
    kills = result["kills"]
    bad = result["bad_inputs"]
    return [result["model"], f"{kills['survived']}/{kills['done']}", str(kills["inside_save"]),
            str(kills["lost"]), ok_text(result["moved"]["ok"]), ok_text(result["sigterm"]["ok"]),
            ok_text(result["nan"]["ok"]), f"{sum(not v for v in bad.values())}/{len(bad)}",
            export_text(result["exports"]), f"{result['seconds']:.0f}"]


def format_table(rows):
    widths = [max(len(str(r[i])) for r in [COLUMNS] + rows) for i in range(len(COLUMNS))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [COLUMNS] + rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows, meta):
    lines = [f"# Fault harness, {meta['date']}", "",
             f"CPU: {meta['cpu']}; seed {meta['seed']}; {meta['kills']} kills per model; "
             f"{meta['seconds']:.0f} s in all.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def failures(result):
    """Why a model's row is not clean (empty: clean)."""
    why = []
    kills = result["kills"]
    if kills["lost"] or kills["survived"] < kills["done"]:
        why.append(f"kills: {kills['note'] or 'lost runs'}")
    for check in ("moved", "sigterm", "nan", "exports"):
        if result[check]["ok"] is not True:
            why.append(f"{check}: {result[check]['note']}")
    why += [f"bad input {name}: {reason}" for name, reason in result["bad_inputs"].items() if reason]
    return why


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


# ---- running the launchers ---------------------------------------------------------------------------

class Launch:
    """One launcher process in its own process group; its console goes to a file; its training log is read
    incrementally for step lines."""

    count = 0

    def __init__(self, harness, args, device, resume, data_path=True, command=None, cwd=None, file_limit=None):
        """The model's launcher with args, or another command (an export script: no training log to read);
        file_limit: the largest file (bytes) it may write."""
        Launch.count += 1
        self.h = harness
        self.name = f"{Launch.count:02d}"
        self.console_path = os.path.join(harness.scratch, f"console-{self.name}.txt")
        self.log = None if command else os.path.join(harness.output, device, f"train_{device}.log")
        if not command:
            command = ["bash", harness.launcher] + ([f"--data_path={harness.data}"] if data_path else [])
            command += harness.args + list(args) + (["--resume=True"] if resume else [])
        env = dict(harness.env, ASCEND_DEVICE_ID=device)
        self.offset = os.path.getsize(self.log) if resume and self.log and os.path.isfile(self.log) else 0
        self.buffer = ""
        self.steps = []  # (global step, loss text, seconds since launch)
        limited = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, resource.RLIM_INFINITY))) \
            if file_limit else None
        with open(self.console_path, "w") as console:
            self.proc = subprocess.Popen(command, cwd=cwd or harness.test_dir, env=env, stdout=console,
                                         stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=limited)
        self.start = time.time()

    def elapsed(self):
        return time.time() - self.start

    def read_steps(self):
        if not self.log:
            return self.steps
        try:
            with open(self.log, errors="replace") as handle:
                handle.seek(self.offset)
                text = handle.read()
                self.offset = handle.tell()
        except OSError:
            return self.steps
        text, _, self.buffer = (self.buffer + text).rpartition("\n")
        now = self.elapsed()
        self.steps += [(step, loss, now) for step, loss in self.h.parser.parse(text + "\n")]
        return self.steps

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILLs the process group and waits until every process of it is gone: the training process
        outlives bash by a moment, and its lock on the output folder with it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        code = self.wait()
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        return code

    def wait(self, timeout=None):
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = 124
        self.read_steps()
        return code

    def console(self):
        with open(self.console_path, errors="replace") as handle:
            return handle.read()

    def error(self):
        errors = error_lines(self.console())
        return errors[-1] if errors else (self.console().strip().splitlines() or ["no output"])[-1]

    def wait_for(self, condition, timeout):
        """Polls until condition() or the end of the launch or timeout; returns whether condition() held."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.read_steps()
            if condition():
                return True
            if not self.running():
                return False
            time.sleep(0.05)
        return False


class ModelHarness:
    def __init__(self, model_dir, smoke_cfg, cfg, work_dir, seed, kills):
        self.model = os.path.basename(model_dir)
        self.cfg = cfg
        self.seed, self.kills = seed, kills
        self.test_dir = os.path.join(model_dir, "test")
        self.launcher = cfg["launcher"]
        self.output = os.path.join(self.test_dir, "output")
        self.work = os.path.join(work_dir, "faults", self.model)
        self.scratch = os.path.join(self.work, "scratch")
        self.parked = os.path.join(self.work, "user-output")
        self.work_dir = work_dir
        self.dataset = smoke_cfg["dataset"]
        self.data = ensure_dataset(self.dataset, work_dir)
        self.args = list(smoke_cfg["args"]) + list(cfg.get("args", []))
        self.env = dict(os.environ)
        self.env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + self.env.get("PATH", "")
        self.env.update({k: str(v) for k, v in smoke_cfg["env"].items()})
        self.total = cfg["total_steps"]
        self.parser = StepParser(cfg["step_line"], cfg.get("steps_per_epoch"))
        self.startup = 30.0   # seconds from launch to the first step line; measured by the calibration run
        self.rate = 1.0       # steps per second
        self.events = []

    def note(self, text):
        line = f"  {self.model}: {text}"
        self.events.append(line.strip())
        print(line, flush=True)

    def checkpoint_floor(self, device):
        """The global step of the newest complete checkpoint in output/<device> (0 when none is numbered)."""
        numbers = checkpoint_numbers(os.path.join(self.output, device))
        if not numbers:
            return 0
        unit = self.cfg.get("steps_per_epoch", 1) if self.cfg.get("checkpoint_unit") == "epoch" else 1
        return numbers[-1] * unit

    def run_time(self):
        return self.startup + self.total / self.rate

    # -- check 1: kills ----------------------------------------------------------------------------------
    def calibrate(self):
        """A fresh launch on device 0: the time to its first step line and its step rate; it is then killed
        (the first kill)."""
        launch = Launch(self, [], "0", resume=False)
        if not launch.wait_for(lambda: launch.steps, 600):
            code = launch.kill()
            return launch, f"the calibration run printed no step line (exit {code}: {launch.error()})"
        self.startup = launch.steps[0][2]
        first = launch.steps[0]
        launch.wait_for(lambda: launch.steps[-1][0] - first[0] >= max(3, self.total // (self.kills + 1))
                        or launch.elapsed() - first[2] > 3, 120)
        last = launch.steps[-1]
        if last[2] > first[2] and last[0] > first[0]:
            self.rate = (last[0] - first[0]) / (last[2] - first[2])
        else:
            self.rate = self.total / 60.0
        self.note(f"calibration: first step after {self.startup:.1f} s, {self.rate:.1f} steps/s")
        return launch, None

    def kill_launch(self, launch, kind, fraction):
        """Kills launch as planned; returns (inside a save, the floor: newest checkpoint step at the kill)."""
        window = self.startup + self.total / self.rate / (self.kills + 1)
        if kind == "save":
            # Long enough for the launch to reach its next checkpoint (save_every steps in ci/faults.toml).
            save_every = self.cfg.get("save_every", 2 * self.total / (self.kills + 1))
            deadline = launch.start + 1.5 * self.startup + 1.5 * save_every / self.rate
            folder = os.path.join(self.output, "0")
            while time.time() < deadline and launch.running():
                if saving_now(folder):
                    break
                time.sleep(POLL)
        else:
            launch.wait_for(lambda: launch.elapsed() >= fraction * window, fraction * window + 1)
        inside = saving_now(os.path.join(self.output, "0")) and launch.running()
        launch.kill()
        return inside, self.checkpoint_floor("0")

    def kill_loop(self):
        result = {"done": 0, "inside_save": 0, "lost": 0, "survived": 0, "note": "", "log": []}
        launch, problem = self.calibrate()
        if problem:
            result.update(lost=1, note=problem)
            return result, False
        launch.kill()
        floor = self.checkpoint_floor("0")
        result["done"] = 1
        lost_after = []
        plan = kill_plan(self.seed, self.model, self.kills)
        failed_in_a_row = 0
        for kind, fraction in plan:
            launch = Launch(self, [], "0", resume=True)
            inside, new_floor = self.kill_launch(launch, kind, fraction)
            code = launch.proc.returncode
            first = launch.steps[0][0] if launch.steps else None
            entry = {"kind": kind, "inside_save": inside, "seconds": round(launch.elapsed(), 2), "floor": floor,
                     "first_step": first, "exit": code}
            if code not in KILL_SIGNALED and code != 0:
                lost_after.append(f"a resume failed (exit {code}): {launch.error()}")
                failed_in_a_row += 1
            elif first is not None and first - 1 < floor:
                lost_after.append(f"resumed at step {first} behind the checkpoint of step {floor}")
                failed_in_a_row = 0
            else:
                failed_in_a_row = 0
            result["log"].append(entry)
            if code == 0:
                self.note("the run finished before its planned kill; fewer kills")
                return self.tally(result, lost_after), True
            result["done"] += 1
            result["inside_save"] += int(inside)
            floor = new_floor
            if failed_in_a_row == 2:
                lost_after.append("two resumes in a row failed: kills stopped")
                break
        return self.tally(result, lost_after), failed_in_a_row < 2

    @staticmethod
    def tally(result, lost_after):
        result["lost"] = len(lost_after)
        result["note"] = "; ".join(dict.fromkeys(lost_after))
        return result

    # -- checks 2, 3 and the end of 1: moved folder, SIGTERM, the run's end ---------------------------------
    def partial_run(self):
        """A run killed right after it wrote a new checkpoint short of the end (a partial run with something to
        continue): a resume, or a fresh run when the folder is within two saves of the end (on a fast machine
        the resume would finish before it could be caught in the middle)."""
        save_every = self.cfg.get("save_every", 2 * self.total / (self.kills + 1))
        before = self.checkpoint_floor("0")
        fresh = before + 2 * save_every >= self.total
        before = 0 if fresh else before  # a fresh run writes its step-0 checkpoint first
        launch = Launch(self, [], "0", resume=not fresh)
        wrote = launch.wait_for(lambda: before < self.checkpoint_floor("0") < self.total, self.run_time() * 1.5)
        launch.kill()
        return self.checkpoint_floor("0") if wrote else before

    def moved_and_sigterm(self, result):
        floor = self.partial_run()
        away = os.path.join(self.scratch, "moved-away")
        shutil.rmtree(away, ignore_errors=True)
        os.rename(os.path.join(self.output, "0"), away)
        os.rename(away, os.path.join(self.output, MOVED_DEVICE))
        launch = Launch(self, [], MOVED_DEVICE, resume=True)
        started = launch.wait_for(lambda: launch.steps, self.run_time() * 2)
        moved = result["moved"]
        if not started:
            code = launch.kill() if launch.running() else launch.wait()
            moved.update(ok=False, note=f"no step after the move (exit {code}: {launch.error()})")
            result["sigterm"].update(ok=False, note="not tried (the moved run did not start)")
            return None
        first = launch.steps[0][0]
        moved.update(first_step=first, floor=floor, ok=first > 1 and first - 1 >= floor,
                     note="" if first > 1 else f"restarted at step 1 (checkpoint of step {floor} was there)")
        if first - 1 < floor and first > 1:
            moved["note"] = f"resumed at step {first}, behind the checkpoint of step {floor}"
        self.note(f"moved to output/{MOVED_DEVICE}: first step {first} (checkpoint of step {floor})")
        # SIGTERM mid-run: after one more step line, to the launcher only (it forwards it).
        launch.wait_for(lambda: launch.steps[-1][0] > first, 60)
        sigterm = result["sigterm"]
        if not launch.running():
            sigterm.update(ok=False, note=f"the run ended before SIGTERM (exit {launch.wait()})")
            return None
        os.kill(launch.proc.pid, signal.SIGTERM)
        code = launch.wait(120)
        console = launch.console()
        why = verdict(code, console, must_say=r"stopped by SIGTERM")
        if not why and code != 143:
            why = f"exit {code}, not 143"
        stopped_at = re.search(r"stopped by SIGTERM at step (\d+)", console)
        sigterm.update(exit=code, error=launch.error(), ok=not why, note=why)
        return int(stopped_at.group(1)) if stopped_at else launch.steps[-1][0] if launch.steps else None

    def finish(self, result, stopped_at):
        """The last --resume=True to the end, with a second launcher on the same device while it runs."""
        launch = Launch(self, [], MOVED_DEVICE, resume=True)
        launch.wait_for(lambda: os.path.getsize(launch.console_path) > 0, 120)
        time.sleep(0.5)  # the launcher has locked its folder by the time it prints its first line
        if launch.running():
            second = Launch(self, [], MOVED_DEVICE, resume=False)
            code = second.wait(self.run_time() * 2)
            intact = launch.running() or os.path.isdir(os.path.join(self.output, MOVED_DEVICE))
            result["bad_inputs"]["second launcher"] = verdict(code, second.console(), intact)
        else:
            result["bad_inputs"]["second launcher"] = "not tried: the run had already ended"
        launch.wait_for(lambda: launch.steps, self.run_time() * 2)
        sigterm = result["sigterm"]
        if launch.steps and stopped_at is not None and sigterm.get("ok") is not False:
            first = launch.steps[0][0]
            if first != stopped_at + 1:
                sigterm.update(ok=False, note=f"stopped at step {stopped_at} but resumed at step {first}")
        code = launch.wait(self.run_time() * 3)
        problems = [] if code == 0 else [f"the last resume exited {code}: {launch.error()}"]
        folder = os.path.join(self.output, MOVED_DEVICE)
        run = contract.Run(os.path.dirname(self.test_dir), self.launcher, launch.console(), MOVED_DEVICE)
        summary, found = contract.find_summary(run)
        problems += found
        if summary:
            problems += contract.check_summary(run, summary)
        steps = []
        for log in glob.glob(os.path.join(folder, "train_*.log")):
            with open(log, errors="replace") as handle:
                steps += [s for s, _ in self.parser.parse(handle.read())]
        gaps = missing_steps(steps, self.total)
        if gaps:
            problems.append(f"no step line for steps {describe_gaps(gaps)}")
        if steps and max(steps) != self.total:
            problems.append(f"the last step is {max(steps)}, not {self.total}")
        # The kills inside a save left TensorFlow's unfinished files; the runs since must have removed them.
        left = [os.path.relpath(path, folder) for path in save_files(folder)]
        if left:
            problems.append(f"{len(left)} unfinished save file(s) left after the run ended: {', '.join(left[:3])}")
        return problems

    # -- check 4: NaN ------------------------------------------------------------------------------------
    def nan_check(self):
        launch = Launch(self, self.cfg["nan_args"], NAN_DEVICE, resume=False)
        code = launch.wait(self.run_time() * 2)
        why = verdict(code, launch.console(), must_say=r"is (nan|inf)")
        if not why and code != 1:
            why = f"exit {code}, not 1"
        finite = [s for s, loss, _ in launch.steps if math.isfinite(contract.to_number(loss) or math.nan)]
        last_finite = max(finite, default=0)
        unit = self.cfg.get("steps_per_epoch", 1) if self.cfg.get("checkpoint_unit") == "epoch" else 1
        newer = [n for n in checkpoint_numbers(os.path.join(self.output, NAN_DEVICE)) if n * unit > last_finite]
        if newer and not why:
            why = f"checkpoint(s) {newer} written after the last finite step {last_finite}"
        return {"ok": not why, "exit": code, "error": launch.error(), "last_finite_step": last_finite, "note": why}

    # -- check 5: bad inputs -----------------------------------------------------------------------------
    def scratch_dataset(self, kind):
        if kind == "missing":
            return os.path.join(self.scratch, "no-such-folder")
        target = os.path.join(self.scratch, kind)
        shutil.rmtree(target, ignore_errors=True)
        if kind == "empty":
            os.makedirs(target)
            return target
        shutil.copytree(self.data, target)
        victims = sorted(glob.glob(os.path.join(target, self.cfg["corrupt"])))
        if not victims:
            raise FileNotFoundError(f"ci/faults.toml: corrupt = {self.cfg['corrupt']!r} matches nothing in {target}")
        with open(victims[0], "r+b") as handle:
            handle.truncate(os.path.getsize(victims[0]) // 2)
        return target

    def bad_inputs(self, result):
        folder = os.path.join(self.output, MOVED_DEVICE)
        before = snapshot(folder)
        cases = {
            "no --data_path": ([], False),
            "missing folder": ([f"--data_path={self.scratch_dataset('missing')}"], False),
            "empty folder": ([f"--data_path={self.scratch_dataset('empty')}"], False),
            "wrong dataset": ([f"--data_path={ensure_dataset(self.cfg['wrong_dataset'], self.work_dir)}"], False),
            "bad flag": ([self.cfg["bad_flag"]], True),
            "cut data file": ([f"--data_path={self.scratch_dataset('corrupt')}"], False),
        }
        for name, (args, with_data) in cases.items():
            launch = Launch(self, args, MOVED_DEVICE, resume=False, data_path=with_data)
            code = launch.wait(self.run_time() * 2)
            intact = still_there(before, [folder, folder + ".prev"])
            why = verdict(code, launch.console(), intact)
            result["bad_inputs"][name] = why
            self.note(f"bad input {name}: {why or 'handled'} ({launch.error()[:110]})")
        result["bad_inputs"]["no room"] = why = self.no_room(before)
        self.note(f"bad input no room: {why or 'handled'}")

    def no_room(self, finished):
        """'' when a fresh run whose files may not exceed half the smallest checkpoint data file of the finished
        run (its snapshot) fails at its first save in one [Error] line that says how to make room, leaving no
        part of that save."""
        data = [size for path, size in finished.items() if ".data-00000-of-" in os.path.basename(path)]
        if not data:
            return "no checkpoint in the finished run to size the limit by"
        launch = Launch(self, [], NO_ROOM_DEVICE, resume=False, file_limit=min(data) // 2)
        why = verdict(launch.wait(self.run_time() * 2), launch.console(), must_say=r"writing .*ulimit -f")
        left = [os.path.relpath(path, self.output) for path in save_files(os.path.join(self.output, NO_ROOM_DEVICE))]
        return why or (f"the failed save left {', '.join(left[:3])}" if left else "")

    # -- check 6: kills during an export -------------------------------------------------------------------
    def export_launch(self, fields):
        """The model's export from the finished run in output/<MOVED_DEVICE>. "resume": the one a training run
        writes at its end (a --resume=True with nothing left to train evaluates and exports again)."""
        if self.cfg["export"] == "resume":
            return Launch(self, [], MOVED_DEVICE, resume=True)
        command = [arg.format(**fields) for arg in self.cfg["export"]]
        return Launch(self, [], MOVED_DEVICE, resume=False, command=command, cwd=fields["out"])

    def export_kill(self, fields, outputs, kind, fraction, duration):
        """One export, killed as planned: kind "save" the instant it starts writing one of the outputs (picked by
        fraction: its <name>.partial or the output itself changes, so that one written in place is caught cut),
        "time" at fraction of duration. Returns (the output it was writing or '', the launch)."""
        # The .partial an earlier kill left is there from the start: a change of it is what counts.
        before = {path: (export_files(path), export_files(path + PARTIAL)) for path in outputs}

        def writing(path):
            return (export_files(path), export_files(path + PARTIAL)) != before[path]
        launch = self.export_launch(fields)
        if kind == "save":
            target = outputs[int(fraction * len(outputs))]
            while launch.running() and launch.elapsed() < 2 * duration and not writing(target):
                time.sleep(POLL)
        else:
            launch.wait_for(lambda: launch.elapsed() >= fraction * duration, fraction * duration + 1)
        inside = next((path for path in outputs if writing(path)), "") if launch.running() else ""
        launch.kill()
        return inside, launch

    def export_kills(self):
        fields = {"model": os.path.dirname(self.test_dir), "run": os.path.join(self.output, MOVED_DEVICE),
                  "out": os.path.join(self.scratch, "export")}
        os.makedirs(fields["out"], exist_ok=True)
        outputs = [path.format(**fields) for path in self.cfg["export_outputs"]]
        result = {"ok": False, "done": 0, "inside_write": 0, "note": "", "log": []}
        launch = self.export_launch(fields)
        code = launch.wait(600)
        whole = {path: export_files(path) for path in outputs}
        if code != 0 or not all(whole.values()):
            result["note"] = f"the first export failed (exit {code}: {launch.error()}) or wrote nothing"
            return result
        duration = launch.elapsed()
        self.note(f"export: {duration:.1f} s, {sum(len(files) for files in whole.values())} file(s)")
        problems = []
        plan = kill_plan(self.seed, f"{self.model} export", max(self.kills // 2, 1) + 1, save_share=0.6)
        for kind, fraction in plan:
            inside, launch = self.export_kill(fields, outputs, kind, fraction, duration)
            code = launch.proc.returncode
            if code not in KILL_SIGNALED and code != 0:
                problems.append(f"an export failed (exit {code}): {launch.error()}")
            moment = f"writing {os.path.basename(inside)}" if inside else f"{launch.elapsed():.1f} s in"
            half = half_exports(outputs, whole)
            problems += [f"killed {moment}: {why}" for why in half]
            result["log"].append({"kind": kind, "killed": moment, "exit": code, "half": half})
            result["done"] += 1
            result["inside_write"] += int(bool(inside))
        launch = self.export_launch(fields)
        code = launch.wait(600)
        if code != 0:
            problems.append(f"the last export exited {code}: {launch.error()}")
        problems += [f"after the last export: {why}" for why in half_exports(outputs, whole)]
        left = export_leftovers(outputs)
        if left:
            problems.append(f"left beside the export: {', '.join(left)}")
        result.update(ok=not problems, note="; ".join(dict.fromkeys(problems)))
        return result

    # -- all of it ---------------------------------------------------------------------------------------
    def run(self):
        start = time.time()
        result = {"model": self.model, "launcher": self.launcher, "moved": {"ok": None, "note": ""},
                  "sigterm": {"ok": None, "note": ""}, "nan": {"ok": None, "note": ""}, "bad_inputs": {},
                  "end": [], "exports": {"ok": None, "note": ""}}
        shutil.rmtree(self.scratch, ignore_errors=True)
        os.makedirs(self.scratch)
        result["kills"], usable = self.kill_loop()
        self.note(f"kills: {result['kills']['done']} done, {result['kills']['inside_save']} inside a save, "
                  f"{result['kills']['lost']} lost {result['kills']['note']}")
        stopped_at = self.moved_and_sigterm(result)
        self.note(f"moved: {ok_text(result['moved']['ok'])} {result['moved']['note']}; "
                  f"SIGTERM: {ok_text(result['sigterm']['ok'])} {result['sigterm']['note']}")
        result["end"] = self.finish(result, stopped_at)
        if result["end"]:
            result["kills"]["lost"] += 1
            result["kills"]["note"] = "; ".join(filter(None, [result["kills"]["note"]] + result["end"]))
        else:
            result["kills"]["survived"] = result["kills"]["done"] - result["kills"]["lost"]
        self.note(f"end of the run: {'; '.join(result['end']) or 'ok'}")
        result["exports"] = self.export_kills()
        self.note(f"export kills: {export_text(result['exports'])} {result['exports']['note']}")
        self.bad_inputs(result)
        result["nan"] = self.nan_check()
        self.note(f"NaN: {ok_text(result['nan']['ok'])} {result['nan']['note']} ({result['nan']['error'][:110]})")
        result["seconds"] = time.time() - start
        result["events"] = self.events
        return result

    def park(self):
        """Moves the user's test/output aside (refusing to run over a parked copy left by a crash)."""
        if os.path.exists(self.parked):
            raise RuntimeError(f"{self.parked} holds a parked test/output of an interrupted harness run: move it "
                               f"back to {self.output} (or delete it) first")
        os.makedirs(self.work, exist_ok=True)
        if os.path.exists(self.output):
            os.rename(self.output, self.parked)
            print(f"  {self.model}: your test/output is parked in {self.parked} while the harness runs", flush=True)

    def unpark(self):
        kept = os.path.join(self.work, "output")
        shutil.rmtree(kept, ignore_errors=True)
        if os.path.exists(self.output):
            os.rename(self.output, kept)
        if os.path.exists(self.parked):
            os.rename(self.parked, self.output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="models whose directory name contains this text")
    parser.add_argument("--seed", type=int, default=12, help="seed of the kill schedule")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs per model (at least 2)")
    parser.add_argument("--config", default=os.path.join(REPO, "ci", "faults.toml"))
    parser.add_argument("--smoke_config", default=os.path.join(REPO, "ci", "smoke.toml"))
    parser.add_argument("--work_dir", default=os.path.join(REPO, "ci", "work"))
    args = parser.parse_args(argv)
    if args.kills < 2:
        parser.error("--kills must be at least 2")
    with open(args.config, "rb") as handle:
        config = tomllib.load(handle)
    with open(args.smoke_config, "rb") as handle:
        smoke_config = tomllib.load(handle)
    models = [m for m in config if args.only in m]
    if not models:
        print(f"[Error] no model in {args.config} matches --only={args.only!r}")
        return 1
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so that the user's test/output is put back.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = time.time()
    results = []
    for model in models:
        print(f"fault harness: {model} ({config[model]['launcher']}, seed {args.seed}, {args.kills} kills)", flush=True)
        harness = ModelHarness(os.path.join(REPO, model), settings(smoke_config, model, config[model]["launcher"]),
                               config[model], args.work_dir, args.seed, args.kills)
        try:
            harness.park()
        except RuntimeError as err:
            print(f"[Error] {err}")
            return 1
        try:
            results.append(harness.run())
        finally:
            harness.unpark()
    rows = [row_cells(r) for r in results]
    print(format_table(rows))
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu_model(), "seed": args.seed,
            "kills": args.kills, "seconds": time.time() - start}
    with open(os.path.join(args.work_dir, "faults.json"), "w") as handle:
        json.dump({"meta": meta, "results": results}, handle, indent=1)
    with open(os.path.join(args.work_dir, "faults.md"), "w") as handle:
        handle.write(markdown(rows, meta))
    bad = {r["model"]: failures(r) for r in results if failures(r)}
    for model, why in bad.items():
        print(f"[Warning] {model}: " + "; ".join(why))
    print(f"faults: {len(results) - len(bad)} of {len(results)} models clean in {meta['seconds']:.0f} s "
          f"(ci/work/faults.md, ci/work/faults.json)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
