"""Fixtures: synthetic Market-1501 / MARS folders, a short in-process training run, an isolated model copy
for launchers, runners for the entry points in-process and as subprocesses.

Tiers: `slow` marks tests that run a launcher or an entry script as a subprocess, or train for accuracy;
the rest call train_app.main in-process on small synthetic data (`bash ci/test.sh --quick`).
"""
import contextlib
import io
import os
import shutil
import subprocess
import sys

import pytest

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, MODEL_DIR)

import zoo_precision  # noqa: E402

zoo_precision.before_tensorflow()  # as the entry scripts: in-process tests run the kernels the launchers run

from synthetic import market1501 as market_writer  # noqa: E402
from synthetic import mars as mars_writer  # noqa: E402

import train_app  # noqa: E402
from run_report import PROGRESS_ENV  # noqa: E402
import train_market1501  # noqa: E402

# Short runs: batch 16 (4 identities x 4 images), Adam 1e-2 so that a few steps move the 1e-3 initial
# weights far enough for unit-length features, float32 whatever the CPU so that runs compare.
SHORT_ARGS = ["--batch_size=16", "--learning_rate=0.01", "--seed=1", "--precision_mode=must_keep_origin_dtype"]
SHORT_STEPS = 4


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs a launcher or an entry script as a subprocess, or trains "
                                       "for accuracy (deselect with -m 'not slow')")


def call(adapter, *argv):
    """train_app.main in-process, as the scripts call it; returns (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = train_app.main(adapter, [str(a) for a in argv])
        except SystemExit as exit_:
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def one_error_line(status, out, err, *fragments):
    """A failure (status != 0) whose stderr is one '[Error] ' line holding every fragment."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert status != 0 and len(lines) == 1 and lines[0].startswith("[Error] "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="session")
def small_market(tmp_path_factory):
    """The smoke harness's dataset: 60 training identities (54 after the validation split) x 6 cameras."""
    return market_writer.generate(str(tmp_path_factory.mktemp("market")))


@pytest.fixture(scope="session")
def small_mars(tmp_path_factory):
    return mars_writer.generate(str(tmp_path_factory.mktemp("mars")))


@pytest.fixture(scope="session")
def short_run(small_market, tmp_path_factory):
    """(log_dir, stdout) of a SHORT_STEPS-step in-process training run on small_market, run id 'short', with
    a [progress] line at every step after the first."""
    log_dir = tmp_path_factory.mktemp("short")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PROGRESS_ENV, "0.0001")
        status, out, err = call(train_market1501, f"--dataset_dir={small_market}", f"--log_dir={log_dir}",
                                "--run_id=short", f"--number_of_steps={SHORT_STEPS}", "--log_every=2", *SHORT_ARGS)
    assert status == 0, err
    return log_dir, out


@pytest.fixture
def model_copy(tmp_path):
    """The model folder without outputs or tests: launcher runs write into this copy's test/output."""
    skip = shutil.ignore_patterns("output", "__pycache__", "tests")
    return shutil.copytree(MODEL_DIR, tmp_path / os.path.basename(MODEL_DIR), ignore=skip)


def subprocess_env():
    """This interpreter's bin/ first on PATH (python3 in the launchers)."""
    return {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}


def run(command, cwd, timeout=600):
    return subprocess.run(command, cwd=str(cwd), env=subprocess_env(), capture_output=True, text=True,
                          timeout=timeout)


def run_script(script, *args, cwd=MODEL_DIR, timeout=600):
    """Runs train_market1501.py / train_mars.py as a user would (cwd matters for finalize/freeze)."""
    return run([sys.executable, os.path.join(MODEL_DIR, script), *args], cwd=cwd, timeout=timeout)


def value(stdout, prefix):
    lines = [line for line in stdout.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting with {prefix!r} in:\n{stdout[-3000:]}"
    return float(lines[-1].rsplit(":", 1)[1])
