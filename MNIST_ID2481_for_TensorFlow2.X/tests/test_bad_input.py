"""User mistakes end with one '[Error] ...' line naming the flag or file, a non-zero exit, no traceback, and
the previous run's checkpoints untouched. mnist_main.main runs in this process (quick tier); the launcher
cases run bash (slow tier)."""
import pathlib
import shutil
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import run_safety
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


ENTRY_SCRIPTS = sorted(path.name for path in pathlib.Path(MODEL_DIR).glob("*.py")
                       if 'if __name__ == "__main__":' in path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("script", ENTRY_SCRIPTS)
def test_help_and_a_bad_flag_answer_before_tensorflow_loads(script, tmp_path):
    """Each entry script parses its flags before it imports TensorFlow, here a package that cannot load."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('TensorFlow loaded')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    shown = run([sys.executable, script, "--help"], cwd=MODEL_DIR, env=env, timeout=60)
    assert shown.returncode == 0 and "--data_dir" in shown.stdout and not shown.stderr, shown.stderr[-2000:]
    bad = run([sys.executable, script, "--batch_size=abc"], cwd=MODEL_DIR, env=env, timeout=60)
    assert bad.returncode != 0 and not bad.stdout
    assert len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith(f"[Error] {script}: "), bad.stderr[-2000:]


@pytest.mark.slow
def test_launcher_without_data_path_prints_the_original_error():
    proc = run(["bash", "train_performance_1p_static_eval.sh"], cwd=f"{MODEL_DIR}/test")
    assert proc.returncode == 1
    assert proc.stdout.strip() == '[Error] para "data_path" must be config'


@pytest.mark.slow
def test_launcher_relays_the_scripts_error_with_its_own_flag_name(model_copy, tmp_path):
    proc = run(["bash", "test/train_full_1p.sh", f"--data_path={tmp_path}", "--bogus=1"], cwd=model_copy)
    assert proc.returncode == 1
    assert "[Warning] train_full_1p.sh: unknown argument --bogus=1 ignored" in proc.stderr
    errors = [line for line in proc.stdout.splitlines() if line.startswith("[Error]")]
    assert errors == [f"[Error] --data_path: {tmp_path} has no TFDS-prepared mnist/3.0.1/dataset_info.json"]
    assert "(full log: " in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert not list((model_copy / "test" / "output" / "0").glob("*_acc.log")), "no summary for a failed run"


def test_missing_data_dir(main_in_process, tmp_path):
    result = main_in_process(f"--data_dir={tmp_path}/nope", f"--model_dir={tmp_path}/m", "--download=False")
    assert_one_line_error(result, "--data_dir: folder not found")


def test_download_without_network_fails_at_once(main_in_process, tmp_path):
    result = main_in_process(f"--data_dir={tmp_path}", f"--model_dir={tmp_path}/m")
    assert_one_line_error(result, "--download=True", "cannot be downloaded here")


@pytest.fixture
def data_copy(tiny_data, tmp_path):
    shutil.copytree(tiny_data, tmp_path / "data")
    return tmp_path / "data"


def shard(data, split="train", index=1):
    return data / "mnist" / "3.0.1" / f"mnist-{split}.tfrecord-{index:05d}-of-00002"


def test_a_flipped_byte_names_the_file_and_the_record(main_in_process, data_copy, tmp_path):
    raw = bytearray(shard(data_copy).read_bytes())
    raw[len(raw) // 2] ^= 0x40  # inside a record's payload: its checksum no longer matches
    shard(data_copy).write_bytes(bytes(raw))
    result = main_in_process(f"--data_dir={data_copy}", f"--model_dir={tmp_path}/m", *SHORT)
    assert_one_line_error(result, f"[Error] {shard(data_copy)}: record ", " is damaged (corrupted record at ")


def test_a_record_of_another_schema_names_the_file_and_the_missing_feature(main_in_process, data_copy, tmp_path):
    records = [tf.train.Example.FromString(r) for r in tf.data.TFRecordDataset(str(shard(data_copy)))
               .as_numpy_iterator()]
    with tf.io.TFRecordWriter(str(shard(data_copy))) as writer:
        for number, example in enumerate(records):
            if number == 3:
                example.features.feature["img"].CopyFrom(example.features.feature.pop("image"))
            writer.write(example.SerializeToString())
    result = main_in_process(f"--data_dir={data_copy}", f"--model_dir={tmp_path}/m", *SHORT)
    assert_one_line_error(result, f"[Error] {shard(data_copy)}: record 3 is not an MNIST example: ",
                          "image")


def test_unwritable_model_dir(main_in_process, tiny_data, tmp_path):
    (tmp_path / "file").write_text("")
    result = main_in_process(f"--data_dir={tiny_data}", f"--model_dir={tmp_path}/file/m", *SHORT)
    assert_one_line_error(result, f"[Error] --model_dir={tmp_path}/file/m: cannot write there: Not a directory")


def test_a_second_run_on_a_locked_model_dir_is_refused(main_in_process, tiny_data, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.ckpt-8.index").write_text("")
    with run_safety.FolderLock(str(tmp_path / "m")):
        result = main_in_process(f"--data_dir={tiny_data}", f"--model_dir={tmp_path}/m", *SHORT, "--clean")
    assert_one_line_error(result, f"{tmp_path}/m is in use by another run (pid=")
    assert (tmp_path / "m" / "model.ckpt-8.index").is_file(), "--clean must not touch a folder in use"


def test_a_checkpoint_of_another_model_is_one_line(main_in_process, tiny_data, tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    tf.train.Checkpoint(model=other).write(str(tmp_path / "m" / "model.ckpt-5"))
    result = main_in_process(f"--data_dir={tiny_data}", f"--model_dir={tmp_path}/m", *SHORT)
    assert_one_line_error(result, f"[Error] {tmp_path}/m/model.ckpt-5 is not a checkpoint of this model "
                          "(--momentum=0.0): it holds 0 of its 9 variables; first missing: optimizer/_iterations")
    assert len(result[2].splitlines()[-1]) <= 300 and sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        ".run.lock", "model.ckpt-5.data-00000-of-00001", "model.ckpt-5.index"]


def test_checkpoints_that_all_fail_to_load_are_never_a_silent_fresh_start(main_in_process, tiny_data, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.ckpt-8.index").write_text("not a checkpoint")
    result = main_in_process(f"--data_dir={tiny_data}", f"--model_dir={tmp_path}/m", *SHORT)
    assert_one_line_error(result, f"none of the 1 checkpoints in {tmp_path}/m loads (newest: model.ckpt-8)")


def test_a_nan_loss_stops_the_run_before_anything_nan_is_saved(main_in_process, tiny_data, tmp_path):
    result = main_in_process(f"--data_dir={tiny_data}", f"--model_dir={tmp_path}/m", *SHORT, "--learning_rate=1e6",
                             "--momentum=0.9", "--seed=1", "--precision_mode=must_keep_origin_dtype")
    assert_one_line_error(result, "[Error] loss is nan at step ", "; lower --learning_rate")
    assert not (tmp_path / "m" / "saved_model").exists()
    saved = [p.name for p in (tmp_path / "m").glob("model.ckpt-*.index")]
    assert saved == ["model.ckpt-0.index"]
    reader = tf.train.load_checkpoint(str(tmp_path / "m" / "model.ckpt-0"))
    names = [name for name in reader.get_variable_to_shape_map() if name.endswith("VARIABLE_VALUE")]
    assert len(names) == 17 and all(np.isfinite(reader.get_tensor(name)).all() for name in names)


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
