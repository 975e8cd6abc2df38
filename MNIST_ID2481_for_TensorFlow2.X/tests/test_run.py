"""mnist_main.run in this process on injected synthetic datasets (quick tier): the markers the launchers grep,
checkpoints and resume, the SavedModel. float32 throughout (--precision_mode=must_keep_origin_dtype), so the
exact comparisons below compare float32 with float32 on every CPU."""
import re

import numpy as np
import pytest
import tensorflow as tf

import mnist_main
from conftest import run_stats

FLOAT32 = "--precision_mode=must_keep_origin_dtype"


def train(parse_flags, model_dir, datasets, *args):
    values = parse_flags(f"--model_dir={model_dir}", "--batch_size=64", "--momentum=0.9", "--seed=1", FLOAT32, *args)
    return mnist_main.run(values, datasets_override=datasets)


def steps(out):
    return [int(s) for s in re.findall(r"^step:(\d+) ,loss: [\d.]+ ,time: [\d.]+$", out, re.M)]


def test_run_prints_the_markers_and_writes_checkpoints_and_a_saved_model(parse_flags, small_datasets, tmp_path,
                                                                         capsys):
    stats = train(parse_flags, tmp_path, small_datasets, "--train_epochs=2", "--eval_static=True")
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "device: CPU, precision: float32 (must_keep_origin_dtype)"
    assert ("data: 512 train / 128 test examples; 8 steps per epoch, 2 eval steps; batch shape (64, 28, 28, 1) "
            "(static)") in out
    assert steps(out) == list(range(1, 17))
    losses = [float(v) for v in re.findall(r"^step:\d+ ,loss: ([\d.]+)", out, re.M)]
    assert losses[-1] < losses[0]
    assert out.count("\nepoch_duration: ") == 2 and re.search(r"^params: \{'verbose': 2, 'epochs': 2", out, re.M)
    assert re.search(r"^ms/step: [\d.]+\nimgs/s: [\d.]+\nFinal Training Duration sec : [\d.]+$", out, re.M)
    final = re.findall(r"^2/2 - \d+s - loss: [\d.]+ - sparse_categorical_accuracy: ([\d.]+)$", out, re.M)
    assert len(final) == 1 and float(final[0]) == pytest.approx(stats["accuracy_top_1"], abs=5e-5)
    assert run_stats(out) == stats and stats["accuracy_top_1"] > 0.5
    assert [p.name for p in sorted(tmp_path.glob("model.ckpt-*.index"))] == [
        "model.ckpt-0001.index", "model.ckpt-0002.index"]
    assert list((tmp_path / "train").glob("events.out.tfevents.*"))
    assert list((tmp_path / "validation").glob("events.out.tfevents.*"))
    # The exported SavedModel classifies the 128 test images (the 2 evaluated batches) as the evaluation did.
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    images, labels = next(iter(small_datasets[1].batch(128)))
    accuracy = np.mean(np.argmax(loaded.serve(images).numpy(), 1) == labels.numpy())
    assert accuracy == pytest.approx(stats["accuracy_top_1"], abs=1e-6)


def test_restart_resumes_after_the_last_epoch_checkpoint(parse_flags, small_datasets, tmp_path, capsys):
    train(parse_flags, tmp_path, small_datasets, "--train_epochs=1")
    assert steps(capsys.readouterr().out) == list(range(1, 9))
    train(parse_flags, tmp_path, small_datasets, "--train_epochs=2")
    out = capsys.readouterr().out
    assert f"resuming from {tmp_path}/model.ckpt-0001 at epoch 1" in out
    assert steps(out) == list(range(9, 17))
    # The optimizer state came back too: its step counter continued at 8 and ended at 16.
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-0002"))
    counters = [k for k in reader.get_variable_to_shape_map() if "iteration" in k]
    assert counters and int(reader.get_tensor(counters[0])) == 16
    train(parse_flags, tmp_path, small_datasets, "--train_epochs=1", "--clean")
    out = capsys.readouterr().out
    assert "resuming" not in out and steps(out) == list(range(1, 9))
    assert not (tmp_path / "model.ckpt-0002.index").exists()


def test_the_default_strategy_trains_too(parse_flags, small_datasets, tmp_path, capsys):
    """--distribution_strategy=off: the default strategy, which the Ascend ranks use as well."""
    stats = train(parse_flags, tmp_path, small_datasets, "--train_epochs=1", "-ds=off")
    assert "off: rank 0 of 1, 1 replicas, batch 64 per replica" in capsys.readouterr().out
    assert stats["loss"] > 0 and 0 <= stats["accuracy_top_1"] <= 1
