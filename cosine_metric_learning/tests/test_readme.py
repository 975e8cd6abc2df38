"""The README's commands (the original README's, corrected where they were broken) as printed: bash syntax,
flags the parser knows, and the original's train / eval commands run in-process with only the data path
filled in. The export, freeze and finalize commands run in test_modes.py."""
import os
import signal
import subprocess

import cli
import evaluation
import reporting
import train_market1501
import train_mars
from conftest import call, value
from readme import bash_blocks, command, commands, tensorboard_logdirs

MARKET = "./Market-1501-v15.09.15/"


def test_every_block_is_bash_and_every_flag_exists():
    blocks = bash_blocks()
    assert len(blocks) >= 6
    for block in blocks:
        checked = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert checked.returncode == 0, (block, checked.stderr)
    scripts = {"train_market1501.py": train_market1501, "train_mars.py": train_mars}
    for script, argv in commands():
        parser = cli.build_parser(scripts[script])
        known = {flag for action in parser._actions for flag in action.option_strings}
        assert all(word.startswith("--") for word in argv), argv
        assert {word.split("=", 1)[0] for word in argv} <= known, argv
        parser.parse_args(argv)  # values of their kind (exits 2 otherwise)


def test_tensorboard_folders_are_where_the_commands_write():
    """Each `tensorboard --logdir`: a README command's log_dir/run_id (training) or eval_log_dir/run_id
    (eval), or a launcher's output folder (tests/test_training.py reads its ckpt/run and eval/run)."""
    written = {"test/output/0"}
    for _, argv in commands():
        flags = dict(word.partition("=")[::2] for word in argv)
        folder = flags.get("--eval_log_dir" if flags.get("--mode") == "eval" else "--log_dir")
        if folder and "--run_id" in flags:
            written.add(os.path.join(folder, flags["--run_id"]))
    logdirs = tensorboard_logdirs()
    assert len(logdirs) == 5 and set(logdirs) <= written, (logdirs, written)


def interrupt_after_first_step(monkeypatch):
    """Ctrl-C once step 1 is reported: the original's train command runs until stopped."""
    done = reporting.StepReporter.step_done

    def step_done(self, step, *args):
        done(self, step, *args)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(reporting.StepReporter, "step_done", step_done)


def test_original_train_then_eval_commands(small_market, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    interrupt_after_first_step(monkeypatch)
    status, out, err = call(train_market1501, *command("train_market1501.py", "train", [(MARKET, small_market)]))
    assert status == 130 and err.startswith("[Error] stopped by SIGINT at step 1; checkpoint "), err
    run_dir = tmp_path / "output" / "market1501" / "cosine-softmax"
    assert {"model.ckpt-0.index", "model.ckpt-1.index"} <= set(os.listdir(run_dir))

    def ctrl_c(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation.time, "sleep", ctrl_c)  # it polls for new checkpoints until stopped
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    status, out, err = call(train_market1501, *command("train_market1501.py", "eval", [(MARKET, small_market)]))
    assert status == 130 and err == "[Error] interrupted by Ctrl-C in eval mode\n", err
    assert "cosine-softmax/model.ckpt-1 (global step 1)" in out and 0 <= value(out, "Precision@1 :") <= 1
    for logdir in tensorboard_logdirs()[:2]:  # the README's training and eval folders of these two commands
        assert any(".tfevents." in n for n in os.listdir(tmp_path / logdir)), logdir
