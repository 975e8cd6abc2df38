"""Acceptance on real MNIST (../shared/datasets/mnist): the faithful full launcher, then the frozen graph."""
import os

import pytest

import contract
from conftest import REAL_MNIST, final_value, run
from test_training import freeze_and_infer

pytestmark = pytest.mark.skipif(not os.path.isdir(REAL_MNIST), reason=f"{REAL_MNIST} is absent")


def test_full_launcher_reaches_98_percent_and_the_frozen_graph_agrees(model_copy, tmp_path):
    proc = run(["bash", "train_full_1p.sh", f"--data_path={REAL_MNIST}"], cwd=model_copy / "test", timeout=1200)
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout + proc.stderr)
    assert contract.check(result, proc.returncode, min_accuracy=0.98, loss_must_fall=True) == []
    assert len(result.losses) == 5000
    log = (model_copy / "test" / "output" / "0" / "train_0.log").read_text()
    assert "data: 17600 train / 5000 validation / 10000 test images" in log
    accuracy = final_value(log, "Final Accuracy accuracy")
    print(f"real MNIST: test accuracy {accuracy}, images/sec {result.summary['ActualFPS']}")

    online = freeze_and_infer(model_copy / "test" / "output" / "0" / "ckpt_npu", REAL_MNIST, tmp_path)
    assert online == pytest.approx(accuracy, abs=0.001)
