"""Command line of train_market1501.py / train_mars.py: the shared flags, parsed into checked values.

No TensorFlow here: --help and a flag mistake answer before it loads. So the mode and loss names are listed
here, and tests check them against what implements them (modes.MODES, losses.LOSSES); the precision modes
come from the zoo's table.
"""
import argparse
import sys

import zoo_precision

MODES = ("train", "eval", "export", "finalize", "freeze", "evaluate_test")
LOSS_MODES = ("cosine-softmax", "magnet", "triplet")
DEFAULT_PRECISION = "allow_mix_precision"


class ArgumentParser(argparse.ArgumentParser):
    """Flag mistakes as one '[Error] <script>: <message>' line and exit status 2 (no usage dump)."""

    def error(self, message):
        sys.stderr.write(f"[Error] {self.prog}: {message}\n")
        sys.exit(2)


def _greater_than_zero(convert, label, allow_none=False):
    """argparse type: `convert(text)` that must be > 0 (or the word None when allow_none)."""

    def parse(text):
        if allow_none and text.strip().lower() == "none":
            return None
        number = convert(text)
        if not number > 0:
            raise argparse.ArgumentTypeError(f"must be a {label}, got {text!r}")
        return number

    parse.__name__ = label + (" or None" if allow_none else "")
    return parse


_positive_int = _greater_than_zero(int, "positive integer")
_positive_float = _greater_than_zero(float, "positive number")
_steps = _greater_than_zero(int, "positive integer", allow_none=True)


def _at_least_two(text):
    number = int(text)
    if number < 2:
        raise argparse.ArgumentTypeError(f"must be 2 or more, got {text!r}")
    return number


_at_least_two.__name__ = "integer"


def _bool(text):
    """argparse type for the launchers' True/False switches."""
    lowered = text.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")
    return lowered in ("true", "1")


_bool.__name__ = "True/False"


def build_parser(adapter):
    """The flags of train_<dataset>.py: the shared ones and the adapter's (add_flags)."""
    name = adapter.NAME
    parser = ArgumentParser(prog=f"train_{name}.py", description=f"Metric learning on {name}.")
    parser.add_argument("--mode", default="train", choices=MODES)
    parser.add_argument("--batch_size", type=_positive_int, default=128,
                        help="images per step: batch_size/4 identities x 4 images; divisible by 4")
    parser.add_argument("--learning_rate", type=_positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--number_of_steps", type=_steps, default=None, help="train steps (None: forever)")
    parser.add_argument("--log_dir", default=f"/tmp/{name}_logdir")
    parser.add_argument("--eval_log_dir", default=f"/tmp/{name}_evaldir")
    parser.add_argument("--loss_mode", default="cosine-softmax", choices=LOSS_MODES)
    parser.add_argument("--restore_path", default=None,
                        help="checkpoint (or folder of checkpoints); train: resume all of it (step, classifier, "
                             "optimizer); other modes: the one to evaluate, export, finalize, freeze")
    parser.add_argument("--warm_start_path", default=None,
                        help="train: checkpoint (or folder) whose network variables initialise a new run that "
                             "starts at step 1 with a new classifier and optimizer")
    parser.add_argument("--run_id", default=None, help="sub-folder of log_dir (train: random 6 chars if unset)")
    parser.add_argument("--keep_checkpoint_max", type=_at_least_two, default=5,
                        help="newest checkpoints kept (2 or more: a kill during a save leaves the one before)")
    parser.add_argument("--save_interval_secs", type=_positive_float, default=300,
                        help="checkpoint every this many seconds (and at step 0, on SIGTERM/SIGINT, at the end)")
    parser.add_argument("--log_every", type=_positive_int, default=10, help="console/summary every N steps")
    parser.add_argument("--eval_interval_secs", type=_positive_float, default=60,
                        help="eval mode: how often to look for a new checkpoint")
    parser.add_argument("--eval_once", action="store_true", help="eval mode: evaluate the latest checkpoint, exit")
    parser.add_argument("--result_dir", default=None,
                        help="train: where result.json goes (default: log_dir/run_id); eval: adds its Precision@1 "
                             "to the result.json there")
    parser.add_argument("--launcher", default=f"train_{name}.py", help="the run's name in result.json "
                                                                          "(the launchers pass theirs)")
    parser.add_argument("--seed", type=int, default=None, help="fixes the batch sampling, flips and initial weights")
    parser.add_argument("--precision_mode", default=DEFAULT_PRECISION, choices=zoo_precision.PRECISION_MODES,
                        help="Ascend precision mode; elsewhere zoo_precision.py's table (training; inference is float32)")
    parser.add_argument("--over_dump", type=_bool, default=False, help="Ascend: dump overflowing operators")
    parser.add_argument("--data_dump_flag", type=_bool, default=False, help="Ascend: dump operator data")
    parser.add_argument("--data_dump_step", type=int, default=10, help="Ascend: step whose data is dumped")
    parser.add_argument("--profiling", type=_bool, default=False, help="Ascend: profile the run")
    parser.add_argument("--autotune", type=_bool, default=False, help="Ascend: RL,GA operator auto-tuning")
    adapter.add_flags(parser)
    return parser
