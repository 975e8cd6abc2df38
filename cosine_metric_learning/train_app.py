"""Entry point of train_market1501.py / train_mars.py: parses the flags, then loads TensorFlow and runs one
mode (modes.py). TensorFlow loads only after parsing, so --help and a flag mistake answer at once.

Each script passes its dataset adapter (NAME, NUM_GALLERIES, EXPORT_DIR_FLAG, add_flags, read_train,
feature_files, evaluate_test) to main(). Tests call main(adapter, argv) in-process, with a small synthetic
folder or an adapter of their own.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cli  # noqa: E402
import run_safety  # noqa: E402
from datasets.util import UsageError  # noqa: E402
import zoo_precision  # noqa: E402

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)

# Modes that read only a checkpoint: --dataset_dir need not exist.
CHECKPOINT_ONLY = ("finalize", "freeze")


def main(adapter, argv=None):
    """The scripts' entry point; returns the exit status (flag syntax errors exit 2 from argparse)."""
    # started: the process's start for result.json's e2e_seconds (TensorFlow's import included)
    args = cli.build_parser(adapter).parse_args(sys.argv[1:] if argv is None else argv,
                                                argparse.Namespace(started=time.time()))
    try:
        if not os.path.isdir(args.dataset_dir) and args.mode not in CHECKPOINT_ONLY:
            raise UsageError(f"--dataset_dir: {args.dataset_dir} is not a folder")
        if args.warm_start_path and args.mode != "train":
            raise UsageError(f"--warm_start_path: train mode only (this is {args.mode} mode)")
        import modes  # TensorFlow, after the checks that need none of it
        modes.run(adapter, args)
        return 0
    except (UsageError, run_safety.RunSafetyError) as err:
        sys.stderr.write(f"[Error] {err}\n")
        return 1
    except run_safety.Stopped as stop:
        sys.stderr.write(f"[Error] {stop}\n")
        return stop.status
    except KeyboardInterrupt:  # Ctrl-C outside training (reading data, eval polling): nothing to save
        sys.stderr.write(f"[Error] interrupted by Ctrl-C in {args.mode} mode\n")
        return 130
    except Exception as err:  # no room for eval's summaries or finalize's checkpoint (train's lock says its own)
        room = run_safety.no_room(err)
        if room is None:
            raise
        sys.stderr.write(f"[Error] {room}, and run again\n")
        return 1
