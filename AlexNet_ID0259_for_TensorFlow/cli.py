"""Flag parsing for the entry scripts (main.py, export.py, predict.py, data_preprocessor.py), free of
TensorFlow: each parses its flags before it imports TensorFlow, so -h and a malformed flag answer at once."""
import argparse
import sys

# The network's choices (model.py builds them and imports these names from here).
INITS = ("original", "scaled")  # initial weights, see model._initializer
PIXELS = ("raw", "unit")        # network input, see model.network_input


class Parser(argparse.ArgumentParser):
    """A malformed flag is one '[Error] <script>: ...' line and exit status 2, without argparse's usage text."""

    def error(self, message):
        sys.stderr.write(f"[Error] {self.prog}: {message}\n")
        sys.exit(2)


def at_least(kind, minimum):
    """An argparse type: kind(text), refused below minimum."""
    def convert(text):
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value
    convert.__name__ = f"{kind.__name__} >= {minimum}"
    return convert


def boolean(text):
    if str(text).lower() in ("true", "1", "yes"):
        return True
    if str(text).lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be True or False, got {text!r}")


boolean.__name__ = "boolean"
