"""Command-line plumbing shared by the LeNet scripts: one-line errors instead of tracebacks."""
import argparse
import os
import sys

import run_safety

# TensorFlow's C++ start-up chatter hides the lines users grep for; keep it unless asked for.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class ReportedError(Exception):
    """A failure the user can act on: reported as one '[Error] <message>' line and exit 1, no traceback."""


class UsageError(ReportedError):
    """A mistake in the user's input (flag, file or folder)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line (no usage dump) and exits 2."""

    def error(self, message):
        sys.stderr.write(f"[Error] {self.prog}: {message}\n")
        sys.exit(2)


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def str2bool(text):
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be True or False, got {text!r}")


# argparse names the converter in its message ("invalid positive_int value"); say what was expected.
positive_int.__name__ = "positive int"
positive_float.__name__ = "positive float"
str2bool.__name__ = "boolean"


def parse_tolerant(parser, argv):
    """Parses known flags; unknown ones are ignored with a warning, as the original scripts did."""
    args, unknown = parser.parse_known_args(argv)
    for flag in unknown:
        print(f"[Warning] {parser.prog}: unknown argument {flag} ignored", file=sys.stderr)
    return args


def run(main, argv=None):
    """Runs main(argv) (default: the command line) and exits; a ReportedError or RunSafetyError becomes
    '[Error] <message>' on stderr and exit status 1, a stop by SIGTERM / SIGINT its line and 143 / 130."""
    try:
        sys.exit(main(sys.argv[1:] if argv is None else argv) or 0)
    except (ReportedError, run_safety.RunSafetyError) as err:
        sys.stderr.write(f"[Error] {err}\n")
        sys.exit(1)
    except run_safety.Stopped as stop:
        sys.stderr.write(f"[Error] {stop}\n")
        sys.exit(stop.status)
