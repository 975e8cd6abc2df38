"""Trains and evaluates the Keras MNIST CNN of tensorflow/models `official` on a TFDS-prepared folder.

    python3 mnist_main.py --data_dir=/dataset --model_dir=/tmp/mnist --train_epochs=10 --download=False

Runs on Ascend (when npu_device imports; mnist_device.py), GPU or CPU. With TF_CONFIG set
(test/train_performance_8p_static_eval.sh writes it) this process is one worker of a MultiWorkerMirroredStrategy
cluster (distribution.py). User mistakes end with one '[Error] ...' line.
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from absl import flags  # noqa: E402

import mnist_flags  # noqa: E402
from mnist_model import create_model  # noqa: E402, F401  (tensorflow/models `official`: mnist_main.create_model)
import zoo_precision  # noqa: E402

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)

FLAGS = flags.FLAGS


def run(values, datasets_override=None, started=None):
    """Trains, evaluates and exports as the flags `values` say; returns the run stats (the `official` API; the
    work is in mnist_run.py, which loads TensorFlow). datasets_override: (train, test) unbatched datasets of
    (float32 [28, 28, 1] image in [0, 1], int label) used instead of --data_dir. started: time.monotonic() at
    the process's start, for result.json's e2e_seconds (default: now)."""
    import mnist_run

    return mnist_run.run(values, datasets_override, started)


def print_help():
    print(__doc__.strip())
    print(FLAGS.module_help(mnist_flags.__name__))


def main(argv):
    started = time.monotonic()
    script = os.path.basename(argv[0])
    if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv[1:]):
        print_help()
        return 0
    try:
        rest = FLAGS(argv)
    except flags.Error as err:
        sys.stderr.write(f"[Error] {script}: {err}\n")
        return 2
    if len(rest) > 1:
        sys.stderr.write(f"[Error] {script}: unexpected argument {rest[1]!r} (flags are --name=value)\n")
        return 2
    import mnist_run

    return mnist_run.main(FLAGS, started)


mnist_flags.define_mnist_flags()

if __name__ == "__main__":
    sys.exit(main(sys.argv))
