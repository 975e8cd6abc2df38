"""The training log's lines. The launchers (test/launcher_lib.sh) and the original's greps read the first
three: keep their wording."""


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
