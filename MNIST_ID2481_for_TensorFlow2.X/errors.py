"""The user's mistakes, which mnist_main.py reports as one '[Error] ...' line (exit 1) instead of a traceback."""


class UsageError(Exception):
    """A flag value, flag combination or TF_CONFIG that cannot work."""
