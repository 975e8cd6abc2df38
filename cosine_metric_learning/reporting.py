"""Training output: the per-step console line, progress lines and summaries, the final throughput.

The launchers read these lines (test/launcher_lib.sh): 'step N, loss L ...' (the loss file),
'Final Performance images/sec : X' and 'Final Performance ms/step : Y'.
"""
import time


def warmup_steps(number_of_steps, start_step):
    """Steps left out of the throughput: graph rewrites and the input pipeline filling up slow the first
    ones. A fifth of a short run, at most 5; 2 when training forever."""
    if number_of_steps is None:
        return 2
    return min(5, max(1, (number_of_steps - start_step) // 5))


# What a run that timed no step prints (a resume that found nothing left, a run shorter than its warm-up):
# both markers, so that the launchers' summary says NA rather than missing a value.
NOT_MEASURED = ["Final Performance images/sec : NA", "Final Performance ms/step : NA"]

class Throughput:
    """Images per second over the steps after the warm-up."""

    def __init__(self, batch_size, warmup):
        self.batch_size = batch_size
        self.warmup = warmup
        self.steps_seen = 0
        self.timed_steps = 0
        self.seconds = 0.0

    def add(self, seconds):
        self.steps_seen += 1
        if self.steps_seen > self.warmup:
            self.timed_steps += 1
            self.seconds += seconds

    def final_lines(self):
        if self.seconds <= 0:
            return NOT_MEASURED
        return [f"Final Performance images/sec : {self.timed_steps * self.batch_size / self.seconds:.2f}",
                f"Final Performance ms/step : {1000 * self.seconds / self.timed_steps:.2f}"]


class StepReporter:
    """One console line per step; every log_every steps a summary and a windowed-speed progress line."""

    def __init__(self, writer, batch_size, log_every, loss_names, clock=time.time):
        self.writer = writer
        self.batch_size = batch_size
        self.log_every = log_every
        self.loss_names = loss_names
        self.clock = clock
        self.window_start, self.window_steps = clock(), 0

    def wants_summary(self, step):
        return step % self.log_every == 0

    def step_done(self, step, seconds, total, losses, summary=None):
        self.window_steps += 1
        others = ", ".join(f"{name} {losses[name]:.4f}" for name in self.loss_names)
        print(f"step {step}, loss {total:.4f} ({others}), {self.batch_size / seconds:.1f} images/sec", flush=True)
        if summary is None:
            return
        self.writer.add_summary(summary, step)
        now = self.clock()
        print(f"progress: step {step}, {self.window_steps * self.batch_size / (now - self.window_start):.1f} "
              f"images/sec over the last {self.window_steps} steps", flush=True)
        self.window_start, self.window_steps = now, 0
