"""Trains a tf-slim MobileNet v1 on slim ImageNet TFRecords (entry point of the launchers).

    python train.py --dataset_dir=/opt/npu/slimImagenet --max_train_steps=500 [flags]

Flags keep slim's train_image_classifier names. Runs NPUEstimator when the Ascend adapter (npu_bridge)
imports, else the session loop of estimator_impl.py on GPU or CPU. Checkpoints and train_log.log go to
<model_dir>/<RANK_ID>. Several workers: RANK_SIZE > 1 with HCCL on Ascend (RANK_TABLE_FILE), elsewhere
TF_CONFIG names the cluster (distributed.py); the 8p launchers set both.
"""
import os
import sys

import cli_util
from cli_util import UserError


def build_parser():
    p = cli_util.Parser(prog="train.py", description=__doc__.splitlines()[0])
    a = p.add_argument
    a("--dataset_dir", default="/opt/npu/slimImagenet", help="folder with train-XXXXX-of-NNNNN TFRecords")
    a("--max_train_steps", type=cli_util.positive_int, help="steps to train (exactly one of this and --max_epoch)")
    a("--max_epoch", type=cli_util.positive_int, help="epochs to train")
    a("--iterations_per_loop", type=cli_util.positive_int, default=10,
      help="steps per device loop on Ascend; the logging interval everywhere")
    a("--model_name", default="mobilenet_v1",
      choices=["mobilenet_v1", "mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025"])
    a("--moving_average_decay", type=cli_util.unit_interval, default=None,
      help="keep an exponential moving average of the model variables (e.g. 0.9999)")
    a("--label_smoothing", type=cli_util.unit_interval, default=0.1)
    a("--preprocessing_name", default="inception_v2",
      choices=["inception", "inception_v2", "inception_v3", "mobilenet_v1"])
    a("--weight_decay", type=cli_util.non_negative_float, default=0.00004)
    a("--batch_size", type=cli_util.positive_int, default=256, help="per device")
    a("--learning_rate_decay_type", default="cosine_annealing",
      choices=["fixed", "exponential", "cosine_annealing", "polynomial"])
    a("--learning_rate", type=cli_util.positive_float, default=0.1)
    a("--optimizer", default="momentum", choices=["sgd", "momentum", "adam", "rmsprop", "adagrad", "adadelta", "ftrl"])
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
    a("--keep_checkpoint_max", type=cli_util.positive_int, default=5)
    a("--precision_mode", default="allow_mix_precision",
      choices=["allow_mix_precision", "allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype"])
    a("--seed", type=int, default=1)
    a("--collective_timeout", type=cli_util.positive_float, default=300.0,
      help="several workers off Ascend: seconds a worker waits for the others at a collective op before "
           "it stops with an error (covers start-up skew and the slowest step)")
    return p


def main(argv):
    args = cli_util.parse(build_parser(), argv)
    if (args.max_train_steps is None) == (args.max_epoch is None):
        raise UserError("--max_train_steps/--max_epoch: give exactly one of the two")
    if args.labels_offset >= args.num_classes:
        raise UserError("--labels_offset: must be smaller than --num_classes")
    import distributed
    import env
    import estimator_impl
    from dataloader import data_provider

    try:
        cluster = distributed.Cluster.from_environ(timeout_seconds=args.collective_timeout)
        environ = os.environ if cluster is None else distributed.rank_environ(cluster, os.environ)
        if cluster:
            distributed.check_ports_free(cluster)
    except distributed.ClusterError as err:
        raise UserError(str(err)) from None
    try:
        hp = env.HyperParams(args, environ)
    except ValueError as err:
        raise UserError(f"RANK_ID/RANK_SIZE: {err}") from None
    hp.on_npu = estimator_impl.npu_available()
    if hp.rank_size > 1 and not hp.on_npu and cluster is None:
        raise UserError("RANK_SIZE: several workers off Ascend need TF_CONFIG (a tf.distribute cluster); "
                        "start them with test/train_*_8p.sh, or run with RANK_SIZE=1")
    hp.cluster = None if hp.on_npu else cluster
    data_provider.list_files(args.dataset_dir, "train")  # fail early with the one-line message
    env.set_seeds(args.seed)

    def input_fn(*_unused):
        return data_provider.build_dataset(
            args.dataset_dir, "train", args.batch_size, True, args.train_image_size, args.num_classes,
            args.preprocessing_name, args.labels_offset, hp.rank_id, hp.rank_size, seed=args.seed + hp.rank_id)

    print(f"mobilenet: {args.model_name}, {args.num_classes} classes, batch {args.batch_size} x {hp.rank_size} ranks, "
          f"{hp.steps_per_epoch} steps/epoch, {hp.max_train_steps} steps, model_dir {hp.model_dir}", flush=True)
    if hp.on_npu:
        print(f"device: Ascend NPU via NPUEstimator, precision {args.precision_mode}", flush=True)
        last = estimator_impl.train_on_npu(hp, input_fn, args.precision_mode)
    else:
        config, description = estimator_impl.session_config(args.precision_mode)
        master = ""
        if hp.cluster:
            config = distributed.session_config(hp.cluster, config)
            master = distributed.start_server(hp.cluster, config).target
            description += (f"; worker {hp.rank_id} of {hp.rank_size} ({hp.cluster.workers[hp.rank_id]}), "
                            f"gradients all-reduced by TensorFlow collective ops")
        print(f"device: {description}; session loop", flush=True)
        try:
            last = estimator_impl.SessionLoop(hp, input_fn, config, master).train()
        except distributed.PEER_ERRORS as err:
            if hp.cluster is None or data_provider.explain(err):
                raise
            raise UserError(f"train.py: {distributed.describe_failure(hp.cluster, err)}") from None
    print(f"last checkpoint: {last}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli_util.main_wrapper(main, "train.py"))
