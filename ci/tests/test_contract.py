"""The contract checker accepts a conforming run and names what is wrong with a broken one."""
import json
import os
import platform

import pytest

import contract

NETWORK = "Toy_for_TensorFlow"
CASE = f"{NETWORK}_bs8_1p_acc"
FINAL = ("------------------ Final result ------------------\n"
         "Final Performance images/sec : 100.50\nFinal Train Accuracy : 0.91\nE2E Training Duration sec : 7\n")


def summary_lines(**override):
    values = {"Network": NETWORK, "RankSize": "1", "BatchSize": "8", "DeviceType": platform.machine(),
              "CaseName": CASE, "ActualFPS": "100.50", "TrainingTime": "79.6", "TrainAccuracy": "0.91",
              "ActualLoss": "0.25", "E2ETrainingTime": "7"}
    values.update(override)
    return [f"{k} = {v}" for k, v in values.items() if v is not None]


def write_result(out, **override):
    """The result.json a run whose summary is summary_lines() writes (run_report.write_result's keys)."""
    record = {"model": NETWORK, "launcher": "train_full_1p.sh", "device": "cpu", "precision": "float32",
              "batch_size": 8, "rank_size": 1, "steps": 40, "warmup_steps": 10, "ms_per_step": 79.6,
              "images_per_sec": 8000 / 79.6, "accuracy_name": "held-out accuracy", "accuracy": 0.91,
              "final_loss": 0.25, "e2e_seconds": 6.8}
    record.update(override)
    (out / "result.json").write_text(json.dumps(record))


def make_run(tmp_path, lines=None, losses=(2.3, 1.5, 0.9, 0.25), stdout=FINAL, launcher="train_full_1p.sh",
             **result):
    model = tmp_path / NETWORK
    out = model / "test" / "output" / "0"
    out.mkdir(parents=True)
    (out / "train_0.log").write_text("log\n")
    case = dict(line.split(" = ") for line in (lines or summary_lines()))["CaseName"]
    (out / f"{case}.log").write_text("\n".join(lines or summary_lines()) + "\n")
    (out / f"train_{case}_loss.txt").write_text("".join(f"{v}\n" for v in losses))
    write_result(out, **result)
    return contract.Run(str(model), launcher, stdout)


def test_conforming_run_passes(tmp_path):
    assert contract.check(make_run(tmp_path), 0, min_accuracy=0.5, loss_must_fall=True) == []


@pytest.mark.parametrize("override, reason", [
    ({"ActualFPS": ""}, "ActualFPS = '' is not a finite number"),
    ({"TrainingTime": "nan"}, "TrainingTime = 'nan' is not a finite number"),
    ({"TrainAccuracy": "NA"}, "not a number (NA only in a perf run)"),
    ({"E2ETrainingTime": None}, "differ from the contract's"),
    ({"Network": "Other"}, "Network = Other but the directory is"),
    ({"DeviceType": "sparc"}, "DeviceType = sparc"),
])
def test_broken_summary_is_named(tmp_path, override, reason):
    problems = contract.check(make_run(tmp_path, summary_lines(**override)), 0)
    assert any(reason in p for p in problems), problems


def test_wrong_suffix_for_the_launcher(tmp_path):
    problems = contract.check(make_run(tmp_path, launcher="train_performance_1p.sh"), 0)
    assert any("is not Toy_for_TensorFlow_bs8_1p_<...>perf" in p for p in problems), problems


def test_accuracy_na_allowed_in_perf_runs(tmp_path):
    perf_case = f"{NETWORK}_bs8_1p_perf"
    lines = summary_lines(CaseName=perf_case, TrainAccuracy="NA")
    stdout = FINAL.replace("0.91", "NA")
    run = make_run(tmp_path, lines, stdout=stdout, launcher="train_performance_1p.sh", accuracy=None)
    assert contract.check(run, 0) == []


@pytest.mark.parametrize("override, reason", [
    ({"images_per_sec": 120.0}, "is not batch_size 8 * 1000 / ms_per_step 79.6"),
    ({"ms_per_step": 60.0, "images_per_sec": 8000 / 60}, "summary ActualFPS = 100.50 but result.json"),
    ({"final_loss": 0.3}, "summary ActualLoss = 0.25 but result.json final_loss = 0.3"),
    ({"accuracy": 91.0}, "accuracy 91.0 is not a fraction in 0..1"),
    ({"accuracy": None}, "summary TrainAccuracy = 0.91 but result.json accuracy = None"),
    ({"batch_size": 16, "images_per_sec": 16000 / 79.6}, "batch_size 16 is not the global batch 8 x 1"),
    ({"steps": None, "model": None, "device": None}, None),
])
def test_summary_must_come_from_the_result_record(tmp_path, override, reason):
    problems = contract.check(make_run(tmp_path, **override), 0)
    if reason is None:
        assert problems == []
    else:
        assert any(reason in p for p in problems), problems


def test_slow_rates_agree_as_the_launcher_rounds_them(tmp_path):
    lines = summary_lines(ActualFPS="0.81", TrainingTime="9867.38")
    stdout = FINAL.replace("100.50", "0.81")
    assert contract.check(make_run(tmp_path, lines, stdout=stdout, ms_per_step=9867.38, images_per_sec=8000 / 9867.38),
                          0) == []


def test_missing_or_incomplete_result_record(tmp_path):
    run = make_run(tmp_path)
    record = json.loads(open(os.path.join(run.out_dir, "result.json")).read())
    del record["warmup_steps"]
    open(os.path.join(run.out_dir, "result.json"), "w").write(json.dumps(record))
    assert contract.check(run, 0) == ["result.json lacks warmup_steps"]
    os.remove(os.path.join(run.out_dir, "result.json"))
    assert "no readable result record" in contract.check(run, 0)[0]


def test_read_scalars_reads_tf1_and_tf2_event_files(tmp_path):
    tf = pytest.importorskip("tensorflow")
    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    with writer.as_default():
        for step in (1, 2):
            tf.summary.scalar("loss", 1.0 / step, step=step)
    writer.close()
    graph = tf.Graph()
    with graph.as_default():
        legacy = tf.compat.v1.summary.FileWriter(str(tmp_path / "eval"), graph)
        legacy.add_summary(tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag="top1", simple_value=0.5)]), 3)
        legacy.close()
    assert contract.read_scalars(str(tmp_path)) == {"train": {"loss": [(1, 1.0), (2, 0.5)]},
                                                    "eval": {"top1": [(3, 0.5)]}}


def test_non_finite_loss_and_last_value(tmp_path):
    assert "not a finite number" in contract.check(make_run(tmp_path, losses=(2.3, float("nan"), 0.25)), 0)[0]
    other = tmp_path / "other"
    other.mkdir()
    assert "is not the last value" in contract.check(make_run(other, losses=(2.3, 0.5)), 0)[0]


def test_final_block_must_match_summary(tmp_path):
    problems = contract.check(make_run(tmp_path, stdout=FINAL.replace("100.50", "99")), 0)
    assert problems == ["final block images/sec 99 != ActualFPS 100.50"]
    other = tmp_path / "other"
    other.mkdir()
    assert "does not end with" in contract.check(make_run(other, stdout=FINAL + "extra line\n"), 0)[0]


def test_learning_checks(tmp_path):
    problems = contract.check(make_run(tmp_path, losses=(0.2, 0.5, 1.0, 0.25)), 0, min_accuracy=0.95,
                              loss_must_fall=True)
    assert problems == ["TrainAccuracy 0.91 below 0.95", "loss did not fall (first 1: 0.2000, last 1: 0.2500)"]


def test_failed_launcher_and_missing_outputs(tmp_path):
    run = contract.Run(str(tmp_path / "Nothing"), "train_full_1p.sh", "[Error] boom\n")
    assert contract.check(run, 3) == ["exit code 3: [Error] boom"]
    assert "no training log" in contract.check(run, 0)[0]
    os.makedirs(run.out_dir)
    open(os.path.join(run.out_dir, "train_0.log"), "w").close()
    assert "expected one summary *.log" in contract.check(run, 0)[0]


def make_8p_run(tmp_path, ranks_with_logs, summary_rank):
    """An 8p launcher leaves output/<r>/train_<r>.log per rank and the summary in the last rank's folder."""
    model = tmp_path / NETWORK
    case = f"{NETWORK}_bs16_2p_perf"
    for rank in ranks_with_logs:
        out = model / "test" / "output" / str(rank)
        out.mkdir(parents=True)
        (out / f"train_{rank}.log").write_text("log\n")
    out = model / "test" / "output" / str(summary_rank)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{case}.log").write_text("\n".join(summary_lines(CaseName=case, RankSize="2", BatchSize="16",
                                                               TrainingTime="318.41", TrainAccuracy="NA")) + "\n")
    (out / f"train_{case}_loss.txt").write_text("2.3\n0.25\n")
    write_result(out, launcher="train_performance_8p.sh", batch_size=32, rank_size=2, ms_per_step=318.41,
                 images_per_sec=32000 / 318.41,
                 accuracy=None)
    return contract.Run(str(model), "train_performance_8p.sh", FINAL.replace("0.91", "NA"))


def test_8p_run_reports_from_the_last_rank_with_every_rank_log(tmp_path):
    run = make_8p_run(tmp_path, ranks_with_logs=(0, 1), summary_rank=1)
    assert run.device_id == "1"
    assert contract.check(run, 0) == []


def test_8p_run_names_a_missing_rank_log_and_a_summary_in_the_wrong_folder(tmp_path):
    assert contract.check(make_8p_run(tmp_path / "a", ranks_with_logs=(1,), summary_rank=1), 0) == [
        "no training log test/output/0/train_0.log of rank 0"]
    problems = contract.check(make_8p_run(tmp_path / "b", ranks_with_logs=(0, 1), summary_rank=0), 0)
    assert problems == ["the summary of a 2-rank run is in output/0, not output/1"]
