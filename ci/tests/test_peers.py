"""Every model's Keras peer (benchmarks/keras_peer.py) trained through ci/peer_timing.py, the benchmark's own
command, on the synthetic dataset of the model's benchmark run read by the model's input pipeline; one process
per model, as the benchmark runs them (the models' modules share names)."""
import json
import os
import subprocess
import sys
import tomllib

import pytest

from ci import smoke
from ci.peer_timing import PEER_RESULT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(REPO, "ci", "bench.toml"), "rb") as _handle:
    BENCH = tomllib.load(_handle)


def peer_run(model, tmp_path, *extra):
    # Small images keep MobileNetV1's peer quick; every other peer has one input size.
    env = dict(os.environ, BENCH_IMAGE_SIZE="96")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "ci", "peer_timing.py"),
                           os.path.join(REPO, model, "benchmarks", "keras_peer.py"), "--batch=8", "--steps=2",
                           *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return proc, [line for line in proc.stdout.splitlines() if line.startswith(PEER_RESULT)]


@pytest.mark.parametrize("model", sorted(BENCH))
def test_the_peer_trains_on_the_model_input_pipeline(model, tmp_path):
    data = smoke.ensure_dataset(BENCH[model]["dataset"], os.path.join(REPO, "ci", "work"))
    proc, results = peer_run(model, tmp_path, f"--data_path={data}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (line,) = results
    result = json.loads(line[len(PEER_RESULT):])
    assert result["input"] == "model pipeline" and result["precision"] == "float32"
    assert result["images_per_sec"] > 0


def test_a_peer_without_its_data_fails(tmp_path):
    # The model's own reader refuses the empty folder: one [Error] line naming it, no result, exit 1.
    empty = tmp_path / "empty"
    empty.mkdir()
    proc, results = peer_run("LeNet_ID0127_for_TensorFlow", tmp_path, f"--data_path={empty}")
    assert proc.returncode == 1 and results == []
    assert proc.stdout.splitlines()[-1].startswith(f"[Error] {os.path.join(REPO, 'LeNet_ID0127_for_TensorFlow')}")
    assert str(empty) in proc.stdout.splitlines()[-1] and "Traceback" not in proc.stderr
