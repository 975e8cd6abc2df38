"""Flag parsing and error reporting shared by train.py, the eval and export scripts.

A user mistake (bad flag value, missing or corrupt data, label out of range) ends the process with ONE
line `[Error] <flag or file>: <what is wrong>` on stderr and a non-zero status, never a traceback.
"""
import argparse
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ start-up and runtime chatter; errors reach Python

import tensorflow as tf  # noqa: E402  (after the log level, which TensorFlow reads once at import)

from dataloader import data_provider  # noqa: E402


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


def main_wrapper(main, prog, argv=None):
    """Runs main(argv) (default: the command line) and turns user errors and data errors into the one-line form."""
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", category=UserWarning)  # TF1-API deprecation notices
    try:
        status = main(sys.argv[1:] if argv is None else argv)
    except (UserError, data_provider.DataError) as err:
        print(f"[Error] {err}", file=sys.stderr)
        return 1
    except tf.errors.OpError as err:
        explained = data_provider.explain(err)
        if explained is None:
            raise
        print(f"[Error] {prog}: {explained}", file=sys.stderr)
        return 1
    return status or 0
