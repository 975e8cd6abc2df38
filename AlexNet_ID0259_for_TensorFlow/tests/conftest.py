"""AlexNet test fixtures: small synthetic Dogs-vs-Cats sets, an isolated copy of the model folder, runners."""
import os
import shutil
import subprocess
import sys

import pytest

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(MODEL_DIR)
REAL_PHOTOS = os.path.join(os.path.dirname(REPO), "shared", "datasets", "dogs_vs_cats")
sys.path.insert(0, MODEL_DIR)

from synthetic import dogs_cats  # noqa: E402

needs_real = pytest.mark.skipif(not os.path.isdir(os.path.join(REAL_PHOTOS, "train")),
                                reason=f"real photos not found at {REAL_PHOTOS}")


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """48 synthetic photos (24 per class) in the Kaggle layout."""
    return dogs_cats.generate(str(tmp_path_factory.mktemp("dogs_cats")), per_class=24)


@pytest.fixture
def model_copy(tmp_path):
    """The model folder without outputs, so launcher runs never touch the real test/output."""
    target = tmp_path / os.path.basename(MODEL_DIR)
    shutil.copytree(MODEL_DIR, target, ignore=shutil.ignore_patterns("output", "__pycache__", "tests"))
    return target


def run(command, cwd, timeout=300):
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("ASCEND_DEVICE_ID", None)
    return subprocess.run(command, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout)


def main_py(cwd, *args, timeout=300):
    return run([sys.executable, os.path.join(str(cwd), "main.py"), *args], cwd, timeout)
