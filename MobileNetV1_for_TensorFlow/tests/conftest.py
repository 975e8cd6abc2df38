"""MobileNetV1 test fixtures: synthetic slim TFRecords, in-process entry points, a copy of the model folder
and subprocess runners for the launcher tests."""
import contextlib
import io
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, MODEL_DIR)

import zoo_precision  # noqa: E402

zoo_precision.before_tensorflow()  # as the entry scripts: in-process tests run the kernels the launchers run

import cli_util  # noqa: E402
from synthetic import slim_imagenet  # noqa: E402

# Small settings every training run in the tests shares: 11 outputs (10 classes + background), 32 px.
# The recipe's weight decay, optimizer and schedule (the launchers'), not train.py's defaults.
SMALL = ["--num_classes=11", "--train_image_size=32", "--batch_size=16", "--iterations_per_loop=5",
         "--batch_norm_decay=0.9", "--learning_rate=0.05", "--warmup_epochs=1", "--weight_decay=0.00004",
         "--optimizer=momentum", "--learning_rate_decay_type=cosine_annealing"]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs launchers or entry scripts as subprocesses, SIGKILL/resume, "
                                       "several workers, or learning to an accuracy threshold")


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """The generator's default set: 10 classes, 320 train / 100 validation records."""
    return slim_imagenet.generate(str(tmp_path_factory.mktemp("slim_small")))


@pytest.fixture
def model_copy(tmp_path):
    """The model folder without outputs and tests: launcher runs write into the copy's test/output."""
    skip = shutil.ignore_patterns("output", "__pycache__", "tests", "results")
    return pathlib.Path(shutil.copytree(MODEL_DIR, tmp_path / "MobileNetV1_for_TensorFlow", ignore=skip))


def call(module, *argv):
    """Runs an entry script's main in this process as its command line would: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli_util.main_wrapper(module.main, f"{module.__name__}.py", list(argv))
        except SystemExit as exit_:  # argparse rejected a flag
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def one_error_line(status, stdout, stderr):
    assert status != 0, stdout[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("[Error]")]
    assert len(errors) == 1, stderr[-2000:]
    return errors[0]


def environment(**extra):
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def run(command, cwd=MODEL_DIR, timeout=600, **env):
    return subprocess.run(command, cwd=str(cwd), env=environment(**env), capture_output=True, text=True,
                          timeout=timeout)


def run_script(script, *args, timeout=600, **env):
    return run([sys.executable, os.path.join(MODEL_DIR, script), *args], timeout=timeout, **env)


def last_value(text, key):
    """The number after the last `key` (e.g. 'top1: ') in the text."""
    lines = [line for line in text.splitlines() if line.startswith(key)]
    assert lines, f"no line starting with {key!r} in:\n{text[-2000:]}"
    return float(lines[-1][len(key):].strip().strip("[]"))


def steps_logged(text):
    return [int(line.split()[0][len("step:"):]) for line in text.splitlines() if line.startswith("step:")]


def injected_input(num_classes=11):
    """An input_fn of in-memory batches of 16 class-coloured 32x32 images: no files, no decoding."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    labels = rng.integers(1, num_classes, 64).astype(np.int32)
    images = (labels[:, None, None, None] / num_classes * 2 - 1 + rng.normal(0, 0.1, (64, 32, 32, 3)))
    return lambda: tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels)).repeat().batch(
        16, drop_remainder=True)
