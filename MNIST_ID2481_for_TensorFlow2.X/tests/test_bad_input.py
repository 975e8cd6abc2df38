"""User mistakes end with one '[Error] ...' line naming the flag or file, a non-zero exit, no traceback.
mnist_main.main runs in this process (quick tier); the launcher cases run bash (slow tier)."""
import shutil

import pytest

from conftest import MODEL_DIR, run

SHORT = ["--train_epochs=1", "--batch_size=128", "--download=False"]


def assert_one_line_error(result, *fragments):
    code, out, err = result
    assert code != 0
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("[Error]")]
    assert len(errors) == 1, err[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.slow
def test_launcher_without_data_path_prints_the_original_error():
    proc = run(["bash", "train_performance_1p_static_eval.sh"], cwd=f"{MODEL_DIR}/test")
    assert proc.returncode == 1
    assert proc.stdout.strip() == '[Error] para "data_path" must be config'


@pytest.mark.slow
def test_launcher_reports_a_training_failure(model_copy, tmp_path):
    proc = run(["bash", "test/train_full_1p.sh", f"--data_path={tmp_path}", "--bogus=1"], cwd=model_copy)
    assert proc.returncode == 1
    assert "[Warning] train_full_1p.sh: unknown argument --bogus=1 ignored" in proc.stderr
    assert "[Error] mnist_main.py failed with exit status 1" in proc.stdout
    assert "has no TFDS-prepared mnist/3.0.1/dataset_info.json" in proc.stdout
    assert not list((model_copy / "test" / "output" / "0").glob("*_acc.log")), "no summary for a failed run"


def test_missing_data_dir(main_in_process, tmp_path):
    result = main_in_process(f"--data_dir={tmp_path}/nope", f"--model_dir={tmp_path}/m", "--download=False")
    assert_one_line_error(result, "--data_dir: folder not found")


def test_download_without_network_fails_at_once(main_in_process, tmp_path):
    result = main_in_process(f"--data_dir={tmp_path}", f"--model_dir={tmp_path}/m")
    assert_one_line_error(result, "--download=True", "cannot be downloaded here")


def test_corrupt_record(main_in_process, tiny_data, tmp_path):
    shutil.copytree(tiny_data, tmp_path / "data")
    shard = tmp_path / "data" / "mnist" / "3.0.1" / "mnist-train.tfrecord-00000-of-00002"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)  # same length, broken content
    shard.write_bytes(bytes(raw))
    result = main_in_process(f"--data_dir={tmp_path / 'data'}", f"--model_dir={tmp_path}/m", *SHORT)
    assert_one_line_error(result, "reading the data failed", "corrupted record")


def test_metadata_mismatch(main_in_process, tiny_data, tmp_path):
    shutil.copytree(tiny_data, tmp_path / "data")
    (tmp_path / "data" / "mnist" / "3.0.1" / "mnist-test.tfrecord-00001-of-00002").unlink()
    result = main_in_process(f"-dd={tmp_path / 'data'}", f"-md={tmp_path}/m", *SHORT)
    assert_one_line_error(result, "dataset_info.json: lists mnist-test.tfrecord-00001-of-00002, which is missing")


@pytest.mark.parametrize("flag, fragment", [
    ("--batch_size=abc", "flag --batch_size=abc: invalid literal for int()"),
    ("--precision_mode=fp8", "flag --precision_mode=fp8: value should be one of"),
])
def test_bad_flag_values(main_in_process, flag, fragment, tmp_path):
    result = main_in_process("--download=False", f"--model_dir={tmp_path}", flag)
    assert result[0] == 2
    assert_one_line_error(result, "[Error] mnist_main.py: " + fragment)


def test_batch_larger_than_the_test_split(main_in_process, tiny_data, tmp_path):
    result = main_in_process(f"--data_dir={tiny_data}", f"--model_dir={tmp_path}/m", "--download=False",
                             "--batch_size=512")
    assert_one_line_error(result, "--batch_size=512: larger than the train (1024) or test (256) split")


@pytest.mark.parametrize("strategy, fragment", [("parameter_server", "not supported here"),
                                                ("multi_worker_mirrored", "needs TF_CONFIG")])
def test_strategies_without_support_or_cluster_are_refused(main_in_process, tiny_data, tmp_path, strategy,
                                                            fragment):
    result = main_in_process(f"--data_dir={tiny_data}", f"--model_dir={tmp_path}/m", "--download=False",
                             f"-ds={strategy}")
    assert_one_line_error(result, f"--distribution_strategy={strategy}: {fragment}")


def test_malformed_tf_config(main_in_process, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}')
    result = main_in_process(f"--data_dir={tiny_data}", f"--model_dir={tmp_path}/m", "--download=False")
    assert_one_line_error(result, "TF_CONFIG: task", "is not one of the 1 workers")
