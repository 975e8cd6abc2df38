"""Fixtures for the MNIST TF2 tests: synthetic data (TFDS folders and in-memory datasets), in-process runs of
mnist_main, an isolated model copy and CLI runners for the slow tier."""
import ast
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, MODEL_DIR)

import zoo_precision  # noqa: E402

zoo_precision.before_tensorflow()  # as the entry scripts: in-process tests run the kernels the launchers run

import tensorflow as tf  # noqa: E402

from synthetic import digits, tfds_mnist  # noqa: E402

# Two logical CPUs, so a MirroredStrategy over two replicas runs in-process (quick tier). Must precede any
# TensorFlow op; strategies on device:CPU:0 alone see the usual single device.
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

import mnist_main  # noqa: E402
import keras  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: launchers or entry scripts as subprocesses, multi-worker clusters, "
                                       "real-data accuracy (bash ci/test.sh --quick leaves them out)")


def digit_dataset(count, seed):
    """count learnable synthetic digits as an unbatched (uint8 [28, 28, 1], int64 label) dataset, as
    mnist_data.load_split gives."""
    images, labels = digits.make(count, seed)
    return tf.data.Dataset.from_tensor_slices((images[..., None].astype("uint8"), labels.astype("int64")))


@pytest.fixture(scope="session")
def small_datasets():
    """(train, test): 512 / 128 synthetic digits for in-process runs."""
    return digit_dataset(512, 1), digit_dataset(128, 2)


@pytest.fixture
def parse_flags():
    """parse_flags(*args) parses mnist_main's flags in this process (as main does) and returns FLAGS; the
    flags and the Keras dtype policy are reset afterwards."""
    def parse(*args):
        mnist_main.FLAGS.unparse_flags()
        mnist_main.FLAGS(["mnist_main.py", *args])
        return mnist_main.FLAGS

    yield parse
    mnist_main.FLAGS.unparse_flags()
    keras.mixed_precision.set_dtype_policy("float32")


@pytest.fixture
def main_in_process(capsys):
    """main_in_process(*args) -> (exit status, stdout, stderr) of mnist_main.main run in this process."""
    def main(*args):
        mnist_main.FLAGS.unparse_flags()
        code = mnist_main.main(["mnist_main.py", *args])
        out, err = capsys.readouterr()
        return code, out, err

    yield main
    mnist_main.FLAGS.unparse_flags()
    keras.mixed_precision.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """1,024 train / 256 test images in two shards per split (for short runs and bad-input copies)."""
    return tfds_mnist.generate(str(tmp_path_factory.mktemp("tfds_tiny")), train_count=1024, test_count=256,
                               shards=2)


@pytest.fixture
def model_copy(tmp_path):
    """The model folder without outputs and tests, so launcher runs never touch the user's test/output."""
    target = tmp_path / os.path.basename(MODEL_DIR)
    shutil.copytree(MODEL_DIR, target, ignore=shutil.ignore_patterns("output", "__pycache__", "tests"))
    return target


def with_this_python(env):
    """os.environ plus env, this interpreter's folder first on PATH (the launchers call `python3`)."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, "PATH": path, **(env or {})}


def run(command, cwd, timeout=600, env=None):
    """Runs a command with this interpreter's folder first on PATH (the launchers call `python3`) and `env`
    added; on a timeout the whole process group is killed, so no training outlives its test."""
    proc = subprocess.Popen(command, cwd=str(cwd), env=with_this_python(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def run_main(*args, timeout=600):
    """Runs mnist_main.py as a user would, from the model folder."""
    return run([sys.executable, "mnist_main.py", *args], cwd=MODEL_DIR, timeout=timeout)


def run_stats(text):
    """The dict printed after 'Run stats: '."""
    lines = [line for line in text.splitlines() if line.startswith("Run stats: ")]
    assert lines, text[-2000:]
    return ast.literal_eval(lines[-1][len("Run stats: "):])


def start(command, cwd, env=None):
    """A launcher started in its own session (stderr into stdout), for tests that signal or kill it."""
    return subprocess.Popen(command, cwd=str(cwd), env=with_this_python(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for_step(log_path, step, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log_path.is_file() and f"\nstep:{step} " in log_path.read_text():
            return
        time.sleep(0.5)
    raise AssertionError(f"no step {step} in {log_path} after {timeout} s")


def finish(proc, seconds):
    """Output and exit status of proc, which must end within `seconds`; killed (and failing) otherwise."""
    try:
        out, _ = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"still running after {seconds} s") from None
    return proc.returncode, out


@contextlib.contextmanager
def launched(*specs):
    """Starts launchers ((command, cwd, env) each); whatever still runs on the way out is killed."""
    procs = [start(*spec) for spec in specs]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
