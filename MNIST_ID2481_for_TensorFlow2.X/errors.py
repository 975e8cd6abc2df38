"""The user's mistakes, which mnist_main.py reports as one '[Error] ...' line (exit 1) instead of a traceback."""


class UsageError(Exception):
    """A flag value, flag combination or TF_CONFIG that cannot work."""


def op_error_cause(err):
    """The line of a TensorFlow error that states the cause: inside a tf.function it follows 'Graph execution
    error' and the failed node's (indented) stack."""
    noise = ("Graph execution error", "Detected at node", "<stack traces")
    lines = [line for line in str(err.message).split("\n") if line.strip() and not line[0].isspace()]
    causes = [line for line in lines if not line.startswith(noise)] or lines
    return " ".join(causes[0].split())
