"""Training through the real entry points: launchers (contract), acceptance accuracy, eval, resume."""
import os
import re

import numpy as np
import tensorflow as tf

import device_config
import contract
from conftest import ACCEPT_ARGS, ACCEPT_STEPS, run, run_script, value

SMOKE = ["--batch_size=16", "--steps=6"]
ASCEND_OPTIONS = ["--over_dump=False", "--data_dump_flag=False", "--data_dump_step=5", "--profiling=False",
                  "--autotune=False"]


def test_full_launcher_meets_the_contract(model_copy, small_market):
    proc = run(["bash", "train_full_1p.sh", f"--data_path={small_market}", *SMOKE, "--bogus=1",
                "--precision_mode=must_keep_origin_dtype", *ASCEND_OPTIONS], cwd=model_copy / "test")
    result = contract.Run(str(model_copy), "train_full_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == [], proc.stderr[-2000:]
    assert result.summary["CaseName"] == "cosine_metric_learning_bs16_1p_acc"
    assert len(result.losses) == 6
    assert 0 <= result.value("TrainAccuracy") <= 1
    warnings = [line for line in proc.stderr.splitlines() if "unknown argument" in line]
    assert len(warnings) == 1 and "--bogus=1" in warnings[0]
    out = model_copy / "test" / "output" / "0"
    assert re.search(r"^device: (CPU|GPU), float32$", (out / "train_0.log").read_text(), re.M) \
        or device_config.on_ascend()
    assert tf.train.latest_checkpoint(str(out / "ckpt" / "run")).endswith("model.ckpt-6")
    assert "Precision@1 : " in (out / "eval_0.log").read_text()


def test_performance_launcher_from_the_model_root(model_copy, small_market):
    proc = run(["bash", "test/train_performance_1p.sh", f"--data_path={small_market}", "--batch_size=16",
                "--steps=5"], cwd=model_copy)
    result = contract.Run(str(model_copy), "train_performance_1p.sh", proc.stdout)
    assert contract.check(result, proc.returncode) == [], proc.stderr[-2000:]
    assert result.summary["TrainAccuracy"] == "NA" and result.value("ActualFPS") > 0
    if not (device_config.on_ascend() or tf.config.list_physical_devices("GPU")):
        # The launchers' default precision_mode, allow_mix_precision, is bf16 only where the CPU has it.
        expected = ("device: CPU, bfloat16 mixed" if device_config.native_bf16()
                    else "device: CPU, float32 (allow_mix_precision requested")
        assert expected in (model_copy / "test" / "output" / "0" / "train_0.log").read_text()


def validation_rank1(data, log_dir, eval_dir):
    proc = run_script("train_market1501.py", "--mode=eval", "--eval_once", f"--dataset_dir={data}",
                      f"--log_dir={log_dir}", f"--eval_log_dir={eval_dir}", "--run_id=accept")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rank1 = value(proc.stdout, "Precision@1 :")
    assert value(proc.stdout, "Precision@5 :") >= rank1
    return rank1, proc.stdout


def protocol_scores(data, log_dir):
    proc = run_script("train_market1501.py", "--mode=evaluate_test", f"--dataset_dir={data}",
                      f"--restore_path={log_dir / 'accept'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # 24 queries against 12 identities (+ junk and distractors): chance rank-1 is about 1/12.
    assert "24 queries" in proc.stdout
    return value(proc.stdout, "rank1 :"), value(proc.stdout, "mAP :"), proc.stdout


def test_training_learns_validation_and_test_protocol(trained_market, market100, tmp_path):
    log_dir, stdout = trained_market
    steps = [int(s) for s in re.findall(r"^step (\d+), loss ", stdout, re.M)]
    assert steps == list(range(1, ACCEPT_STEPS + 1))
    assert value(stdout, "Final Performance images/sec") > 0
    eval_dir = tmp_path / "evaldir"
    rank1, out = validation_rank1(market100, log_dir, eval_dir)
    # 10 validation identities: chance is 0.1. Seeded runs repeat exactly; this one gave 1.00 on the project's
    # AVX-512 EPYC, unseeded-flip runs of 400-500 steps spread over 0.86-1.00 (README).
    assert rank1 >= 0.9, out
    tags = set()
    for path in (eval_dir / "accept").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {v.tag for v in event.summary.value}
    assert {"Precision@1", "Precision@5", "Precision@10", "Precision@20"} <= tags
    test_rank1, test_map, out = protocol_scores(market100, log_dir)
    # Chance: rank-1 ~ 1/12, mAP ~ 0.15; 300-500 steps gave rank-1 0.96-1.0, mAP 0.82-0.99 (README).
    assert test_rank1 >= 0.75 and test_map >= 0.6, out


def test_resume_continues_from_the_run_folder(trained_market, market100, tmp_path):
    import shutil
    log_dir = tmp_path / "logs"
    shutil.copytree(trained_market[0] / "accept", log_dir / "accept")
    args = [f"--dataset_dir={market100}", f"--log_dir={log_dir}", "--run_id=accept", *ACCEPT_ARGS]
    proc = run_script("train_market1501.py", f"--number_of_steps={ACCEPT_STEPS + 2}", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(rf"^resuming from \S+/accept/model.ckpt-{ACCEPT_STEPS}$", proc.stdout, re.M), proc.stdout
    steps = [int(s) for s in re.findall(r"^step (\d+), loss ", proc.stdout, re.M)]
    assert steps == [ACCEPT_STEPS + 1, ACCEPT_STEPS + 2]
    assert tf.train.latest_checkpoint(str(log_dir / "accept")).endswith(f"model.ckpt-{ACCEPT_STEPS + 2}")
    reader = tf.train.load_checkpoint(str(log_dir / "accept"))
    assert reader.get_tensor("global_step") == ACCEPT_STEPS + 2
    assert np.isfinite(reader.get_tensor("ball/scale"))
