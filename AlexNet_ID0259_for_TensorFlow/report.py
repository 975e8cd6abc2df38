"""The training log's lines. The original's greps read the first three (the launcher's loss file the second,
test/launcher_lib.sh): keep their wording."""


def step(epoch, index, seconds, batch_size):
    print(f"epoch {epoch} step: {index} step_time {seconds:.4f} FPS {batch_size / seconds:.2f}")


def progress(done, total, loss):
    print(f"progress : {100.0 * done / total:.2f}%  loss :{loss:.6f}", flush=True)


def epoch(test_accuracy, train_accuracy):
    print(f"test accuracy {test_accuracy:.2f}")
    print(f"train accuracy {train_accuracy:.2f}", flush=True)


def learning_rate_cut(value, window, min_gain):
    print(f"learning rate -> {value:g} (training accuracy less than {min_gain} points above the mean of the "
          f"{window} epochs before)")


def speed(clock):
    """The steady-state figures of run_report.StepClock, which result.json and the launcher's summary hold."""
    print(f"steady state: {clock.ms_per_step:.2f} ms/step, {clock.images_per_sec:.2f} images/sec (global batch "
          f"{clock.global_batch}; the first {clock.warmup_excluded} of {len(clock.seconds)} steps left out)")
