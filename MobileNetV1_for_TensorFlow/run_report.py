"""One timing rule, one progress line and one result record for every model.

Canonical copy: ci/canonical/run_report.py; the models that use it hold byte-identical copies
(ci/vendored.toml). No TensorFlow here: the scripts import it cheaply. The launchers show the [progress]
lines an entry script prints on the console (launcher_common.sh, relay_progress).

Timing rule (the same in every model, so images/sec compare across the zoo): the steady-state step time is
the mean wall time of the steps this process ran after its first WARMUP_STEPS (graph building, kernel choice
and input-pipeline autotuning happen there); a process that ran 2 * WARMUP_STEPS steps or fewer leaves out
its first half instead. images/sec = global batch / steady-state seconds per step.
"""
import datetime
import json
import os
import sys
import time

WARMUP_STEPS = 10
PROGRESS_PREFIX = "[progress]"
PROGRESS_ENV = "ZOO_PROGRESS_EVERY"  # seconds between progress lines; 0 turns them off (launchers set it)
DEFAULT_PROGRESS_EVERY = 30.0
RESULT_FILE = "result.json"
RESULT_KEYS = ("model", "launcher", "device", "precision", "batch_size", "rank_size", "steps", "warmup_steps",
               "ms_per_step", "images_per_sec", "accuracy_name", "accuracy", "final_loss", "e2e_seconds")


class StepClock:
    """Wall times of this process's training steps, and the steady-state figures of the timing rule."""

    def __init__(self, global_batch):
        self.global_batch = global_batch
        self.seconds = []

    def add(self, seconds):
        self.seconds.append(float(seconds))

    @property
    def warmup_excluded(self):
        n = len(self.seconds)
        return WARMUP_STEPS if n > 2 * WARMUP_STEPS else n // 2

    @property
    def ms_per_step(self):
        """None when this process ran no step (a resumed run that found nothing left to train)."""
        steady = self.seconds[self.warmup_excluded:]
        return 1000.0 * sum(steady) / len(steady) if steady else None

    @property
    def images_per_sec(self):
        ms = self.ms_per_step
        return self.global_batch * 1000.0 / ms if ms else None


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """At most one line every `every` seconds: time stamp, step / total, loss, images/sec, elapsed, ETA.

    The lines start with PROGRESS_PREFIX; the launchers show them on the console while the full log goes to
    its file. `every` defaults to $ZOO_PROGRESS_EVERY, else 30 s; 0 turns progress off. The ETA extrapolates
    the step rate of this process since its first update.
    """

    def __init__(self, total_steps, every=None, stream=None, now=time.monotonic, unit="step"):
        self.total = total_steps
        self.every = float(os.environ.get(PROGRESS_ENV, DEFAULT_PROGRESS_EVERY) if every is None else every)
        self.stream = stream or sys.stdout
        self.now = now
        self.unit = unit
        self._start = None
        self._last = None

    def update(self, step, loss=None, images_per_sec=None, force=False):
        """Prints a line when `every` seconds passed since the last one (or force); returns it or None."""
        now = self.now()
        if self._start is None:
            self._start, self._start_step, self._last = now, step, now
        if self.every <= 0 or not (force or now - self._last >= self.every):
            return None
        self._last = now
        elapsed = now - self._start
        done = step - self._start_step
        eta = _clock((self.total - step) * elapsed / done) if done > 0 and self.total else "?"
        parts = [PROGRESS_PREFIX, datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                 f"{self.unit} {step}/{self.total}" + (f" ({100.0 * step / self.total:.1f}%)" if self.total else "")]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if images_per_sec is not None:
            parts.append(f"images/sec {images_per_sec:.1f}")
        parts += [f"elapsed {_clock(elapsed)}", f"ETA {eta}"]
        line = " ".join(parts)
        print(line, file=self.stream, flush=True)
        return line


def write_result(folder, **fields):
    """Writes folder/result.json (atomically: a kill never leaves half a file) and returns the record.

    Every key of RESULT_KEYS is required; `accuracy` is a fraction in 0..1 (or None where the run does not
    measure it, e.g. a performance run), `accuracy_name` says which metric it is.
    """
    missing = [key for key in RESULT_KEYS if key not in fields]
    if missing:
        raise ValueError(f"result record without {', '.join(missing)}")
    accuracy = fields["accuracy"]
    if accuracy is not None and not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy {accuracy} is not a fraction in 0..1")
    record = {key: fields[key] for key in RESULT_KEYS}
    record.update({key: value for key, value in fields.items() if key not in record})
    path = os.path.join(folder, RESULT_FILE)
    with open(path + ".tmp", "w") as handle:
        json.dump(record, handle, indent=1)
        handle.write("\n")
    os.replace(path + ".tmp", path)
    return record
