"""Fixtures for the LeNet tests: synthetic idx data, an isolated copy of the model folder, CLI runner."""
import os
import shutil
import subprocess
import sys

import pytest

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(MODEL_DIR)
REAL_MNIST = os.path.join(os.path.dirname(REPO), "shared", "datasets", "mnist")
sys.path.insert(0, MODEL_DIR)

from synthetic import mnist_idx as mnist_writer  # noqa: E402


@pytest.fixture(scope="session")
def small_mnist(tmp_path_factory):
    """2,000 train / 500 test learnable images; pass --validation_size=500 to LeNet.py."""
    return mnist_writer.generate(str(tmp_path_factory.mktemp("mnist")), train_count=2000, test_count=500)


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


def final_value(stdout, marker):
    lines = [line for line in stdout.splitlines() if line.startswith(marker)]
    assert lines, f"no line starting with {marker!r} in:\n{stdout[-2000:]}"
    return float(lines[-1].rsplit(":", 1)[1].split()[0].rstrip(","))
