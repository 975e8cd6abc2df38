"""The step logger: one line per logging step, to stdout and to <model_dir>/train_log.log.

    step:<n>  epoch:<e> ips:<global images/sec> loss:<l>  total_loss:<t>  lr:<r>,

On stdout each line comes twice, as in the original's log: bare, then with absl's prefix
`I<mmdd> <hh:mm:ss.us> <thread> logger.py:56] step:...`. The original launchers grep that call site and
take the 7th (ips:) and 8th (loss:) whitespace fields of it; this project's launchers read the bare line.

It is a SessionRunHook, so the session loop and NPUEstimator share it. steps_per_run is how many training
steps one session.run executes (iterations_per_loop on Ascend, 1 in the session loop); a line is written
every `every_n_steps` steps.
"""
import os
import threading
import time

import tensorflow as tf


# Where the original's step line was logged from; its launchers grep for this exact text.
ORIGINAL_SITE = "logger.py:56"


def absl_prefixed(line, now):
    """The line as absl's root handler wrote it in the original (TensorFlow 1.15 installs that handler)."""
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    return f"I{stamp} {threading.get_native_id():5d} {ORIGINAL_SITE}] {line}"


def format_line(step, epoch, ips, loss, total_loss, lr):
    return f"step:{step}  epoch:{epoch:.3f} ips:{ips:.2f} loss:{loss:.6f}  total_loss:{total_loss:.6f}  lr:{lr:.8f}, "


class StepLogger(tf.compat.v1.train.SessionRunHook):
    def __init__(self, tensors, every_n_steps, global_batch_size, steps_per_epoch, log_path, steps_per_run=1):
        self._tensors = tensors  # dict with loss, total_loss, lr, global_step
        self._every = every_n_steps
        self._global_batch = global_batch_size
        self._steps_per_epoch = steps_per_epoch
        self._log_path = log_path
        self.steps_per_run = steps_per_run
        self._step = 0
        self._last_time = None
        self._last_step = 0

    def after_create_session(self, session, coord):
        self._step = int(session.run(self._tensors["global_step"]))
        self._last_step = self._step
        self._last_time = time.time()

    def before_run(self, run_context):
        upcoming = self._step + self.steps_per_run
        if upcoming // self._every > self._step // self._every:
            return tf.compat.v1.train.SessionRunArgs(
                {k: self._tensors[k] for k in ("loss", "total_loss", "lr")})
        return None

    def after_run(self, run_context, run_values):
        self._step += self.steps_per_run
        if not run_values.results:
            return
        now = time.time()
        ips = (self._step - self._last_step) * self._global_batch / max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, self._step
        values = run_values.results
        self.write(format_line(self._step, self._step / self._steps_per_epoch, ips, values["loss"],
                               values["total_loss"], values["lr"]))

    def write(self, line):
        print(line, flush=True)
        print(absl_prefixed(line, time.time()), flush=True)
        os.makedirs(os.path.dirname(self._log_path), exist_ok=True)
        with open(self._log_path, "a") as handle:
            handle.write(line + "\n")
