"""The zoo's one timing rule, progress line and result record (ci/canonical/run_report.py)."""
import io
import json
import re

import pytest

from ci.canonical import run_report as rr


def test_the_warm_up_is_ten_steps_or_the_first_half_of_a_short_run():
    clock = rr.StepClock(global_batch=64)
    for _ in range(10):
        clock.add(1.0)  # slow first steps: graph building, autotuning
    for _ in range(30):
        clock.add(0.5)
    assert clock.warmup_excluded == 10 and clock.ms_per_step == 500.0 and clock.images_per_sec == 128.0
    short = rr.StepClock(global_batch=10)
    for seconds in (3.0, 1.0, 0.1, 0.1):
        short.add(seconds)
    assert short.warmup_excluded == 2 and short.ms_per_step == pytest.approx(100.0)
    assert rr.StepClock(8).ms_per_step is None and rr.StepClock(8).images_per_sec is None


def test_progress_lines_come_at_most_every_interval_with_an_eta():
    times = iter([0.0, 10.0, 31.0, 40.0, 62.0])
    out = io.StringIO()
    progress = rr.Progress(total_steps=100, every=30, stream=out, now=lambda: next(times))
    assert progress.update(0) is None and progress.update(10) is None
    line = progress.update(31, loss=0.51234, images_per_sec=1234.56)
    assert re.fullmatch(r"\[progress\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d step 31/100 \(31\.0%\) loss 0\.5123 "
                        r"images/sec 1234\.6 elapsed 0:00:31 ETA 0:01:09", line)
    assert progress.update(40) is None
    assert progress.update(62).endswith("elapsed 0:01:02 ETA 0:00:38")
    assert out.getvalue().count("[progress]") == 2


def test_progress_zero_is_off_and_the_environment_sets_the_interval(monkeypatch):
    out = io.StringIO()
    assert rr.Progress(10, every=0, stream=out).update(5, force=True) is None and out.getvalue() == ""
    monkeypatch.setenv(rr.PROGRESS_ENV, "5")
    assert rr.Progress(10).every == 5.0


def test_the_result_record_has_every_key_and_a_fractional_accuracy(tmp_path):
    fields = dict(model="LeNet", launcher="train_full_1p.sh", device="CPU", precision="float32", batch_size=64,
                  rank_size=1, steps=100, warmup_steps=10, ms_per_step=2.5, images_per_sec=25600.0,
                  accuracy_name="test accuracy", accuracy=0.981, final_loss=0.05, e2e_seconds=12.0)
    rr.write_result(str(tmp_path), **fields, epochs=1)
    record = json.loads((tmp_path / "result.json").read_text())
    assert list(record)[:len(rr.RESULT_KEYS)] == list(rr.RESULT_KEYS) and record["epochs"] == 1
    with pytest.raises(ValueError, match="accuracy 98.1 is not a fraction"):
        rr.write_result(str(tmp_path), **{**fields, "accuracy": 98.1})
    with pytest.raises(ValueError, match="without final_loss"):
        rr.write_result(str(tmp_path), **{k: v for k, v in fields.items() if k != "final_loss"})
