"""The original READMEs' commands, as written (only the data set placed where they expect it):

- the research README (LeNet_for_TensorFlow): put MNIST in the model folder, edit batch_size / steps / epochs /
  data_path="../MNIST" at the top of test/train_full_1p.sh, run it from test/ without arguments;
- the ModelZoo README (ID0127): `bash train_full_1p.sh --data_path=../MNIST` from test/, with its script
  parameter `--learing_rata`, then transfer learning (迁移学习指导): the same command with `--restore_path` and
  the README's `--restore_exclude` value `linear/` ("do not load the FC layers"), then freezing with no arguments.

One launcher run trains for real; the fine-tuning command goes through the launcher with a stand-in python3
that records the LeNet.py command line, which then runs in-process (one TensorFlow start-up in all).
"""
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import LeNet
import LeNet_frozen_graph
import contract
from conftest import environment, run, run_in_process

pytestmark = pytest.mark.slow

LAYERS = ("layer_1/weights", "layer_1/bias", "layer_2/weights", "layer_2/bias")
FULLY_CONNECTED = ("fc_1/weights", "fc_1/bias", "fc_2/weights", "fc_2/bias", "fc_3/weights", "fc_3/bias")

# Stands in for python3 in the launcher: records the LeNet.py command line, prints the markers the original
# grepped and writes the result.json the launcher reads.
STAND_IN = """#!/bin/bash
[ "$1" != - ] || exec "$REAL_PYTHON" "$@"  # the launcher's own Python (reading result.json)
printf '%s\\n' "$@" >"$ARGV_FILE"
echo "epoch : 1----step : 1----loss : 2.3----sec/step : 0.01"
echo "Final Accuracy accuracy : 0.5"
echo "Final Performance ms/step : 10.0"
for arg in "$@"; do case $arg in --output_path=*) out=${arg#*=} ;; esac; done
echo '{"ms_per_step": 10.0, "images_per_sec": 6400.0, "accuracy": 0.5, "final_loss": 2.3}' >"$out/result.json"
"""


def edit_top(launcher, **values):
    """Sets `name=value` lines at the top of a launcher, as its README says to."""
    text = launcher.read_text()
    for name, value in values.items():
        old = next(line for line in text.splitlines() if line.startswith(f"{name}="))
        text = text.replace(old + "\n", f"{name}={value}\n", 1)
    launcher.write_text(text)


def test_the_readme_commands_train_fine_tune_and_freeze(model_copy, smoke_mnist, tmp_path, monkeypatch, capsys):
    test_dir, out = model_copy / "test", model_copy / "test" / "output" / "0"
    (model_copy / "MNIST").symlink_to(smoke_mnist)
    edit_top(test_dir / "train_full_1p.sh", batch_size=64, steps=20, epochs=1, data_path='"../MNIST"')
    proc = run(["bash", "train_full_1p.sh"], cwd=test_dir)
    trained = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout + proc.stderr)
    assert contract.check(trained, proc.returncode) == [], proc.stdout + proc.stderr
    assert len(trained.losses) == 20
    source = out / "ckpt_npu" / "model.ckpt-20"
    assert (out / "ckpt_npu" / "model.ckpt-20.index").is_file()

    stand_in = tmp_path / "bin"
    stand_in.mkdir()
    (stand_in / "python3").write_text(STAND_IN)
    (stand_in / "python3").chmod(stat.S_IRWXU)
    env = environment()
    env.update(PATH=f"{stand_in}{os.pathsep}{env['PATH']}", ARGV_FILE=str(tmp_path / "argv"),
               REAL_PYTHON=sys.executable)
    command = ["bash", "train_full_1p.sh", "--data_path=../MNIST", "--learing_rata=0.002",
               "--restore_path=output/0/ckpt_npu", "--restore_exclude=linear/"]
    launched = subprocess.run(command, cwd=test_dir, env=env, capture_output=True, text=True, timeout=120)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert "unknown argument" not in launched.stdout + launched.stderr
    # The fresh run moved the trained one aside; the launcher follows it there.
    prev = out.parent / "0.prev"
    assert f"--restore_path: the previous run is kept as {out}.prev; loading {prev / 'ckpt_npu'}" in launched.stdout
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[0] == "LeNet.py"
    assert os.path.normpath(argv[1]) == f"--data_path={model_copy / 'MNIST'}"
    for expected in ( f"--output_path={out}", "--learning_rate=0.002",
                     "--epochs=1", "--steps=20", f"--restore_path={prev / 'ckpt_npu'}", "--restore_exclude=linear/"):
        assert expected in argv, (expected, argv)

    # That command line, in-process.
    fine_tuned = LeNet.run(LeNet.parse_args(argv[1:]))
    assert len(fine_tuned.losses) == 20
    assert f"initialised 4 variables from {prev / 'ckpt_npu' / 'model.ckpt-20'} (excluded: linear/)" in \
        capsys.readouterr().out
    before = tf.train.load_checkpoint(str(prev / "ckpt_npu" / "model.ckpt-20"))
    start = tf.train.load_checkpoint(str(out / "ckpt_npu" / "model.ckpt-0"))  # saved right after initialisation
    for name in LAYERS:
        np.testing.assert_array_equal(start.get_tensor(name), before.get_tensor(name))
    for name in FULLY_CONNECTED[::2]:  # the weights: re-initialised (the biases start at zero either way)
        assert not np.allclose(start.get_tensor(name), before.get_tensor(name)), name

    # Freezing right after training, with no arguments, finds the launcher's checkpoints.
    monkeypatch.setattr(LeNet_frozen_graph, "HERE", str(model_copy))
    monkeypatch.delenv("ASCEND_DEVICE_ID", raising=False)
    monkeypatch.chdir(model_copy)
    code, stdout, stderr = run_in_process(LeNet_frozen_graph.main, [], capsys)
    assert code == 0, stderr
    assert f"froze {out / 'ckpt_npu' / 'model.ckpt-20'} into LeNet_frozen_graph.pb" in stdout
    assert (model_copy / "LeNet_frozen_graph.pb").stat().st_size > 400_000
