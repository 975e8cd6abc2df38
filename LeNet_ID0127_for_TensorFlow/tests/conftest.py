"""Fixtures for the LeNet tests: synthetic idx data, an isolated copy of the model folder, CLI runners.

Tiers: tests marked `slow` run a launcher or an entry script as a subprocess, kill one, or need real MNIST;
the rest call the entry points in-process (`bash ci/test.sh --quick` runs only those).
"""
import os
import shutil
import subprocess
import sys

import pytest

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(MODEL_DIR)
REAL_MNIST = os.path.join(os.path.dirname(REPO), "shared", "datasets", "mnist")
sys.path.insert(0, MODEL_DIR)

import zoo_precision  # noqa: E402

zoo_precision.before_tensorflow()  # as the entry scripts: in-process tests run the kernels the launchers run

import lenet_cli  # noqa: E402
import mnist_idx  # noqa: E402
from synthetic import mnist_idx as mnist_writer  # noqa: E402

# Explicit float32 for tests that compare numbers between runs or against a tight threshold: the default
# mixed mode trains in bfloat16 where zoo_precision's measured table (or ZOO_CPU_BF16=1) chooses it.
FLOAT32 = "--precision_mode=must_keep_origin_dtype"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs a launcher or entry script as a subprocess, kills one, "
                                       "or trains on real MNIST (deselect with -m 'not slow')")


@pytest.fixture(scope="session")
def small_mnist(tmp_path_factory):
    """2,000 train / 500 test learnable images; pass --validation_size=500 to LeNet.py."""
    return mnist_writer.generate(str(tmp_path_factory.mktemp("mnist")), train_count=2000, test_count=500)


@pytest.fixture(scope="session")
def small_splits(small_mnist):
    """small_mnist as the (train, validation, test) arrays LeNet.run() accepts instead of a --data_path."""
    return mnist_idx.load(small_mnist, validation_size=500)


@pytest.fixture(scope="session")
def smoke_mnist(tmp_path_factory):
    """The smoke harness's dataset: 7,000 train (5,000 held out by default) / 1,000 test images."""
    return mnist_writer.generate(str(tmp_path_factory.mktemp("mnist_smoke")))


@pytest.fixture
def model_copy(tmp_path):
    """The model folder copied without its outputs, so launcher runs never touch the user's test/output."""
    target = tmp_path / os.path.basename(MODEL_DIR)
    shutil.copytree(MODEL_DIR, target, ignore=shutil.ignore_patterns("output", "__pycache__", "tests"))
    return target


def environment():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def run(command, cwd, timeout=600):
    """Runs a CLI the way a user would; returns the CompletedProcess (text output)."""
    return subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=timeout)


def run_python(script_dir, script, *args, timeout=600):
    return run([sys.executable, os.path.join(str(script_dir), script), *args], cwd=str(script_dir), timeout=timeout)


def run_in_process(main, argv, capsys):
    """An entry script's main through lenet_cli.run, as its __main__ does; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        lenet_cli.run(main, [str(arg) for arg in argv])
    out = capsys.readouterr()
    return exited.value.code, out.out, out.err


def assert_one_line_error(code, stdout, stderr, *fragments):
    assert code != 0
    assert "Traceback" not in stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("[Error]")]
    assert len(errors) == 1, stderr
    for fragment in fragments:
        assert fragment in errors[0]


def final_value(stdout, marker):
    lines = [line for line in stdout.splitlines() if line.startswith(marker)]
    assert lines, f"no line starting with {marker!r} in:\n{stdout[-2000:]}"
    return float(lines[-1].rsplit(":", 1)[1].split()[0].rstrip(","))
