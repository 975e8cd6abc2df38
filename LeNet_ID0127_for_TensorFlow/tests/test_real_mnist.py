"""Real MNIST (../shared/datasets/mnist) through the accuracy launcher and the frozen graph's real command lines.
The 98 % acceptance run (the launcher's 5 x 1000 steps, or 3 x 1000 at 0.003) is benchmarks/accuracy_real_mnist.sh:
at about 100 s it does not fit the zoo's 12-minute test suite beside the other models."""
import os

import pytest

import contract
from conftest import FLOAT32, MODEL_DIR, REAL_MNIST, final_value, run, run_python

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.path.isdir(REAL_MNIST), reason=f"{REAL_MNIST} is absent")]

# One epoch of 1,000 steps at learning rate 0.003 reached 96.58 % (seed 1) and 96.68 % (seed 2) in float32
# (RESULTS.md); 96.0 % leaves 0.6 points for other CPUs' float rounding. float32 is explicit: the threshold was
# measured in float32, and the launcher's default mixed mode trains in bfloat16 on CPUs with native bf16.
SCHEDULE = ["--epochs=1", "--steps=1000", "--learning_rate=0.003"]
MIN_ACCURACY = 0.96


def freeze_and_infer(ckpt_dir, data_path, work):
    """Freeze, preprocess and online inference, each in its own process; returns the online accuracy."""
    pb, bins = work / "LeNet_frozen_graph.pb", work / "bins"
    for script, *args in (("LeNet_frozen_graph.py", f"--ckpt_path={ckpt_dir}", f"--output_path={pb}"),
                          ("LeNet_preprocess.py", f"--data_path={data_path}", f"--output_path={bins}"),
                          ("LeNet_online_inference.py", f"--model_path={pb}", f"--data_dir={bins}",
                           f"--output_dir={work / 'out'}", "--batchSize=64")):
        proc = run_python(MODEL_DIR, script, *args)
        assert proc.returncode == 0, proc.stderr
    assert "average infer time:" in proc.stdout and "ms/img,FPS is" in proc.stdout
    return final_value(proc.stdout, "Final Online Inference Accuracy accuracy")


def test_full_launcher_learns_real_mnist_and_the_frozen_graph_agrees(model_copy, tmp_path):
    proc = run(["bash", "train_full_1p.sh", f"--data_path={REAL_MNIST}", *SCHEDULE, FLOAT32],
               cwd=model_copy / "test", timeout=1200)
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout + proc.stderr)
    assert contract.check(result, proc.returncode, min_accuracy=MIN_ACCURACY, loss_must_fall=True) == []
    log = (model_copy / "test" / "output" / "0" / "train_0.log").read_text()
    assert "data: 17600 train / 5000 validation / 10000 test images" in log
    accuracy = final_value(log, "Final Accuracy accuracy")
    print(f"real MNIST: test accuracy {accuracy}, images/sec {result.summary['ActualFPS']}")

    # Both float32: the frozen graph infers as the training run evaluated.
    online = freeze_and_infer(model_copy / "test" / "output" / "0" / "ckpt_npu", REAL_MNIST, tmp_path)
    assert online == pytest.approx(accuracy, abs=0.001)
