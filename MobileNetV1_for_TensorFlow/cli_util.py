"""Flag parsing and error reporting shared by train.py, the eval and export scripts.

A user mistake (bad flag value, missing or corrupt data, label out of range, a checkpoint of another model)
ends the process with ONE line `[Error] <flag or file>: <what is wrong>` on stderr and a non-zero status, never
a traceback; so do a diverged run (status 1) and a stop by SIGTERM / SIGINT after its checkpoint (143 / 130).

No TensorFlow here: the entry scripts parse their flags before they load it, so that --help and a bad flag
answer at once.
"""
import argparse
import os
import sys
import warnings

import run_safety

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ start-up and runtime chatter; errors reach Python


class UserError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"[Error] {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def _typed(name, convert, check, wording):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{wording}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"{wording}, got {text!r}")
        return value

    parse.__name__ = name
    return parse


positive_int = _typed("positive_int", int, lambda v: v > 0, "must be a positive integer")
non_negative_int = _typed("non_negative_int", int, lambda v: v >= 0, "must be an integer >= 0")
positive_float = _typed("positive_float", float, lambda v: v > 0, "must be a positive number")
non_negative_float = _typed("non_negative_float", float, lambda v: v >= 0, "must be a number >= 0")
unit_interval = _typed("fraction", float, lambda v: 0 <= v < 1, "must be a number in [0, 1)")


def boolean(text):
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be True or False, got {text!r}")


def parse(parser, argv):
    """Known flags; unknown ones are warned about and ignored, as slim's flag parsing tolerated them."""
    args, unknown = parser.parse_known_args(argv)
    for flag in unknown:
        print(f"[Warning] {parser.prog}: unknown argument {flag} ignored", file=sys.stderr)
    return args


def load_tensorflow():
    """TensorFlow, quiet (its Python warnings and TF1-API deprecation notices off); entry scripts call it once
    their flags are parsed."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", category=UserWarning)
    return tf


def _one_line(err, prog):
    """(message, exit status) of a user-facing error; None for a bug, whose traceback is wanted."""
    if isinstance(err, run_safety.Stopped):
        return str(err), err.status
    if isinstance(err, (UserError, run_safety.RunSafetyError)):
        return str(err), 1
    room = run_safety.no_room(err)  # evaluation's summaries (training and exports say their own)
    if room:
        return f"{room}, and run again", 1
    import distributed  # loaded only when the run got as far as forming a cluster

    if isinstance(err, distributed.ClusterError):
        return str(err), 1
    import tensorflow as tf  # what remains to sort are data and op errors, raised once TensorFlow is loaded

    from dataloader import data_provider

    if isinstance(err, data_provider.DataError):
        return str(err), 1
    explained = data_provider.explain(err) if isinstance(err, tf.errors.OpError) else None
    return (f"{prog}: {explained}", 1) if explained else None


def main_wrapper(main, prog, argv=None):
    """Runs main(argv) (default: the command line) and turns user errors and data errors into the one-line form."""
    try:
        status = main(sys.argv[1:] if argv is None else argv)
    except Exception as err:  # noqa: BLE001  (sorted by _one_line; anything else is re-raised)
        reported = _one_line(err, prog)
        if reported is None:
            raise
        print(f"[Error] {reported[0]}", file=sys.stderr)
        return reported[1]
    return status or 0


def check_checkpoint(prefix, restore, ema):
    """RunSafetyError unless --checkpoint_path prefix reads back whole and holds every variable of restore
    ({name in the checkpoint: variable}) with its shape: one line instead of the restore's traceback."""
    problem = run_safety.load_problem(prefix)
    if problem:
        raise run_safety.RunSafetyError(f"--checkpoint_path={prefix}: damaged checkpoint: {problem}")
    what = "this model with --moving_average_decay (EMA weights)" if ema else "this model"
    run_safety.check_variables(prefix, {name: var.shape.as_list() for name, var in restore.items()}, what)
