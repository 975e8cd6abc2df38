"""Real MNIST (../shared/datasets/mnist) through the accuracy launcher. The 98 % acceptance run (the launcher's
5 x 1000 steps) with the frozen graph's online inference on the 10,000 test images is
benchmarks/accuracy_real_mnist.sh: at about 2 minutes it does not fit the zoo's 12-minute test suite beside the
other models. That the frozen graph infers exactly as training evaluated is tested in the quick tier
(test_training.py, synthetic data)."""
import os

import pytest

import contract
from conftest import FLOAT32, REAL_MNIST, final_value, run

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.path.isdir(REAL_MNIST), reason=f"{REAL_MNIST} is absent")]

# One epoch of 1,000 steps at learning rate 0.003 reached 96.58 % (seed 1) and 96.68 % (seed 2) in float32
# (RESULTS.md); 96.0 % leaves 0.6 points for other CPUs' float rounding. float32 is explicit: the threshold was
# measured in float32, and the launcher's default mixed mode may train in bfloat16 (zoo_precision's table).
SCHEDULE = ["--epochs=1", "--steps=1000", "--learning_rate=0.003"]
MIN_ACCURACY = 0.96


def test_full_launcher_learns_real_mnist(model_copy):
    proc = run(["bash", "train_full_1p.sh", f"--data_path={REAL_MNIST}", *SCHEDULE, FLOAT32],
               cwd=model_copy / "test", timeout=1200)
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout + proc.stderr)
    assert contract.check(result, proc.returncode, min_accuracy=MIN_ACCURACY, loss_must_fall=True) == []
    log = (model_copy / "test" / "output" / "0" / "train_0.log").read_text()
    assert "data: 17600 train / 5000 validation / 10000 test images" in log
    accuracy = final_value(log, "Final Accuracy accuracy")
    print(f"real MNIST: test accuracy {accuracy}, images/sec {result.summary['ActualFPS']}")

