"""Entry point: python3 main.py --data_path=<Dogs-vs-Cats folder> [--epoch=35 --step=0 --batch_size=100 ...]

User mistakes end with one '[Error] ...' line on stderr and exit status 1 (2 for a malformed flag). The flags
are parsed before TensorFlow is imported (-h answers at once); the run itself is training_run.py.
In-process (tests): training_run.run(parse(argv), inputs) with data_loader.Inputs made from arrays.
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

import cli  # noqa: E402
import zoo_precision  # noqa: E402

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)


def parse(argv):
    p = cli.Parser(prog="main.py", description="Train the two-tower AlexNet on Dogs-vs-Cats JPEGs.")
    p.add_argument("--data_path", required=True, help="folder of cat.<n>.jpg/dog.<n>.jpg, or its parent")
    p.add_argument("--output_path", default="output", help="checkpoints, curves and logs (default ./output)")
    p.add_argument("--epoch", type=cli.at_least(int, 1), default=35)
    p.add_argument("--step", type=cli.at_least(int, 0), default=0, help="steps per epoch; 0 = one pass over the data")
    p.add_argument("--batch_size", type=cli.at_least(int, 1), default=100)
    p.add_argument("--learning_rate", type=cli.at_least(float, 1e-12), default=0.001)
    p.add_argument("--init", default="scaled", choices=cli.INITS,
                   help="initial weights: scaled = He normal, biases 0 (default); original = N(0, 0.01) (README)")
    p.add_argument("--pixels", default="unit", choices=cli.PIXELS,
                   help="network input: unit = per-channel mean/std scaled (default); raw = BGR 0..255, the original")
    p.add_argument("--mul_rank_size", type=cli.at_least(int, 1), default=1)
    p.add_argument("--mul_device_id", type=cli.at_least(int, 0), default=0)
    p.add_argument("--collective_timeout", type=cli.at_least(float, 1), default=300,
                   help="seconds a worker waits for the others before it stops (several workers off Ascend)")
    p.add_argument("--val_photos", type=cli.at_least(float, 0), default=1000,
                   help="held-out source photos: a count, or a fraction when below 1 (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the shuffle and the initial weights")
    p.add_argument("--skip_bad_photos", type=cli.boolean, default=False,
                   help="True: leave unreadable JPEGs out with a warning naming each; default: stop naming the first")
    p.add_argument("--cache_mb", type=cli.at_least(int, 0), default=2048,
                   help="keep decoded images in memory when they fit in this budget (0 = never)")
    p.add_argument("--log_every", type=cli.at_least(int, 1), default=20, help="steps between progress lines")
    p.add_argument("--precision_mode", default="allow_mix_precision", choices=zoo_precision.PRECISION_MODES)
    p.add_argument("--over_dump", type=cli.boolean, default=False)
    p.add_argument("--data_dump_flag", type=cli.boolean, default=False)
    p.add_argument("--data_dump_step", type=int, default=10)
    p.add_argument("--profiling", type=cli.boolean, default=False)
    p.add_argument("--launcher", default="main.py", help="the launcher that started this run (for result.json)")
    args, unknown = p.parse_known_args(argv)
    for flag in unknown:
        print(f"[Warning] main.py: unknown argument {flag} ignored", file=sys.stderr)
    if args.mul_device_id >= args.mul_rank_size:
        p.error(f"--mul_device_id {args.mul_device_id} must be below --mul_rank_size {args.mul_rank_size}")
    return args


def main(argv):
    start = time.time()
    args = parse(argv)
    import tensorflow as tf  # only now: -h and a malformed flag answer without loading TensorFlow

    import run_safety
    import training_run
    tf.get_logger().setLevel("ERROR")
    try:
        history = training_run.run(args, started=start)
    except training_run.MISTAKES as err:
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
