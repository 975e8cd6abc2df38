"""Training output: the per-step console line, progress lines, TensorBoard scalars, the final throughput and
the run's record (result.json).

The launchers read these lines (test/launcher_lib.sh): 'step N, loss L ...' (the loss file); their summary
comes from result.json. 'Final Performance images/sec : X' and 'Final Performance ms/step : Y' give the
same steady-state figures (run_report.StepClock, the zoo's one timing rule).
"""
import json
import os
import time

import tensorflow as tf

import device_config
import run_report
from datasets.util import UsageError

# The accuracy a launcher reports: eval mode's validation CMC rank-1, a fraction.
ACCURACY_NAME = "Precision@1"

# What a run that timed no step prints (a resume that found nothing left): both markers, NA.
NOT_MEASURED = ["Final Performance images/sec : NA", "Final Performance ms/step : NA"]


def final_lines(clock):
    if clock.ms_per_step is None:
        return NOT_MEASURED
    return [f"Final Performance images/sec : {clock.images_per_sec:.2f}",
            f"Final Performance ms/step : {clock.ms_per_step:.2f}"]


def scalar_summary(values):
    """A TensorBoard Summary of {tag: number}; None (nothing measured yet) is left out."""
    summary = tf.compat.v1.Summary()
    for tag, number in values.items():
        if number is not None:
            summary.value.add(tag=tag, simple_value=float(number))
    return summary


class StepReporter:
    """One console line per step and a [progress] line when due (run_report.Progress); every log_every
    steps and at the last one the TensorBoard scalars, with the steady-state images/sec, and a
    windowed-speed progress line."""

    def __init__(self, writer, clock, log_every, loss_names, total_steps=None, now=time.time):
        self.writer = writer
        self.clock = clock  # run_report.StepClock of this process's steps
        self.log_every = log_every
        self.loss_names = loss_names
        self.total_steps = total_steps  # None: until stopped
        self.now = now
        self.progress = run_report.Progress(total_steps)
        self.window_start, self.window_steps = now(), 0
        self.final_loss = None  # the last step's loss as the console printed it (the launcher's loss file)

    def wants_summary(self, step):
        return step % self.log_every == 0 or step == self.total_steps

    def step_done(self, step, seconds, total, losses, scalars=None):
        self.clock.add(seconds)
        self.window_steps += 1
        self.final_loss = round(float(total), 4)
        others = ", ".join(f"{name} {losses[name]:.4f}" for name in self.loss_names)
        print(f"step {step}, loss {total:.4f} ({others}), {self.clock.global_batch / seconds:.1f} images/sec",
              flush=True)
        self.progress.update(step, loss=total, images_per_sec=self.clock.images_per_sec)
        if scalars is None:
            return
        self.writer.add_summary(scalar_summary({**scalars, "images_per_sec": self.clock.images_per_sec}), step)
        now = self.now()
        print(f"progress: step {step}, {self.window_steps * self.clock.global_batch / (now - self.window_start):.1f} "
              f"images/sec over the last {self.window_steps} steps", flush=True)
        self.window_start, self.window_steps = now, 0


class Record:
    """The run's result.json (run_report.write_result): training writes it, eval mode adds its accuracy."""

    def __init__(self, folder, launcher, started):
        self.folder = folder
        self.launcher = launcher
        self.started = started  # time.time() at the process's start

    def write_training(self, chosen, step, clock, final_loss):
        """chosen: the zoo_precision.Precision trained with; step: the global step reached; final_loss: None
        when this process trained no step."""
        return run_report.write_result(
            self.folder, model=device_config.MODEL, launcher=self.launcher, device=chosen.device, precision=chosen.dtype,
            batch_size=clock.global_batch, rank_size=1, steps=int(step), warmup_steps=clock.warmup_excluded,
            ms_per_step=clock.ms_per_step, images_per_sec=clock.images_per_sec, accuracy_name=ACCURACY_NAME,
            accuracy=None, final_loss=final_loss, e2e_seconds=round(time.time() - self.started, 1))


def read_record(folder, flag="--result_dir"):
    """The training record in folder (eval mode checks it before evaluating, then adds to it)."""
    path = os.path.join(folder, run_report.RESULT_FILE)
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag}: no readable result.json of a training run in {folder} ({error})") from None


def add_accuracy(folder, cmc):
    """cmc: eval mode's {rank k: Precision@k} of the checkpoint it evaluated last."""
    record = read_record(folder)
    record.update(accuracy=cmc[1], accuracy_name=ACCURACY_NAME)
    run_report.write_result(folder, **record)
