"""Entry point: python3 main.py --data_path=<Dogs-vs-Cats folder> [--epoch=35 --step=0 --batch_size=100 ...]

User mistakes end with one '[Error] ...' line on stderr and exit status 1 (2 for a malformed flag).
In-process (tests): run(parse(argv), inputs) with data_loader.Inputs made from arrays.
"""
import argparse
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log
# oneDNN kernels (fused conv+bias, fast conv back-prop) are on by default only on some x86 CPUs; on this
# project's AMD EPYC they were off and a training step took 2.7x longer. Set TF_ENABLE_ONEDNN_OPTS=0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import tensorflow as tf  # noqa: E402

import alexnet_device  # noqa: E402
import data_loader  # noqa: E402
import distributed  # noqa: E402
import model  # noqa: E402
import run_outputs  # noqa: E402
import run_safety  # noqa: E402
import train  # noqa: E402
import training_graph  # noqa: E402
import zoo_precision  # noqa: E402


class Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"[Error] main.py: {message}\n")
        sys.exit(2)


def _checked(kind, minimum):
    def convert(text):
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value
    convert.__name__ = f"{kind.__name__} >= {minimum}"
    return convert


def _bool(text):
    if str(text).lower() in ("true", "1", "yes"):
        return True
    if str(text).lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be True or False, got {text!r}")


_bool.__name__ = "boolean"


def parse(argv):
    p = Parser(prog="main.py", description="Train the two-tower AlexNet on Dogs-vs-Cats JPEGs.")
    p.add_argument("--data_path", required=True, help="folder of cat.<n>.jpg/dog.<n>.jpg, or its parent")
    p.add_argument("--output_path", default="output", help="checkpoints, curves and logs (default ./output)")
    p.add_argument("--epoch", type=_checked(int, 1), default=35)
    p.add_argument("--step", type=_checked(int, 0), default=0, help="steps per epoch; 0 = one pass over the data")
    p.add_argument("--batch_size", type=_checked(int, 1), default=100)
    p.add_argument("--learning_rate", type=_checked(float, 1e-12), default=0.001)
    p.add_argument("--init", default="scaled", choices=model.INITS,
                   help="initial weights: scaled = He normal, biases 0 (default); original = N(0, 0.01) (README)")
    p.add_argument("--pixels", default="unit", choices=model.PIXELS,
                   help="network input: unit = per-channel mean/std scaled (default); raw = BGR 0..255, the original")
    p.add_argument("--mul_rank_size", type=_checked(int, 1), default=1)
    p.add_argument("--mul_device_id", type=_checked(int, 0), default=0)
    p.add_argument("--collective_timeout", type=_checked(float, 1), default=300,
                   help="seconds a worker waits for the others before it stops (several workers off Ascend)")
    p.add_argument("--val_photos", type=_checked(float, 0), default=1000,
                   help="held-out source photos: a count, or a fraction when below 1 (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the shuffle and the initial weights")
    p.add_argument("--skip_bad_photos", type=_bool, default=False,
                   help="True: leave unreadable JPEGs out with a warning naming each; default: stop naming the first")
    p.add_argument("--cache_mb", type=_checked(int, 0), default=2048,
                   help="keep decoded images in memory when they fit in this budget (0 = never)")
    p.add_argument("--log_every", type=_checked(int, 1), default=20, help="steps between progress lines")
    p.add_argument("--precision_mode", default="allow_mix_precision", choices=zoo_precision.PRECISION_MODES)
    p.add_argument("--over_dump", type=_bool, default=False)
    p.add_argument("--data_dump_flag", type=_bool, default=False)
    p.add_argument("--data_dump_step", type=int, default=10)
    p.add_argument("--profiling", type=_bool, default=False)
    args, unknown = p.parse_known_args(argv)
    for flag in unknown:
        print(f"[Warning] main.py: unknown argument {flag} ignored", file=sys.stderr)
    if args.mul_device_id >= args.mul_rank_size:
        p.error(f"--mul_device_id {args.mul_device_id} must be below --mul_rank_size {args.mul_rank_size}")
    return args


def photo_inputs(args):
    """data_loader.Inputs of this rank from the photos of --data_path."""
    entries, crops = data_loader.list_photos(args.data_path, skip_bad=args.skip_bad_photos)
    train_set, val_set = data_loader.split(entries, args.val_photos, args.seed)
    if len(val_set) < args.mul_rank_size:  # every rank evaluates its share of the held-out images
        raise data_loader.DataError(f"--val_photos: {len(val_set)} held-out images cannot be shared by "
                                    f"{args.mul_rank_size} ranks; hold out more")
    cache = data_loader.fits_cache(len(entries), args.cache_mb)
    print(f"split: {len(train_set)} training / {len(val_set)} held-out images "
          f"({len({e[2] for e in val_set})} source photos held out, seed {args.seed}); "
          f"decoded-image cache {'on' if cache else 'off'}")
    return data_loader.inputs(train_set, val_set, args.batch_size, crops, cache, args.seed,
                              args.mul_rank_size, args.mul_device_id)


def run(args, inputs=None):
    """Trains as the flags say; returns the history (run_outputs.new_history). inputs: data_loader.Inputs
    instead of the photos of --data_path. Raises data_loader.DataError, train.TrainingError,
    distributed.ClusterError, run_safety.RunSafetyError for the user's mistakes (and a diverged loss),
    run_safety.Stopped after SIGTERM / SIGINT. The flags and the data are checked before anything is written."""
    inputs = inputs or photo_inputs(args)
    if args.batch_size > inputs.train_images:
        raise data_loader.DataError(f"--batch_size: {args.batch_size} is larger than the {inputs.train_images} "
                                    "training images of this rank; pass a smaller --batch_size or --val_photos")
    run_safety.writable_folder(args.output_path, "--output_path")
    with run_safety.FolderLock(args.output_path):
        return _train(args, inputs)


def _train(args, inputs):
    chosen = alexnet_device.precision(args.precision_mode)
    config = alexnet_device.session_config(chosen, alexnet_device.Dumps(
        args.output_path, args.over_dump, args.data_dump_flag, args.data_dump_step, args.profiling))
    ranks = distributed.ranks(args.mul_rank_size, args.mul_device_id, chosen.device == "Ascend",
                              timeout_seconds=args.collective_timeout)
    where, target = chosen.describe(), ""
    if ranks:
        config, target = ranks.connect(config)
        where += f"; worker {ranks.index} of {ranks.size}, gradients all-reduced"
    print(where)
    print(f"this rank: {inputs.train_images} training images, {inputs.held_out_images} held out")
    net = training_graph.build(inputs, args.learning_rate * args.mul_rank_size, args.init, args.pixels,
                               args.seed + args.mul_device_id, ranks)
    outputs = run_outputs.RunOutputs(args.output_path, net.graph, net.conv1, chief=ranks is None or ranks.is_chief,
                                     settings={"pixels": args.pixels})
    plan = train.Plan(epochs=args.epoch, steps=args.step or inputs.train_images // args.batch_size,
                      batch_size=args.batch_size, held_out_batches=math.ceil(inputs.held_out_images / args.batch_size),
                      log_every=args.log_every)
    try:
        return train.run(net, plan, outputs, config, ranks, target)
    except distributed.PEER_ERRORS as err:
        if ranks is None:
            raise
        raise train.TrainingError(f"main.py: {ranks.describe_failure(err)}") from None


def main(argv):
    args = parse(argv)
    tf.get_logger().setLevel("ERROR")
    start = time.time()
    try:
        history = run(args)
    except (data_loader.DataError, train.TrainingError, distributed.ClusterError, run_safety.RunSafetyError) as err:
        sys.stderr.write(f"[Error] {err}\n")
        return 1
    except run_safety.Stopped as stop:
        sys.stderr.write(f"[Error] {stop}\n")
        return stop.status
    print(f"Final held-out accuracy : {history['test_acc'][-1]:.2f}")
    print(f"Total time sec : {time.time() - start:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
