"""Slow tier: a seeded float32 training run learns, and its features tell unseen identities apart.

Synthetic Market-1501 with 100 training identities x 6 cameras (90 trained, 10 held out for validation) and
12 test identities; cosine-softmax, batch 16 (4 identities x 4), Adam 1e-2 (README: the learned scale
kappa limits short runs at the original's 1e-3); float32 on every CPU kind, since a bf16 run is another
trajectory. Float32 runs also differ between CPU kinds (summation order): the same seeded settings gave
validation rank-1 0.74 at step 149 on an AVX-512 CPU and 0.91 at step 150 on an AVX2 one, and one intra-op
thread instead of two moved seed 1's test rank-1 from 0.96 to 0.625. So no threshold below is a seeded result;
each sits under the spread measured over seeds, CPU kinds and thread counts (RESULTS.md, "Learning test").

The synthetic identities differ in colour, so even a 5-step network's features score well (validation
rank-1 0.69, test rank-1 0.96, mAP 0.80): the accuracy thresholds guard against broken features (all
alike: rank-1 ~0.1), and learning itself is asserted through kappa = softplus(ball/scale). Kappa starts at
0.69 and grows only while the classifier ranks the true class first with a margin; Adam moves its
parameter by at most about the learning rate per step, so 150 steps allow kappa <= 1.70: the measured
1.70 at step 150 is that bound, reached while the true class stays ranked first.
"""
import numpy as np
import pytest
import tensorflow as tf

import train_market1501
from conftest import call, value
from synthetic import market1501 as market_writer

pytestmark = pytest.mark.slow

STEPS = 150  # 200 took 78 s of the zoo's 12-minute suite; every threshold below held at 150 (RESULTS.md)
ARGS = ["--batch_size=16", "--learning_rate=0.01", "--seed=1", "--log_every=50",
        "--precision_mode=must_keep_origin_dtype"]
KAPPA = 1.5  # measured 1.70 at step 150 (2.10 at 200, 2.61 at 300); 0.70 after 5 steps
VAL_RANK1 = 0.6  # 10 identities, chance 0.1; measured 0.74-0.94 (150-300 steps, seeds 1-4, 1 or 2 threads)
# 24 queries, chance ~0.08 / ~0.15; at step 150 over seeds 1-4 and 1 or 2 threads: 0.625-1.00 / 0.59-0.98
TEST_RANK1, TEST_MAP = 0.5, 0.45


@pytest.fixture(scope="module")
def market100(tmp_path_factory):
    return market_writer.generate(str(tmp_path_factory.mktemp("market100")), train_ids=100, test_ids=12,
                                  per_camera=1)


def test_seeded_float32_run_learns_unseen_identities(market100, tmp_path):
    common = [f"--dataset_dir={market100}", f"--log_dir={tmp_path}", "--run_id=learn"]
    status, out, err = call(train_market1501, *common, f"--number_of_steps={STEPS}", *ARGS)
    assert status == 0, err
    assert np.isfinite(value(out, "Final Performance images/sec :"))
    kappa = np.logaddexp(0.0, tf.train.load_checkpoint(str(tmp_path / "learn")).get_tensor("ball/scale"))
    assert kappa >= KAPPA, out[-3000:]

    status, out, err = call(train_market1501, *common, "--mode=eval", "--eval_once",
                            f"--eval_log_dir={tmp_path / 'eval'}")
    assert status == 0, err
    assert "10 galleries of 10 identities" in out
    assert value(out, "Precision@1 :") >= VAL_RANK1, out

    status, out, err = call(train_market1501, *common, "--mode=evaluate_test",
                            f"--restore_path={tmp_path / 'learn'}")
    assert status == 0, err
    assert "24 queries" in out
    assert value(out, "rank1 :") >= TEST_RANK1 and value(out, "mAP :") >= TEST_MAP, out
