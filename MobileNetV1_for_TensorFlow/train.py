"""Trains a tf-slim MobileNet v1 on slim ImageNet TFRecords (entry point of the launchers).

    python train.py --dataset_dir=/opt/npu/slimImagenet --max_train_steps=500 [flags]

Flags keep slim's train_image_classifier names. mobilenet_device.py picks the runner: NPUEstimator when the
Ascend adapter (npu_bridge) imports, else the session loop (session_loop.py) on GPU or CPU. Checkpoints and
train_log.log go to <model_dir>/<RANK_ID>; result.json (run_report) and the TensorBoard run train/ to
--result_dir. Several workers: RANK_SIZE > 1 with HCCL on Ascend (RANK_TABLE_FILE), elsewhere TF_CONFIG names
the cluster (distributed.py); the 8p launchers set both.
"""
import os
import sys
import time

import cli_util
import lr_schedule
import optimizers
import run_report
import run_safety
import train_params
import zoo_precision
from cli_util import UserError
from nets import nets_factory
from preprocessing import preprocessing_factory

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)

LAUNCHER_ENV = "ZOO_LAUNCHER"  # the launcher that started this run (result.json's launcher), set by launcher_lib.sh


def build_parser():
    p = cli_util.Parser(prog="train.py", description=__doc__.splitlines()[0])
    a = p.add_argument
    a("--dataset_dir", default="/opt/npu/slimImagenet", help="folder with train-XXXXX-of-NNNNN TFRecords")
    # Defaults from the original README's parameter table (README: Differences from the original).
    a("--max_train_steps", type=cli_util.positive_int, help="steps to train (not with --max_epoch)")
    a("--max_epoch", type=cli_util.positive_int,
      help=f"epochs to train ({train_params.DEFAULT_EPOCHS} when --max_train_steps is not given either)")
    a("--iterations_per_loop", type=cli_util.positive_int, default=None,
      help="steps per device loop on Ascend; the logging interval everywhere (default: one epoch)")
    a("--model_name", default="mobilenet_v1", choices=list(nets_factory.DEPTH_MULTIPLIERS))
    a("--moving_average_decay", type=cli_util.unit_interval, default=None,
      help="keep an exponential moving average of the model variables (e.g. 0.9999)")
    a("--label_smoothing", type=cli_util.unit_interval, default=0.1)
    a("--preprocessing_name", default="inception_v2", choices=list(preprocessing_factory.NAMES))
    a("--weight_decay", type=cli_util.non_negative_float, default=0.0, help="the recipe's is 0.00004")
    a("--batch_size", type=cli_util.positive_int, default=256, help="per device")
    a("--learning_rate_decay_type", default="fixed", choices=list(lr_schedule.DECAYS))
    a("--learning_rate", type=cli_util.positive_float, default=0.1)
    a("--optimizer", default="sgd", choices=list(optimizers.FACTORIES))
    a("--momentum", type=cli_util.unit_interval, default=0.9)
    a("--warmup_epochs", type=cli_util.non_negative_float, default=5.0)
    a("--end_learning_rate", type=cli_util.non_negative_float, default=0.0001, help="polynomial decay target")
    a("--learning_rate_decay_factor", type=cli_util.positive_float, default=0.94, help="exponential decay")
    a("--num_epochs_per_decay", type=cli_util.positive_float, default=2.0, help="exponential/polynomial")
    a("--num_classes", type=cli_util.positive_int, default=1001)
    a("--labels_offset", type=cli_util.non_negative_int, default=0)
    a("--restore_path", default=None, help="checkpoint (file or folder) to warm-start from")
    a("--restore_exclude", default=None, help="comma-separated scopes not restored, e.g. MobilenetV1/Logits/")
    a("--over_dump", type=cli_util.boolean, default=False,
      help="Ascend: overflow dump; elsewhere: stop at the first op producing inf/NaN")
    # Beyond the original's flags: what a shorter run or a smaller dataset needs.
    a("--train_image_size", type=cli_util.positive_int, default=224)
    a("--num_train_samples", type=cli_util.positive_int, default=1281167,
      help="training-set size that defines an epoch (ImageNet: 1,281,167)")
    a("--batch_norm_decay", type=cli_util.unit_interval, default=0.9997,
      help="moving-statistics decay; short runs need a smaller one (e.g. 0.9)")
    a("--model_dir", default="./results", help="checkpoints go to <model_dir>/<RANK_ID>")
    a("--result_dir", default=None,
      help="where result.json and the TensorBoard run train/ go (default: <model_dir>/<RANK_ID>)")
    a("--keep_checkpoint_max", type=cli_util.positive_int, default=5)
    a("--precision_mode", default="allow_mix_precision", choices=list(zoo_precision.PRECISION_MODES),
      help="Ascend names; off Ascend see README (MobileNet trains float32 on every CPU)")
    a("--seed", type=int, default=1)
    a("--collective_timeout", type=cli_util.positive_float, default=300.0,
      help="several workers off Ascend: seconds a worker waits for the others at a collective op before "
           "it stops with an error (covers start-up skew and the slowest step)")
    return p


def run(args, environ=None, input_fn=None):
    """Trains with the parsed flags and returns the newest checkpoint. environ: RANK_ID, RANK_SIZE, TF_CONFIG
    (default os.environ); input_fn: a callable returning the training tf.data.Dataset of (images, labels),
    called inside the training graph (default: the TFRecords of --dataset_dir)."""
    started = time.time()
    # TensorFlow and what is built on it load here, after the flags: --help and a bad flag answer at once.
    tf = cli_util.load_tensorflow()
    import distributed
    import estimator_impl
    import mobilenet_device
    from dataloader import data_provider

    environ = os.environ if environ is None else environ
    if args.max_train_steps is not None and args.max_epoch is not None:
        raise UserError("--max_train_steps/--max_epoch: give one of the two, not both")
    if args.labels_offset >= args.num_classes:
        raise UserError("--labels_offset: must be smaller than --num_classes")
    try:
        cluster = distributed.Cluster.from_environ(environ, timeout_seconds=args.collective_timeout)
        if cluster:
            environ = cluster.rank_environ(environ)
            cluster.check_port_free()
    except distributed.ClusterError as err:
        raise UserError(str(err)) from None
    try:
        params = train_params.from_args(args, environ)
    except ValueError as err:
        raise UserError(f"RANK_ID/RANK_SIZE: {err}") from None
    try:
        device = mobilenet_device.select(args.precision_mode, params.rank_id, params.rank_size, cluster)
    except ValueError as err:
        raise UserError(str(err)) from None
    files = None
    if input_fn is None:
        files = data_provider.list_files(args.dataset_dir, "train")
        data_provider.check_records(files)  # another schema or a damaged file: stop before writing anything

        def input_fn(*_estimator_arguments):
            return data_provider.build_dataset(
                args.dataset_dir, "train", args.batch_size, True, args.train_image_size, args.num_classes,
                args.preprocessing_name, args.labels_offset, params.rank_id, params.rank_size,
                seed=args.seed + params.rank_id)

    result_dir = args.result_dir or params.model_dir
    run_safety.writable_folder(params.model_dir, "--model_dir")
    run_safety.writable_folder(result_dir, "--result_dir")
    with run_safety.FolderLock(params.model_dir) as lock:
        train_params.set_seeds(args.seed)
        print(device.describe(), flush=True)
        lock.remove_unfinished_saves(params.model_dir)
        print(f"mobilenet: {args.model_name}, {args.num_classes} classes, batch {args.batch_size} x "
              f"{params.rank_size} ranks, {params.steps_per_epoch} steps/epoch, {params.max_train_steps} steps, "
              f"model_dir {params.model_dir}", flush=True)
        try:
            last, steps = estimator_impl.train(params, input_fn, device, os.path.join(result_dir, "train"))
        except tf.errors.OpError as err:
            diagnosis = data_provider.diagnose(err, files) if files else None
            if diagnosis:
                raise diagnosis from None
            if device.cluster is None or not isinstance(err, distributed.PEER_ERRORS) or data_provider.explain(err):
                raise
            raise UserError(f"train.py: {device.cluster.describe_failure(err)}") from None
        write_result(result_dir, args, params, device, steps, started, environ)
    print(f"last checkpoint: {last}", flush=True)
    return last


def write_result(folder, args, params, device, steps, started, environ):
    """The run's result.json: this process's steady-state timing (null when it found nothing left to train);
    the accuracy (top-1 on the validation split) is the evaluation's to add (eval_image_classifier_mobilenet)."""
    clock = steps.clock
    run_report.write_result(
        folder, model="MobileNetV1_for_TensorFlow", launcher=environ.get(LAUNCHER_ENV, "train.py"),
        device=device.precision.device, precision=device.precision.dtype, batch_size=params.global_batch_size,
        rank_size=params.rank_size, steps=len(clock.seconds), warmup_steps=clock.warmup_excluded,
        ms_per_step=clock.ms_per_step, images_per_sec=clock.images_per_sec, accuracy_name="top1", accuracy=None,
        final_loss=steps.final_loss, e2e_seconds=round(time.time() - started, 3), rank_id=params.rank_id,
        global_step=steps.global_step)


def main(argv):
    run(cli_util.parse(build_parser(), argv))
    return 0


if __name__ == "__main__":
    sys.exit(cli_util.main_wrapper(main, "train.py"))
