"""User mistakes give one '[Error] ...' line and a non-zero exit, never a traceback."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import train_market1501
import train_mars
from conftest import MODEL_DIR, call, one_error_line, run, subprocess_env


@pytest.fixture
def market_copy(small_market, tmp_path):
    target = tmp_path / "market"
    shutil.copytree(small_market, target)
    return target


@pytest.mark.slow
def test_launcher_without_data_path(tmp_path):
    proc = run(["bash", os.path.join(MODEL_DIR, "test", "train_performance_1p.sh")], cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.strip() == '[Error] para "data_path" must be config'


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train_market1501.py", "train_mars.py"])
def test_help_and_flag_mistakes_answer_before_tensorflow_loads(script, tmp_path):
    """A tensorflow package that fails to import stands in for TensorFlow: --help, a bad flag value and a
    missing dataset folder must not need it (they answer in well under a second)."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text('raise ImportError("TensorFlow was imported")\n')
    env = {**subprocess_env(), "PYTHONPATH": str(tmp_path)}

    def script_run(*args):
        return subprocess.run([sys.executable, script, *args], cwd=MODEL_DIR, env=env, capture_output=True,
                              text=True, timeout=120)

    usage = script_run("--help")
    assert usage.returncode == 0 and usage.stdout.startswith(f"usage: {script} ") and not usage.stderr, usage.stderr
    bad = script_run("--batch_size=0")
    assert (bad.returncode, bad.stdout) == (2, "") and bad.stderr == (
        f"[Error] {script}: argument --batch_size: must be a positive integer, got '0'\n")
    missing = script_run(f"--dataset_dir={tmp_path / 'none'}")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == f"[Error] --dataset_dir: {tmp_path / 'none'} is not a folder\n"


def test_malformed_file_name(market_copy):
    folder = market_copy / "bounding_box_train"
    first = sorted(os.listdir(folder))[0]
    os.rename(folder / first, folder / "person_0002.jpg")
    one_error_line(*call(train_market1501, f"--dataset_dir={market_copy}"),
                   "person_0002.jpg", "PPPP_cXsY_FFFFFF_BB.jpg")


def test_wrong_image_size(market_copy):
    folder = market_copy / "bounding_box_train"
    name = sorted(os.listdir(folder))[5]
    Image.new("RGB", (100, 100)).save(folder / name)
    one_error_line(*call(train_market1501, f"--dataset_dir={market_copy}"), name, "100x100", "64x128")


def test_a_truncated_jpeg_is_named_before_training(market_copy):
    """A file cut short (an interrupted copy) is found from its last bytes, whichever split it falls in."""
    folder = market_copy / "bounding_box_train"
    name = sorted(os.listdir(folder))[7]
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    one_error_line(*call(train_market1501, f"--dataset_dir={market_copy}"), name, "truncated JPEG")


def test_batch_size_not_divisible_by_four(small_market):
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--batch_size=30"),
                   "--batch_size", "divisible by 4")


def test_fewer_than_32_identities(market_copy):
    folder = market_copy / "bounding_box_train"
    for name in os.listdir(folder):
        if int(name.split("_")[0]) > 60:
            os.remove(folder / name)
    one_error_line(*call(train_market1501, f"--dataset_dir={market_copy}", "--batch_size=16"),
                   "27 training identities", "at least 32")


def test_batch_needs_as_many_identities(small_market):
    # 54 training identities cannot fill 64 distinct identities per step.
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--batch_size=256"),
                   "at least 64")


def test_bad_flag_values(small_market):
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--loss_mode=softmax"),
                   "--loss_mode")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--batch_size=-4"),
                   "--batch_size", "positive integer")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--keep_checkpoint_max=1"),
                   "--keep_checkpoint_max", "must be 2 or more")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--precision_mode=fp8"),
                   "--precision_mode")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--over_dump=yes"),
                   "--over_dump", "expected True or False")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--mode=freeze"),
                   "--restore_path: required")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--mode=export",
                         f"--restore_path={small_market}"), "--restore_path: no checkpoint")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--mode=freeze", "--restore_path=x",
                         "--warm_start_path=x"), "--warm_start_path: train mode only")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", "--restore_path=x",
                         "--warm_start_path=x"), "--warm_start_path: give it or --restore_path, not both")
    one_error_line(*call(train_market1501, f"--dataset_dir={small_market}", f"--warm_start_path={small_market}"),
                   "--warm_start_path: no checkpoint in folder")


def test_mars_layout_and_names(small_mars, tmp_path):
    target = tmp_path / "mars"
    shutil.copytree(small_mars, target)
    listing = target / "info" / "train_name.txt"
    names = listing.read_text().splitlines()
    listing.write_text("\n".join(["0002_C1_T1.jpg"] + names[1:]) + "\n")
    one_error_line(*call(train_mars, f"--dataset_dir={target}"), "train_name.txt", "0002_C1_T1.jpg")
    shutil.rmtree(target / "info")
    one_error_line(*call(train_mars, f"--dataset_dir={target}"), "info: missing folder")


def test_mars_wrong_image_size(small_mars, tmp_path):
    target = tmp_path / "mars"
    shutil.copytree(small_mars, target)
    first = (target / "info" / "train_name.txt").read_text().split()[0]
    Image.fromarray(np.zeros((128, 64, 3), np.uint8)).save(target / "bbox_train" / first[:4] / first)
    one_error_line(*call(train_mars, f"--dataset_dir={target}"), first, "expected 128x256")
