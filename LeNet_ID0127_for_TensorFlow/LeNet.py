"""Trains LeNet-5 on MNIST idx files, then evaluates it on the whole test set.

Checkpoints go to <output_path>/ckpt_npu (resumed from when present), TensorBoard events to
<output_path>/logs/train and logs/eval, the run's record to <output_path>/result.json. The log lines keep
the original port's format so its launcher greps still work.
"""
import os
import time

import lenet_cli
import mnist_idx
import run_safety
import zoo_precision
from lenet_cli import UsageError

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    p = lenet_cli.ArgumentParser(prog="LeNet.py", description=__doc__)
    p.add_argument("--data_path", default="MNIST", help="folder with the four MNIST idx files (.gz or plain)")
    p.add_argument("--output_path", default=os.path.join(HERE, "test", "output"),
                   help="run folder: ckpt_npu/ (checkpoints, graph.pbtxt), logs/ (TensorBoard), result.json")
    p.add_argument("--batch_size", type=lenet_cli.positive_int, default=64)
    p.add_argument("--learing_rata", "--learning_rate", dest="learning_rate", type=lenet_cli.positive_float,
                   default=0.001, help="Adam learning rate (the original's misspelt flag is kept)")
    p.add_argument("--steps", type=lenet_cli.positive_int, default=1000, help="steps per epoch")
    p.add_argument("--epochs", type=lenet_cli.positive_int, default=5)
    p.add_argument("--validation_size", type=int, default=5000, help="last N training images held out")
    p.add_argument("--save_checkpoints_steps", type=lenet_cli.positive_int, default=200)
    p.add_argument("--summary_steps", type=lenet_cli.positive_int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--resume", type=lenet_cli.str2bool, default=False,
                   help="True: continue from <output_path>/ckpt_npu, an error when it holds no usable checkpoint "
                        "(False resumes too when checkpoints are there)")
    p.add_argument("--restore_path", default="", help="checkpoint (file prefix or folder) to initialise from")
    p.add_argument("--restore_exclude", default="",
                   help="comma-separated scopes not to load, e.g. fc_3/; linear/ (the original README's value) "
                        "means the fully connected layers fc_1/, fc_2/, fc_3/")
    p.add_argument("--precision_mode", choices=zoo_precision.PRECISION_MODES, default="allow_fp32_to_fp16",
                   help="Ascend option; off Ascend the zoo's precision table maps it (see README)")
    p.add_argument("--loss_scale_flag", type=int, choices=(0, 1), default=0,
                   help="Ascend: 1 scales the loss (0: no loss scaling), as the original")
    p.add_argument("--loss_scale_value", type=float, default=0.0,
                   help="with --loss_scale_flag=1: 0 a dynamic loss scale, >= 1 that fixed scale")
    p.add_argument("--over_dump", type=lenet_cli.str2bool, default=False)
    p.add_argument("--data_dump_flag", type=lenet_cli.str2bool, default=False)
    p.add_argument("--data_dump_step", type=str, default="10")
    p.add_argument("--profiling", type=lenet_cli.str2bool, default=False)
    p.add_argument("--iteration_per_loop", type=lenet_cli.positive_int, default=1)
    p.add_argument("--launcher", default="LeNet.py", help="what started the run, for result.json")
    args = lenet_cli.parse_tolerant(p, argv)
    if args.validation_size < 0:
        p.error(f"argument --validation_size: must be >= 0, got {args.validation_size}")
    if not (args.loss_scale_value == 0 or args.loss_scale_value >= 1):
        p.error(f"argument --loss_scale_value: must be 0 (dynamic) or >= 1, got {args.loss_scale_value:g}")
    return args


def run(args, datasets=None):
    """Trains and evaluates as the parsed flags say, printing the log the launchers read and writing
    result.json; returns a lenet_train.Outcome.

    datasets: (train, validation, test) mnist_idx.Split objects to use instead of reading --data_path (and
    --validation_size); tests inject small arrays this way. Each call builds its own graph.
    """
    started = time.monotonic()
    # Check first, then touch: the data and the output folder are proven before anything is written, and
    # the folder is locked before its checkpoints are read.
    splits = datasets or mnist_idx.load(args.data_path, args.validation_size)
    source = args.data_path if datasets is None else "arrays passed to run()"
    run_safety.writable_folder(args.output_path, "--output_path")
    with run_safety.FolderLock(args.output_path) as lock, run_safety.StopSignals() as stop:
        folders = {name: run_safety.writable_folder(os.path.join(args.output_path, *parts), "--output_path")
                   for name, parts in (("ckpt", ("ckpt_npu",)), ("train_logs", ("logs", "train")),
                                       ("eval_logs", ("logs", "eval")))}
        lock.remove_unfinished_saves(folders["ckpt"])
        resume_from = run_safety.resume_point(folders["ckpt"])
        if args.resume and not resume_from:
            raise UsageError(f"--resume=True: {folders['ckpt']} holds no checkpoint to resume from")
        # TensorFlow only now: --help and a bad flag answer without its start-up (seconds).
        import lenet_train

        return lenet_train.train_and_evaluate(args, splits, source, folders, resume_from, stop, started)


def main(argv):
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    lenet_cli.run(main)
