"""AlexNet test fixtures: small synthetic Dogs-vs-Cats sets, in-memory inputs, an isolated copy of the model
folder, runners.

Tiers: tests marked `slow` run the launchers or main.py as subprocesses, several workers, SIGKILL; the rest
call the code in-process on small injected data (bash ci/test.sh --quick runs those only)."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(MODEL_DIR)
REAL_PHOTOS = os.path.join(os.path.dirname(REPO), "shared", "datasets", "dogs_vs_cats")
sys.path.insert(0, MODEL_DIR)

import zoo_precision  # noqa: E402

zoo_precision.before_tensorflow()  # as the entry scripts: in-process tests run the kernels the launchers run

import data_loader  # noqa: E402
import main  # noqa: E402
from synthetic import dogs_cats  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs launchers or main.py as subprocesses, several workers, SIGKILL")

needs_real = pytest.mark.skipif(not os.path.isdir(os.path.join(REAL_PHOTOS, "train")),
                                reason=f"real photos not found at {REAL_PHOTOS}")


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """48 synthetic photos (24 per class) in the Kaggle layout."""
    return dogs_cats.generate(str(tmp_path_factory.mktemp("dogs_cats")), per_class=24)


def array_inputs(train_images=4, held_out_images=2, batch_size=2, seed=0, fill=None):
    """data_loader.Inputs of random 227x227 BGR images in memory (labels alternate), or all `fill` values."""
    rng = np.random.default_rng(seed)
    count = train_images + held_out_images
    images = rng.uniform(0, 255, (count, 227, 227, 3)).astype(np.float32) if fill is None else \
        np.full((count, 227, 227, 3), fill, np.float32)
    labels = np.arange(count, dtype=np.int32) % 2

    def datasets():
        import tensorflow as tf

        train = tf.data.Dataset.from_tensor_slices((images[:train_images], labels[:train_images]))
        held_out = tf.data.Dataset.from_tensor_slices((images[train_images:], labels[train_images:]))
        return train.repeat().batch(batch_size, drop_remainder=True), held_out.batch(batch_size).repeat()
    return data_loader.Inputs(train_images, held_out_images, datasets)


def flags(output_path, *extra):
    """main.py's flags for a tiny in-process run; --data_path is not read when inputs are injected."""
    return main.parse(["--data_path=unused", f"--output_path={output_path}", "--batch_size=2", "--step=2",
                       "--epoch=2", "--log_every=1", *extra])


@pytest.fixture
def model_copy(tmp_path):
    """The model folder without outputs, so launcher runs never touch the real test/output."""
    target = tmp_path / os.path.basename(MODEL_DIR)
    shutil.copytree(MODEL_DIR, target, ignore=shutil.ignore_patterns("output", "__pycache__", "tests"))
    return target


def environment(**extra):
    """The environment of a launcher or main.py subprocess: this venv first, no device or cluster inherited."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for name in ("ASCEND_DEVICE_ID", "RANK_ID", "TF_CONFIG"):
        env.pop(name, None)
    env.update(extra)
    return env


def run(command, cwd, timeout=300, env=None):
    return subprocess.run(command, cwd=str(cwd), env=env or environment(), capture_output=True, text=True,
                          timeout=timeout)


def main_py(cwd, *args, timeout=300, env=None):
    return run([sys.executable, os.path.join(str(cwd), "main.py"), *args], cwd, timeout, env)
