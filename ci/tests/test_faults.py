"""The fault harness's own logic (ci/faults.py): step lines, gaps, the kill plan, verdicts, the report. No model
runs here: the harness itself is run by hand (bash ci/faults.sh)."""
import os
import tomllib

from ci import faults
from ci.tests.conftest import REPO


def test_global_steps_from_epoch_and_step_lines():
    parser = faults.StepParser(r"^epoch : (?P<epoch>\d+)----step : (?P<step>\d+)----loss : (?P<loss>\S+?)----", 300)
    text = "epoch : 1----step : 300----loss : 5e-05----sec/step : 0.1\nnoise\nepoch : 2----step : 1----loss : nan----x\n"
    assert parser.parse(text) == [(300, "5e-05"), (301, "nan")]


def test_every_configured_step_line_matches_its_contract_example():
    """Each model's step_line in ci/faults.toml against the line format of ci/launcher_contract.md."""
    examples = {
        "LeNet_ID0127_for_TensorFlow": ("epoch : 2----step : 3----loss : 0.25----sec/step : 0.01", 303),
        "MNIST_ID2481_for_TensorFlow2.X": ("step:40 ,loss: 0.300000 ,time: 0.010000", 40),
        "AlexNet_ID0259_for_TensorFlow": ("epoch 3 step: 2 step_time 0.5000 FPS 8.00", 8),
        "MobileNetV1_for_TensorFlow": ("step:7  epoch:0.350 ips:12.00 loss:2.400000  total_loss:2.500000  lr:0.1, ", 7),
        "cosine_metric_learning": ("step 12, loss 3.2000 (softmax 3.1000), 30.0 images/sec", 12),
    }
    with open(os.path.join(REPO, "ci", "faults.toml"), "rb") as handle:
        config = tomllib.load(handle)
    assert sorted(config) == sorted(examples)
    for model, (line, step) in examples.items():
        parsed = faults.StepParser(config[model]["step_line"], config[model].get("steps_per_epoch")).parse(line)
        assert [s for s, _ in parsed] == [step], model


def test_every_model_names_an_export_script_it_has():
    with open(os.path.join(REPO, "ci", "faults.toml"), "rb") as handle:
        config = tomllib.load(handle)
    for model, cfg in config.items():
        outputs = cfg["export_outputs"]
        assert outputs and all(path.startswith(("{out}/", "{run}/")) for path in outputs), model
        if cfg["export"] == "resume":
            continue
        script = cfg["export"][1].format(model=os.path.join(REPO, model))
        assert os.path.isfile(script), (model, script)


def test_gaps_are_found_and_repeats_after_a_resume_are_fine():
    assert faults.missing_steps([1, 2, 3, 2, 3, 4, 5], 5) == []
    gaps = faults.missing_steps([1, 2, 5, 6, 9], 10)
    assert gaps == [(3, 4), (7, 8), (10, 10)]
    assert faults.describe_gaps(gaps) == "3-4, 7-8, 10"
    assert faults.missing_steps([], 3) == [(1, 3)]


def test_kill_plan_is_seeded_per_model():
    plan = faults.kill_plan(7, "LeNet", 10)
    assert plan == faults.kill_plan(7, "LeNet", 10)
    assert len(plan) == 9  # the calibration run is the first kill
    assert plan != faults.kill_plan(8, "LeNet", 10)
    assert plan != faults.kill_plan(7, "AlexNet", 10)
    assert {kind for kind, _ in plan} <= {"save", "time"}
    assert all(0 <= fraction < 1 for _, fraction in plan)
    many = faults.kill_plan(1, "x", 400)
    assert 0.25 < sum(kind == "save" for kind, _ in many) / len(many) < 0.55


def test_bad_input_verdict():
    good = "training LeNet\n[Error] train_full_1p.sh: --data_path=/x is not a folder\n"
    assert faults.verdict(1, good) == ""
    assert faults.verdict(0, good) == "exit 0"
    assert faults.verdict(-9, good).startswith("did not end")
    assert faults.verdict(1, good + "Traceback (most recent call last):\n") == "a Traceback on the console"
    assert faults.verdict(1, good + "[Error] again\n") == "2 [Error] lines"
    assert faults.verdict(1, "no error line\n") == "0 [Error] lines"
    assert faults.verdict(1, good, intact=False) == "the previous run's files are gone"
    assert faults.verdict(1, "[Error] loss is nan at step 3; lower --learning_rate\n", must_say=r"is (nan|inf)") == ""
    assert "does not say" in faults.verdict(1, good, must_say=r"is (nan|inf)")


def test_previous_run_counts_as_intact_in_prev(tmp_path):
    run = tmp_path / "5"
    (run / "ckpt").mkdir(parents=True)
    (run / "ckpt" / "model.ckpt-200.index").write_text("i")
    (run / "train_5.log").write_text("log lines do not count")
    before = faults.snapshot(run)
    assert before == {os.path.join("ckpt", "model.ckpt-200.index"): 1}
    assert faults.checkpoint_numbers(run) == [200]
    run.rename(tmp_path / "5.prev")
    (tmp_path / "5").mkdir()
    assert faults.still_there(before, [tmp_path / "5", tmp_path / "5.prev"])
    (tmp_path / "5.prev" / "ckpt" / "model.ckpt-200.index").write_text("cut")
    assert not faults.still_there(before, [tmp_path / "5", tmp_path / "5.prev"])


def test_saves_in_progress_are_recognised(tmp_path):
    assert not faults.saving_now(tmp_path)
    (tmp_path / "ckpt" / "model.ckpt-400_temp").mkdir(parents=True)
    assert faults.saving_now(tmp_path)
    assert faults.checkpoint_numbers(tmp_path) == []
    (tmp_path / "ckpt" / "model.ckpt-300.index.tempstate12").write_text("x")
    assert sorted(faults.save_files(tmp_path)) == [str(tmp_path / "ckpt" / name) for name in (
        "model.ckpt-300.index.tempstate12", "model.ckpt-400_temp")]


def test_a_cut_or_missing_export_is_half_and_the_folder_swap_window_is_not(tmp_path):
    frozen, saved = str(tmp_path / "frozen.pb"), str(tmp_path / "saved_model")
    (tmp_path / "frozen.pb").write_bytes(b"g" * 1000)
    (tmp_path / "saved_model" / "variables").mkdir(parents=True)
    (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"m" * 400)
    (tmp_path / "saved_model" / "variables" / "variables.index").write_bytes(b"v" * 30)
    whole = {frozen: faults.export_files(frozen), saved: faults.export_files(saved)}
    assert whole[frozen] == {"frozen.pb": 1000}
    assert whole[saved] == {"saved_model.pb": 400, os.path.join("variables", "variables.index"): 30}
    assert faults.half_exports([frozen, saved], whole) == []
    # Another export of the same checkpoint: other bytes (serialisation order), the same sizes.
    (tmp_path / "frozen.pb").write_bytes(b"h" * 1000)
    assert faults.half_exports([frozen, saved], whole) == []
    # A graph a byte longer (a function counter with one more digit) is whole; any other file must match.
    (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"m" * 401)
    assert faults.half_exports([frozen, saved], whole) == []
    (tmp_path / "saved_model" / "variables" / "variables.index").write_bytes(b"v" * 31)
    assert faults.half_exports([saved], whole) == [
        "saved_model: 2 file(s), 432 bytes, whole: 2 file(s), 430 bytes"]
    (tmp_path / "saved_model" / "variables" / "variables.index").write_bytes(b"v" * 30)
    # Between replace_folder's two renames: the earlier folder waits at .earlier.
    os.rename(saved, saved + ".earlier")
    (tmp_path / "frozen.pb.partial").write_bytes(b"g")
    assert faults.half_exports([frozen, saved], whole) == []
    assert faults.export_leftovers([frozen, saved]) == ["frozen.pb.partial", "saved_model.earlier"]
    os.mkdir(saved)  # an empty folder where the export belongs is no rename window
    assert faults.half_exports([saved], whole) == ["saved_model: missing"]
    os.rmdir(saved)
    (tmp_path / "saved_model.earlier" / "saved_model.pb").write_bytes(b"m" * 200)
    assert faults.half_exports([frozen, saved], whole) == ["saved_model: missing"]
    for size in (500, 0):  # written in place and cut by the kill: half a graph, or truncated before any write
        (tmp_path / "frozen.pb").write_bytes(b"g" * size)
        assert faults.half_exports([frozen], whole) == [
            f"frozen.pb: 1 file(s), {size} bytes, whole: 1 file(s), 1000 bytes"]


def result(model, lost=0, nan=True, bad="", exports=True):
    return {"model": model, "seconds": 61.4,
            "kills": {"done": 10, "survived": 10 - lost, "inside_save": 3, "lost": lost, "note": "x" if lost else ""},
            "moved": {"ok": True, "note": ""}, "sigterm": {"ok": True, "note": ""},
            "nan": {"ok": nan, "note": "" if nan else "0 [Error] lines"},
            "bad_inputs": {"no --data_path": "", "empty folder": bad},
            "exports": {"ok": exports, "done": 5, "inside_write": 2, "note": "" if exports else "frozen.pb: missing"}}


def test_rows_table_and_failures():
    clean = result("LeNet")
    broken = result("AlexNet", lost=1, nan=False, bad="a Traceback on the console", exports=False)
    rows = [faults.row_cells(clean), faults.row_cells(broken)]
    assert rows[0] == ["LeNet", "10/10", "3", "0", "ok", "ok", "ok", "2/2", "5 ok, 2 in a write", "61"]
    assert rows[1][1:9] == ["9/10", "3", "1", "ok", "ok", "FAIL", "1/2", "FAIL"]
    table = faults.format_table(rows).splitlines()
    assert table[0].startswith("model ") and "bad inputs handled" in table[0]
    assert len(table) == 4 and set(table[1]) <= {"-", "+", " "}
    assert faults.failures(clean) == []
    assert faults.failures(broken) == ["kills: x", "nan: 0 [Error] lines", "exports: frozen.pb: missing",
                                       "bad input empty folder: a Traceback on the console"]
    md = faults.markdown(rows, {"date": "2026-12-01 10:00", "cpu": "AMD EPYC", "seed": 12, "kills": 10, "seconds": 300})
    assert "AMD EPYC" in md and "seed 12" in md and "| LeNet | 10/10 |" in md
    assert md.splitlines()[5].count("---") == len(faults.COLUMNS)
