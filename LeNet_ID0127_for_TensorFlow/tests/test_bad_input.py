"""User mistakes reach the user as one '[Error] ...' line naming the file or flag, with a non-zero exit.

The entry scripts' mains run in-process through lenet_cli.run, as their __main__ does; the slow tests run
the real command lines and launchers once each, where a traceback or TensorFlow's start-up noise would show.
"""
import gzip
import os
import resource
import shutil
import struct
import subprocess
import sys

import pytest
import tensorflow as tf

import LeNet
import LeNet_frozen_graph
import LeNet_online_inference
import LeNet_preprocess
import lenet_model
import run_safety
from conftest import MODEL_DIR, assert_one_line_error, environment, run, run_in_process, run_python

SMALL = ["--validation_size=500", "--epochs=1", "--steps=2"]


@pytest.fixture
def broken(small_mnist, tmp_path):
    target = tmp_path / "mnist"
    shutil.copytree(small_mnist, target)
    return target


def train(data_path, tmp_path, capsys, *flags):
    return run_in_process(LeNet.main, [f"--data_path={data_path}", f"--output_path={tmp_path}/out", *flags], capsys)


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    result = train(tmp_path / "empty", tmp_path, capsys, *SMALL)
    assert_one_line_error(*result, str(tmp_path / "empty"), "missing train-images-idx3-ubyte.gz")


def test_missing_folder(tmp_path, capsys):
    assert_one_line_error(*train(tmp_path / "nope", tmp_path, capsys), "--data_path", "folder not found")


def test_wrong_magic_number(broken, tmp_path, capsys):
    path = broken / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path) as handle:
        data = handle.read()
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">I", 2049) + data[4:])
    result = train(broken, tmp_path, capsys, *SMALL)
    assert_one_line_error(*result, "t10k-images-idx3-ubyte.gz", "bad magic number 2049")


def test_truncated_gzip(broken, tmp_path, capsys):
    path = broken / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    assert_one_line_error(*train(broken, tmp_path, capsys, *SMALL), "train-images-idx3-ubyte.gz", "truncated")


def test_count_mismatch(broken, tmp_path, capsys):
    with gzip.open(broken / "train-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">II", 2049, 1999) + bytes(1999))
    assert_one_line_error(*train(broken, tmp_path, capsys, *SMALL), "2000 images", "1999 labels")


@pytest.mark.parametrize("flag, fragment", [
    ("--batch_size=abc", "argument --batch_size: invalid positive int value: 'abc'"),
    ("--batch_size=0", "argument --batch_size: must be a positive integer"),
    ("--learing_rata=fast", "argument --learing_rata/--learning_rate"),
    ("--precision_mode=fp8", "argument --precision_mode: invalid choice: 'fp8'"),
    ("--validation_size=-1", "argument --validation_size: must be >= 0"),
    ("--loss_scale_value=0.5", "argument --loss_scale_value: must be 0 (dynamic) or >= 1, got 0.5"),
])
def test_bad_flag_values(flag, fragment, small_mnist, tmp_path, capsys):
    code, stdout, stderr = train(small_mnist, tmp_path, capsys, flag)
    assert code == 2
    assert_one_line_error(code, stdout, stderr, fragment)


def test_restore_path_without_checkpoint(small_mnist, tmp_path, capsys):
    result = train(small_mnist, tmp_path, capsys, *SMALL, f"--restore_path={tmp_path}")
    assert_one_line_error(*result, "--restore_path", "no checkpoint found")


@pytest.fixture(scope="module")
def foreign_checkpoints(tmp_path_factory):
    """(alien, misshaped): a 300-variable checkpoint of another network (its full listing in an error was
    26,000 characters), and one with LeNet's names but a 5-class last layer."""
    folder = tmp_path_factory.mktemp("foreign")
    layers = {f"resnet_block_{i}/conv_{j}/kernel": [1, 1, 2, 2] for i in range(100) for j in range(3)}
    lenet = {f"{scope}/{kind}": shape for scope, shape in
             (("layer_1", [5, 5, 1, 6]), ("layer_2", [5, 5, 6, 16]), ("fc_1", [784, 120]), ("fc_2", [120, 84]),
              ("fc_3", [84, 5])) for kind in ("weights", "bias")}
    lenet.update({name: [shape[-1]] for name, shape in lenet.items() if name.endswith("/bias")})
    prefixes = []
    for name, variables in (("alien", layers), ("misshaped", lenet)):
        with tf.Graph().as_default():
            saved = [tf.compat.v1.get_variable(var, shape) for var, shape in variables.items()]
            with tf.compat.v1.Session() as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                prefixes.append(tf.compat.v1.train.Saver(saved).save(sess, str(folder / name / "model.ckpt-7")))
    return prefixes


def one_error_line(stderr):
    line = next(line for line in stderr.splitlines() if line.startswith("[Error]"))
    assert len(line) <= 310, len(line)
    return line


def test_a_checkpoint_of_another_network_is_one_short_line(foreign_checkpoints, small_mnist, tmp_path, capsys):
    alien, misshaped = foreign_checkpoints
    for main, argv in ((LeNet.main, [f"--data_path={small_mnist}", f"--output_path={tmp_path / 'warm'}", *SMALL,
                                     f"--restore_path={alien}"]),
                       (LeNet_frozen_graph.main, [f"--ckpt_path={alien}", f"--output_path={tmp_path / 'x.pb'}"])):
        result = run_in_process(main, argv, capsys)
        assert_one_line_error(*result, f"[Error] {alien} is not a checkpoint of LeNet: it holds 0 of its 10 "
                                       "variables; first missing: fc_1/bias")
        one_error_line(result[2])
    assert not (tmp_path / "x.pb").exists()

    result = train(small_mnist, tmp_path, capsys, *SMALL, f"--restore_path={os.path.dirname(misshaped)}",
                   "--restore_exclude=fc_1/")
    assert_one_line_error(*result, "holds 6 of its 8 variables; fc_3/bias has shape [5] there, [10] in LeNet")


def test_resuming_from_a_checkpoint_of_another_network_fails_and_keeps_it(foreign_checkpoints, small_splits,
                                                                           tmp_path, capsys):
    ckpt_dir = tmp_path / "ckpt_npu"
    shutil.copytree(os.path.dirname(foreign_checkpoints[0]), ckpt_dir)
    before = sorted(p.name for p in ckpt_dir.iterdir())
    with pytest.raises(run_safety.RunSafetyError, match=r"holds 0 of its \d+ variables; first missing: "):
        LeNet.run(LeNet.parse_args([f"--output_path={tmp_path}", *SMALL]), small_splits)
    assert sorted(p.name for p in ckpt_dir.iterdir()) == before


def test_a_warm_start_that_loads_nothing_is_an_error(foreign_checkpoints, small_mnist, tmp_path, capsys):
    result = train(small_mnist, tmp_path, capsys, *SMALL, f"--restore_path={foreign_checkpoints[1]}",
                   "--restore_exclude=layer_,fc_")
    assert_one_line_error(*result, "--restore_exclude=layer_,fc_ leaves no variable to load")


def test_an_exclusion_that_matches_nothing_is_an_error(foreign_checkpoints, small_mnist, tmp_path, capsys):
    # Before, the original README's linear/ matched nothing and the layers it meant to drop were loaded.
    result = train(small_mnist, tmp_path, capsys, *SMALL, f"--restore_path={foreign_checkpoints[1]}",
                   "--restore_exclude=fc_3/,linar/")
    assert_one_line_error(*result, "--restore_exclude=fc_3/,linar/: linar/ matches no LeNet variable (scopes: "
                                   "layer_1/, layer_2/, fc_1/, fc_2/, fc_3/; linear/ means fc_1/, fc_2/, fc_3/)")


def test_explicit_resume_without_a_checkpoint(small_mnist, tmp_path, capsys):
    result = train(small_mnist, tmp_path, capsys, *SMALL, "--resume=True")
    assert_one_line_error(*result, "--resume=True: ", "ckpt_npu holds no checkpoint to resume from")


def test_a_second_run_on_a_locked_output_folder(small_mnist, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    with run_safety.FolderLock(str(tmp_path / "out")):
        result = train(small_mnist, tmp_path, capsys, *SMALL)
    assert_one_line_error(*result, f"{tmp_path / 'out'} is in use by another run (pid={os.getpid()} ")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".run.lock"]


@pytest.fixture(scope="module")
def lenet_checkpoint(tmp_path_factory):
    """An untrained LeNet checkpoint prefix: enough for the freezing errors."""
    with tf.Graph().as_default():
        lenet_model.inference(tf.compat.v1.placeholder(tf.float32, [None, 784]))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return tf.compat.v1.train.Saver().save(sess, str(tmp_path_factory.mktemp("lenet") / "model.ckpt-1"))


def test_unwritable_outputs(lenet_checkpoint, small_mnist, tmp_path, capsys):
    # A path below a file: it cannot be created even as root, which ignores permission bits.
    (tmp_path / "file").write_text("")
    blocked = tmp_path / "file" / "out"
    result = run_in_process(LeNet.main, [f"--data_path={small_mnist}", f"--output_path={blocked}", *SMALL], capsys)
    assert_one_line_error(*result, f"[Error] --output_path={blocked}: cannot write there: Not a directory")
    result = run_in_process(LeNet_frozen_graph.main, [f"--ckpt_path={lenet_checkpoint}",
                                                      f"--output_path={blocked / 'x.pb'}"], capsys)
    assert_one_line_error(*result, f"[Error] --output_path={blocked / 'x.pb'}: cannot write there: ")


def test_freezing_a_damaged_checkpoint(lenet_checkpoint, tmp_path, capsys):
    damaged = tmp_path / "model.ckpt-1"
    for part in (".index", ".data-00000-of-00001"):
        shutil.copy(lenet_checkpoint + part, str(damaged) + part)
    data = tmp_path / "model.ckpt-1.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    result = run_in_process(LeNet_frozen_graph.main, [f"--ckpt_path={damaged}", f"--output_path={tmp_path}/x.pb"],
                            capsys)
    assert_one_line_error(*result, f"[Error] --ckpt_path {damaged}: damaged checkpoint: ")
    one_error_line(result[2])
    # A folder whose only checkpoint is damaged: never a silent choice, one line naming the folder.
    result = run_in_process(LeNet_frozen_graph.main, [f"--ckpt_path={tmp_path}", f"--output_path={tmp_path}/x.pb"],
                            capsys)
    assert_one_line_error(*result, f"none of the 1 checkpoints in {tmp_path} loads")
    assert not (tmp_path / "x.pb").exists()


def test_inference_with_the_graph_of_another_network(tmp_path, capsys):
    with tf.Graph().as_default() as graph:
        tf.identity(tf.compat.v1.placeholder(tf.float32, [None, 3], name="features"), name="embedding")
    (tmp_path / "other.pb").write_bytes(graph.as_graph_def().SerializeToString())
    result = run_in_process(LeNet_online_inference.main, [f"--model_path={tmp_path}/other.pb",
                                                          f"--output_dir={tmp_path}"], capsys)
    assert_one_line_error(*result, f"--model_path {tmp_path}/other.pb: not a LeNet frozen graph with input_image:0")
    one_error_line(result[2])


def test_freeze_without_checkpoint(tmp_path, capsys):
    result = run_in_process(LeNet_frozen_graph.main, [f"--ckpt_path={tmp_path}", f"--output_path={tmp_path}/x.pb"],
                            capsys)
    assert_one_line_error(*result, "--ckpt_path", "no checkpoint found")


def test_inference_with_a_file_that_is_no_graph(tmp_path, capsys):
    (tmp_path / "x.pb").write_bytes(b"not a graph")
    result = run_in_process(LeNet_online_inference.main, [f"--model_path={tmp_path}/x.pb", f"--output_dir={tmp_path}"],
                            capsys)
    assert_one_line_error(*result, "--model_path", "not a GraphDef")


def test_preprocess_without_test_files(tmp_path, capsys):
    result = run_in_process(LeNet_preprocess.main, [f"--data_path={tmp_path}", f"--output_path={tmp_path}/b"], capsys)
    assert_one_line_error(*result, "missing t10k-images-idx3-ubyte.gz")


def test_preprocess_that_finds_no_room_is_one_line(small_mnist, tmp_path, capsys):
    """A file size limit below one image's 3,136 bytes (EFBIG: the same code path as a full disk's ENOSPC):
    numpy's tofile cut the file at the limit and went on with exit status 0."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000, hard))
    try:
        result = run_in_process(LeNet_preprocess.main, [f"--data_path={small_mnist}", f"--output_path={tmp_path}/b"],
                                capsys)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert_one_line_error(*result, f"File too large writing {tmp_path}/b: raise the file size limit (ulimit -f), "
                                   "and run again")


@pytest.mark.slow
@pytest.mark.parametrize("script, bad_flag", [("LeNet.py", "--batch_size=0"), ("LeNet_frozen_graph.py", "--ckpt_path"),
                                              ("LeNet_online_inference.py", "--batchSize=x"),
                                              ("LeNet_preprocess.py", "--output_path")])
def test_help_and_a_bad_flag_answer_before_tensorflow_is_imported(script, bad_flag, tmp_path):
    # A tensorflow package that cannot be imported: any import before the flags are parsed fails the script.
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('tensorflow imported too early')\n")
    env = environment()
    env["PYTHONPATH"] = str(tmp_path)
    for argv, code in (["--help"], 0), ([bad_flag], 2):
        proc = subprocess.run([sys.executable, script, *argv], cwd=MODEL_DIR, env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == code, proc.stderr
        if code == 0:
            assert proc.stdout.startswith(f"usage: {script}") and not proc.stderr
        else:
            flag = bad_flag.split("=")[0]
            assert_one_line_error(code, proc.stdout, proc.stderr, f"[Error] {script}: argument {flag}")
            assert len(proc.stderr.splitlines()) == 1


@pytest.mark.slow
def test_command_line_prints_one_line_and_no_traceback(tmp_path):
    # One script stands for all: each __main__ is the same lenet_cli.run call, tested in-process above.
    script, argv, fragments = "LeNet.py", [f"--data_path={tmp_path}/nope"], ["--data_path", "folder not found"]
    proc = run_python(MODEL_DIR, script, *argv)
    assert proc.returncode == 1
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, *fragments)


@pytest.mark.slow
def test_launcher_without_data_path_prints_the_original_error():
    proc = run(["bash", "train_full_1p.sh"], cwd=f"{MODEL_DIR}/test")
    assert proc.returncode == 1
    assert proc.stdout.strip() == '[Error] para "data_path" must be config'


@pytest.mark.slow
def test_launcher_relays_an_unwritable_checkpoint_folder_and_keeps_the_run(model_copy, smoke_mnist):
    out = model_copy / "test" / "output" / "0"
    out.mkdir(parents=True)
    (out / "ckpt_npu").write_text("a file where the checkpoint folder goes")
    (out / "train_0.log").write_text("the previous run's log\n")
    proc = run(["bash", "test/train_performance_1p.sh", f"--data_path={smoke_mnist}", "--resume=True"],
               cwd=model_copy)
    assert proc.returncode == 1
    errors = [line for line in proc.stdout.splitlines() if line.startswith("[Error]")]
    assert errors == [f"[Error] --output_path={out / 'ckpt_npu'}: cannot write there: File exists"], proc.stdout
    assert f"(full log: {out / 'train_0.log'})" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (out / "train_0.log").read_text().startswith("the previous run's log\n")
    assert (out / "ckpt_npu").read_text() == "a file where the checkpoint folder goes"
    assert not list(out.glob("*_perf.log")), "no summary for a failed run"


@pytest.mark.slow
def test_launcher_reports_a_checkpoint_that_finds_no_room_in_one_line_and_leaves_nothing_of_it(model_copy,
                                                                                                smoke_mnist):
    """A file size limit below the checkpoint's 1.3 MB stands for a full disk (EFBIG instead of ENOSPC, the same
    code path): the first save fails, in one line, and nothing of it is left in the checkpoint folder."""
    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, resource.RLIM_INFINITY))

    proc = subprocess.run(["bash", "test/train_performance_1p.sh", f"--data_path={smoke_mnist}", "--steps=5"],
                          cwd=model_copy, env=environment(), capture_output=True, text=True, timeout=600,
                          preexec_fn=limited)
    ckpt = model_copy / "test" / "output" / "0" / "ckpt_npu"
    errors = [line for line in proc.stdout.splitlines() if line.startswith("[Error]")]
    assert proc.returncode == 1 and errors == [
        f"[Error] File too large writing {ckpt}/model.ckpt-0.data-00000-of-00001: raise the file size limit "
        "(ulimit -f), and run again (no checkpoint was written yet)"], proc.stdout
    log = (ckpt.parent / "train_0.log").read_text()
    assert "Traceback" not in proc.stdout + proc.stderr + log
    assert list(ckpt.iterdir()) == []
