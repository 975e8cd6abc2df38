"""The modes of train_market1501.py / train_mars.py: train, eval, export, finalize, freeze, evaluate_test.

train_app.main parses the flags and imports this module only then (it loads TensorFlow). This module is the
only one that reads the parsed flags: each mode below turns them into the explicit arguments of training.py,
evaluation.py and export.py.
"""
import functools
import os
import random
import string

import tensorflow as tf

import checkpoints
import device_config
import evaluation
import export
import input_pipeline
import reporting
import run_safety
import training
from datasets.util import UsageError


def ascend_options(args, dump_dir):
    return device_config.AscendOptions(dump_dir, args.over_dump, args.data_dump_flag, args.data_dump_step,
                                       args.profiling, args.autotune)


def inference_config(args):
    """Session config of eval / export / evaluate_test (Ascend dumps and profiles go under log_dir)."""
    chosen = device_config.precision(args.precision_mode, training=False)
    print(chosen.describe(), flush=True)
    return device_config.session_config(chosen, ascend_options(args, os.path.join(args.log_dir,
                                                                                  args.run_id or args.mode)))


def read_training_data(adapter, dataset_dir):
    return input_pipeline.split_training_data(*adapter.read_train(dataset_dir))


def random_run_id():
    return "".join(random.SystemRandom().choice(string.ascii_lowercase + string.digits) for _ in range(6))


def optional_checkpoint(path, flag):
    return checkpoints.resolve(path, flag) if path else None


def train(adapter, args):
    data = read_training_data(adapter, args.dataset_dir)
    input_pipeline.check_batch_size(args.batch_size, data.train.num_ids, args.dataset_dir)
    if args.restore_path and args.warm_start_path:
        raise UsageError("--warm_start_path: give it or --restore_path, not both")
    start = checkpoints.Start(optional_checkpoint(args.restore_path, "--restore_path"),
                              optional_checkpoint(args.warm_start_path, "--warm_start_path"))
    run_id = args.run_id or random_run_id()
    run_dir = run_safety.writable_folder(os.path.join(args.log_dir, run_id), "--log_dir")
    record = reporting.Record(run_safety.writable_folder(args.result_dir, "--result_dir") if args.result_dir
                              else run_dir, args.launcher, args.started)
    # One run per checkpoint folder; the kernel frees the lock of a killed run (SIGKILL too).
    with run_safety.FolderLock(run_dir) as lock:
        chosen = device_config.precision(args.precision_mode)
        config = device_config.session_config(chosen, ascend_options(args, run_dir))
        hyper = training.Hyper(args.batch_size, args.learning_rate, args.loss_mode, args.seed)
        schedule = training.Schedule(args.number_of_steps, args.log_every, args.save_interval_secs,
                                     args.keep_checkpoint_max)
        print(chosen.describe(), flush=True)
        lock.remove_unfinished_saves(run_dir)
        print(f"run_id: {run_id}; checkpoints (every {schedule.save_interval_secs:g} s and at the end, the "
              f"last {schedule.keep_checkpoint_max} kept) and summaries in {run_dir}")
        print(f"{len(data.train.paths)} training images of {data.train.num_ids} identities "
              f"({data.num_classes} classes), batch {hyper.batch_size}, loss {hyper.loss_mode}", flush=True)
        training.train(data, run_dir, hyper, schedule, chosen, config, record, start)


def evaluate(adapter, args):
    data = read_training_data(adapter, args.dataset_dir)
    if data.validation.num_ids < 2:
        raise UsageError(f"--dataset_dir={args.dataset_dir}: fewer than 2 validation identities")
    # Without --run_id the checkpoints are looked for in --log_dir itself and results go to --eval_log_dir.
    run_dir, eval_dir = ((os.path.join(folder, args.run_id) if args.run_id else folder)
                         for folder in (args.log_dir, args.eval_log_dir))
    run_safety.writable_folder(eval_dir, "--eval_log_dir")
    on_evaluated = None
    if args.result_dir:
        reporting.read_record(args.result_dir)  # the training's record must be there before evaluating
        on_evaluated = functools.partial(reporting.add_accuracy, args.result_dir)
    evaluation.follow(run_dir, eval_dir, inference_config(args), data.validation, args.loss_mode,
                      adapter.NUM_GALLERIES, args.eval_interval_secs, args.eval_once, on_evaluated)


def export_features(adapter, args):
    checkpoint = checkpoints.resolve(args.restore_path)
    target_dir = getattr(args, adapter.EXPORT_DIR_FLAG)
    jobs = adapter.feature_files(args.dataset_dir, target_dir)
    run_safety.writable_folder(target_dir, f"--{adapter.EXPORT_DIR_FLAG}")
    export.export_features(jobs, checkpoint, inference_config(args))


def evaluate_test(adapter, args):
    checkpoint = checkpoints.resolve(args.restore_path)
    evaluation.evaluate_test(adapter, args.dataset_dir, checkpoint, inference_config(args), args.loss_mode)


def in_current_folder(name):
    """finalize / freeze write into the current folder, as the original did."""
    return os.path.join(run_safety.writable_folder(os.getcwd(), "the current folder"), name)


def finalize(adapter, args):
    export.finalize(checkpoints.resolve(args.restore_path), in_current_folder(f"{adapter.NAME}.ckpt"))


def freeze(adapter, args):
    export.freeze(checkpoints.resolve(args.restore_path), in_current_folder(f"{adapter.NAME}.pb"))


MODES = {"train": train, "eval": evaluate, "export": export_features, "finalize": finalize, "freeze": freeze,
         "evaluate_test": evaluate_test}


def run(adapter, args):
    tf.get_logger().setLevel("ERROR")
    MODES[args.mode](adapter, args)
