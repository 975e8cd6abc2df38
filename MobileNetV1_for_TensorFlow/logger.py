"""The step logger: one line per logging step, to stdout and to <model_dir>/train_log.log.

    step:<n>  epoch:<e> ips:<global images/sec> loss:<l>  total_loss:<t>  lr:<r>,

On stdout each line comes twice, as in the original's log: bare, then with absl's prefix
`I<mmdd> <hh:mm:ss.us> <thread> logger.py:56] step:...`. The original launchers grep that call site and
take the 7th (ips:) and 8th (loss:) whitespace fields of it; this project's launchers read the bare line.
`ips` is the global batch over the mean session-run time of the steps since the previous line, as the original
(checkpoint saves between steps are not counted).

It is a SessionRunHook, so the session loop and NPUEstimator share it. steps_per_run is how many training
steps one session.run executes (iterations_per_loop on Ascend, 1 in the session loop); a line is written
every `every_n_steps` steps. It also times every step (run_report.StepClock: the run's result.json), prints
[progress] lines, and writes the logged values as TensorBoard scalars into summary_dir.
"""
import os
import threading
import time

import tensorflow as tf

import run_report

# Where the original's step line was logged from; its launchers grep for this exact text.
ORIGINAL_SITE = "logger.py:56"
# TensorBoard tag of each logged value (the step line's names are the original's).
SCALARS = {"loss": "loss", "total_loss": "total_loss", "lr": "learning_rate", "accuracy": "train_top1",
           "ips": "images_per_sec"}


def absl_prefixed(line, now):
    """The line as absl's root handler wrote it in the original (TensorFlow 1.15 installs that handler)."""
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    return f"I{stamp} {threading.get_native_id():5d} {ORIGINAL_SITE}] {line}"


def format_line(step, epoch, ips, loss, total_loss, lr):
    return f"step:{step}  epoch:{epoch:.3f} ips:{ips:.2f} loss:{loss:.6f}  total_loss:{total_loss:.6f}  lr:{lr:.8f}, "


class StepLogger(tf.compat.v1.train.SessionRunHook):
    """tensors: loss, total_loss, lr, accuracy (the batch's top-1) and global_step; set by watch() in model_fn.
    After the run: clock (this process's step times), final_loss (the last logged loss, None if none) and
    global_step."""

    def __init__(self, every_n_steps, global_batch_size, steps_per_epoch, max_steps, log_path, summary_dir,
                 steps_per_run=1):
        self._tensors = None
        self._every = every_n_steps
        self._steps_per_epoch = steps_per_epoch
        self._log_path = log_path
        self._summary_dir = summary_dir
        self.steps_per_run = steps_per_run
        self.clock = run_report.StepClock(global_batch_size)
        self.progress = run_report.Progress(max_steps)
        self.final_loss = None
        self._writer = None
        self._step = 0
        self._started = None
        self._window = []  # session-run seconds per step since the last step line

    @property
    def global_step(self):
        return self._step

    def watch(self, tensors):
        self._tensors = tensors

    def after_create_session(self, session, coord):
        self._step = int(session.run(self._tensors["global_step"]))
        self._writer = tf.compat.v1.summary.FileWriter(self._summary_dir)

    def before_run(self, run_context):
        upcoming = self._step + self.steps_per_run
        names = ("loss", "total_loss", "lr", "accuracy") if upcoming // self._every > self._step // self._every \
            else ("loss",)
        self._started = time.perf_counter()
        return tf.compat.v1.train.SessionRunArgs({k: self._tensors[k] for k in names})

    def after_run(self, run_context, run_values):
        seconds = (time.perf_counter() - self._started) / self.steps_per_run
        for _ in range(self.steps_per_run):
            self.clock.add(seconds)
        self._window += [seconds] * self.steps_per_run
        self._step += self.steps_per_run
        values = run_values.results
        self.progress.update(self._step, loss=float(values["loss"]), images_per_sec=self.clock.images_per_sec)
        if len(values) == 1:
            return
        values["ips"] = self.clock.global_batch * len(self._window) / max(sum(self._window), 1e-9)
        self._window = []
        self.final_loss = float(values["loss"])
        self.write(format_line(self._step, self._step / self._steps_per_epoch, values["ips"], values["loss"],
                               values["total_loss"], values["lr"]))
        self._writer.add_summary(tf.compat.v1.Summary(value=[
            tf.compat.v1.Summary.Value(tag=tag, simple_value=float(values[name])) for name, tag in SCALARS.items()]),
            self._step)
        self._writer.flush()

    def end(self, session):
        self._writer.close()

    def write(self, line):
        print(line, flush=True)
        print(absl_prefixed(line, time.time()), flush=True)
        os.makedirs(os.path.dirname(self._log_path), exist_ok=True)
        with open(self._log_path, "a") as handle:
            handle.write(line + "\n")
