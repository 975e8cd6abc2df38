"""Shared command line and the train / eval / export / finalize / freeze / evaluate_test modes.

train_market1501.py and train_mars.py pass a dataset adapter (see those files) to main().
"""
import argparse
import os
import random
import string
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns oneDNN kernels on by default only on x86 CPUs with AVX512_VNNI/BF16 or AMX; this network
# trains 1.4x faster with them (README), so they are on elsewhere too (AVX2). TF_ENABLE_ONEDNN_OPTS=0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import device_config  # noqa: E402
import losses  # noqa: E402
import metrics  # noqa: E402
from datasets.util import UsageError, create_validation_split  # noqa: E402
from nets.deep_sort import network_definition as net_def  # noqa: E402

MODES = ("train", "eval", "export", "finalize", "freeze", "evaluate_test")
LOSS_MODES = ("cosine-softmax", "magnet", "triplet")
IMAGES_PER_ID = 4
HEIGHT, WIDTH, _ = net_def.IMAGE_SHAPE


class ArgumentParser(argparse.ArgumentParser):
    """Flag mistakes as one '[Error] <script>: <message>' line and exit status 2 (no usage dump)."""

    def error(self, message):
        sys.stderr.write(f"[Error] {self.prog}: {message}\n")
        sys.exit(2)


def _greater_than_zero(convert, label, allow_none=False):
    """argparse type: `convert(text)` that must be > 0 (or the word None when allow_none)."""

    def parse(text):
        if allow_none and text.strip().lower() == "none":
            return None
        number = convert(text)
        if not number > 0:
            raise argparse.ArgumentTypeError(f"must be a {label}, got {text!r}")
        return number

    parse.__name__ = label + (" or None" if allow_none else "")
    return parse


_positive_int = _greater_than_zero(int, "positive integer")
_positive_float = _greater_than_zero(float, "positive number")
_steps = _greater_than_zero(int, "positive integer", allow_none=True)


def _bool(text):
    """argparse type for the launchers' True/False switches."""
    lowered = text.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")
    return lowered in ("true", "1")


_bool.__name__ = "True/False"


def build_parser(adapter):
    name = adapter.NAME
    parser = ArgumentParser(prog=f"train_{name}.py", description=f"Metric learning on {name}.")
    parser.add_argument("--mode", default="train", choices=MODES)
    parser.add_argument("--batch_size", type=_positive_int, default=128,
                        help="images per step: batch_size/4 identities x 4 images; divisible by 4")
    parser.add_argument("--learning_rate", type=_positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--number_of_steps", type=_steps, default=None, help="train steps (None: forever)")
    parser.add_argument("--log_dir", default=f"/tmp/{name}_logdir")
    parser.add_argument("--eval_log_dir", default=f"/tmp/{name}_evaldir")
    parser.add_argument("--loss_mode", default="cosine-softmax", choices=LOSS_MODES)
    parser.add_argument("--restore_path", default=None,
                        help="checkpoint (or folder of checkpoints) to start from / to export, finalize, freeze")
    parser.add_argument("--run_id", default=None, help="sub-folder of log_dir (train: random 6 chars if unset)")
    parser.add_argument("--keep_checkpoint_max", type=_positive_int, default=5)
    parser.add_argument("--save_interval_secs", type=_positive_float, default=600,
                        help="checkpoint every this many seconds (and at the end)")
    parser.add_argument("--log_every", type=_positive_int, default=10, help="console/summary every N steps")
    parser.add_argument("--eval_interval_secs", type=_positive_float, default=60,
                        help="eval mode: how often to look for a new checkpoint")
    parser.add_argument("--eval_once", action="store_true", help="eval mode: evaluate the latest checkpoint, exit")
    parser.add_argument("--seed", type=int, default=None, help="fixes the batch sampling, flips and initial weights")
    parser.add_argument("--precision_mode", default=device_config.DEFAULT_PRECISION,
                        choices=device_config.PRECISION_MODES,
                        help="Ascend precision mode; off Ascend see device_config.py (training only)")
    parser.add_argument("--over_dump", type=_bool, default=False, help="Ascend: dump overflowing operators")
    parser.add_argument("--data_dump_flag", type=_bool, default=False, help="Ascend: dump operator data")
    parser.add_argument("--data_dump_step", type=int, default=10, help="Ascend: step whose data is dumped")
    parser.add_argument("--profiling", type=_bool, default=False, help="Ascend: profile the run")
    parser.add_argument("--autotune", type=_bool, default=False, help="Ascend: RL,GA operator auto-tuning")
    adapter.add_flags(parser)
    return parser


# ----------------------------------------------------------------------------------------------- input

def decode(path, size=(HEIGHT, WIDTH)):
    """JPEG file -> float32 RGB in [0, 1], resized to 128x64 when the source is larger (MARS)."""
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    image = tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), size)  # identity at 128x64
    return tf.ensure_shape(image, [size[0], size[1], 3])


def identity_batches(paths, labels, batch_size, rng):
    """Endless (path, label) stream: per step batch_size/4 identities without replacement, 4 images each
    (drawn with replacement only when an identity has fewer than 4)."""
    by_id = {}
    for i, label in enumerate(labels):
        by_id.setdefault(int(label), []).append(i)
    ids = np.array(sorted(by_id))
    per_step = batch_size // IMAGES_PER_ID
    while True:
        for label in rng.choice(ids, per_step, replace=False):
            idx = by_id[int(label)]
            for i in rng.choice(idx, IMAGES_PER_ID, replace=len(idx) < IMAGES_PER_ID):
                yield paths[i], label


def training_dataset(paths, labels, batch_size, seed):
    rng = np.random.RandomState(seed)
    flip_seed = rng.randint(2 ** 31)
    data = tf.data.Dataset.from_generator(
        lambda: identity_batches(paths, labels, batch_size, rng),
        output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64))).enumerate()

    def load(index, pair):
        # A stateful random flip inside a parallel map hands out its numbers in thread order; seeding each
        # flip with the sample's position makes --seed runs repeatable.
        path, label = pair
        flip = tf.image.stateless_random_flip_left_right(decode(path), tf.stack([flip_seed, index]))
        return flip, label

    return data.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)


# ----------------------------------------------------------------------------------------------- helpers

def run_dir(args):
    return os.path.join(args.log_dir, args.run_id)


def inference_config(args):
    """Session config of eval / export / evaluate_test (Ascend dumps and profiles go under log_dir)."""
    dump_dir = os.path.join(args.log_dir, args.run_id or args.mode)
    config, where = device_config.session_config(args, False, dump_dir)
    print(f"device: {where}", flush=True)
    return config


def variables_config():
    """finalize and freeze only read variables: any device, no rewrites."""
    config = tf.compat.v1.ConfigProto()
    config.gpu_options.allow_growth = True
    return config


def resolve_checkpoint(path):
    """--restore_path may name a checkpoint prefix or a folder holding checkpoints."""
    if path is None:
        raise UsageError("--restore_path: required in this mode")
    if os.path.isdir(path):
        found = tf.train.latest_checkpoint(path)
        if found is None:
            raise UsageError(f"--restore_path: no checkpoint in folder {path}")
        return found
    if not tf.io.gfile.exists(path + ".index"):
        raise UsageError(f"--restore_path: {path} is not a checkpoint (no {path}.index)")
    return path


def trunk_variables():
    """Variables of the descriptor network (no classifier, no optimizer slots, no step)."""
    return [v for v in tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES)
            if not v.op.name.startswith("ball/")]


def distance_name(args):
    return "cosine" if args.loss_mode == "cosine-softmax" else "sqeuclidean"


def split_training_data(adapter, args):
    paths, labels, cams = adapter.read_train(args)
    train_mask, val_mask = create_validation_split(labels)
    return paths, labels, cams, train_mask, val_mask


# ----------------------------------------------------------------------------------------------- train

def train(adapter, args):
    if args.batch_size % IMAGES_PER_ID:
        raise UsageError(f"--batch_size: {args.batch_size} is not divisible by {IMAGES_PER_ID}")
    if args.run_id is None:
        args.run_id = "".join(random.SystemRandom().choice(string.ascii_lowercase + string.digits)
                              for _ in range(6))
    paths, labels, _, train_mask, _ = split_training_data(adapter, args)
    train_paths = [p for p, k in zip(paths, train_mask) if k]
    train_labels = labels[train_mask]
    num_ids = len(np.unique(train_labels))
    needed = max(32, args.batch_size // IMAGES_PER_ID)
    if num_ids < needed:
        raise UsageError(f"--dataset_dir={args.dataset_dir}: {num_ids} training identities after the validation "
                         f"split; need at least {needed} (batch_size/4 per step, 32 minimum)")
    num_classes = int(labels.max()) + 1
    directory = run_dir(args)
    os.makedirs(directory, exist_ok=True)
    config, where = device_config.session_config(args, True, directory)
    print(f"device: {where}")
    print(f"run_id: {args.run_id}; checkpoints and summaries in {directory}")
    print(f"{len(train_paths)} training images of {num_ids} identities ({num_classes} classes), "
          f"batch {args.batch_size}, loss {args.loss_mode}", flush=True)

    tf.compat.v1.disable_eager_execution()
    if args.seed is not None:
        tf.compat.v1.set_random_seed(args.seed)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    images, batch_labels = tf.compat.v1.data.make_one_shot_iterator(
        training_dataset(train_paths, train_labels, args.batch_size, args.seed)).get_next()
    features, logits = net_def.create_network(images, True, num_classes=num_classes, global_step=global_step)
    all_losses = {"cosine-softmax": losses.cosine_softmax_loss(logits, batch_labels),
                  "magnet": losses.magnet_loss(features, batch_labels),
                  "triplet": losses.triplet_loss(features, batch_labels)}
    for key, value in all_losses.items():
        tf.compat.v1.summary.scalar(f"losses/{key}", value)
    regularization = tf.add_n(tf.compat.v1.losses.get_regularization_losses())
    total = tf.add(all_losses[args.loss_mode], regularization, name="total_loss")
    tf.compat.v1.summary.scalar("losses/total", total)
    optimizer = device_config.wrap_optimizer(tf.compat.v1.train.AdamOptimizer(args.learning_rate), config,
                                             args.precision_mode)
    with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
        train_op = optimizer.minimize(total, global_step=global_step)
    summaries = tf.compat.v1.summary.merge_all()
    saver = tf.compat.v1.train.Saver(max_to_keep=args.keep_checkpoint_max)

    with tf.compat.v1.Session(config=config) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        latest = tf.train.latest_checkpoint(directory)
        if latest:
            saver.restore(sess, latest)
            print(f"resuming from {latest}")
        elif args.restore_path:
            source = resolve_checkpoint(args.restore_path)
            tf.compat.v1.train.Saver(trunk_variables()).restore(sess, source)
            print(f"initialised the network from {source}")
        writer = tf.compat.v1.summary.FileWriter(directory, sess.graph)
        step = sess.run(global_step)
        if args.number_of_steps is not None and step >= args.number_of_steps:
            print(f"global step {step} of {args.number_of_steps}: nothing left to train")
            print("Final Performance images/sec : NA")
            return 0
        fetch = {"train": train_op, "total": total, **all_losses}
        warmup = 2 if args.number_of_steps is None else min(5, max(1, (args.number_of_steps - step) // 5))
        timed_images, timed_seconds, done = 0, 0.0, 0
        last_save = time.time()
        window_start, window_images = time.time(), 0
        while args.number_of_steps is None or step < args.number_of_steps:
            begin = time.time()
            want_summary = (step + 1) % args.log_every == 0
            out = sess.run({**fetch, "summary": summaries} if want_summary else fetch)
            seconds = time.time() - begin
            step, done = step + 1, done + 1
            if done > warmup:
                timed_images += args.batch_size
                timed_seconds += seconds
            window_images += args.batch_size
            if not np.isfinite(out["total"]):
                raise UsageError(f"loss became {out['total']} at step {step}; lower --learning_rate")
            others = ", ".join(f"{k} {out[k]:.4f}" for k in LOSS_MODES)
            speed = args.batch_size / seconds
            print(f"step {step}, loss {out['total']:.4f} ({others}), {speed:.1f} images/sec", flush=True)
            if want_summary:
                writer.add_summary(out["summary"], step)
                elapsed = time.time() - window_start
                print(f"progress: step {step}, {window_images / elapsed:.1f} images/sec over the last "
                      f"{window_images // args.batch_size} steps", flush=True)
                window_start, window_images = time.time(), 0
            if time.time() - last_save > args.save_interval_secs:
                saver.save(sess, os.path.join(directory, "model.ckpt"), global_step=step)
                last_save = time.time()
        saver.save(sess, os.path.join(directory, "model.ckpt"), global_step=step)
        writer.close()
    if timed_seconds > 0:
        print(f"Final Performance images/sec : {timed_images / timed_seconds:.2f}")
        print(f"Final Performance ms/step : {1000 * timed_seconds / (timed_images / args.batch_size):.2f}")
    else:
        print("Final Performance images/sec : NA")
    print(f"trained to step {step}; checkpoint in {directory}")
    return 0


# ----------------------------------------------------------------------------------------------- inference

class Encoder:
    """Inference network on file paths (tf.data decode) restored from a checkpoint."""

    def __init__(self, checkpoint, config, batch_size=128):
        self.graph = tf.Graph()
        self.batch_size = batch_size
        with self.graph.as_default():
            self.paths = tf.compat.v1.placeholder(tf.string, [None])
            data = tf.data.Dataset.from_tensor_slices(self.paths).map(
                decode, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)
            self.iterator = tf.compat.v1.data.make_initializable_iterator(data)
            self.features, _ = net_def.create_network(self.iterator.get_next(), False)
            saver = tf.compat.v1.train.Saver(trunk_variables())
            self.sess = tf.compat.v1.Session(graph=self.graph, config=config)
            saver.restore(self.sess, checkpoint)
        self.checkpoint = checkpoint

    def __call__(self, paths):
        self.sess.run(self.iterator.initializer, {self.paths: list(paths)})
        out = []
        while True:
            try:
                out.append(self.sess.run(self.features))
            except tf.errors.OutOfRangeError:
                break
        return np.concatenate(out) if out else np.zeros((0, net_def.FEATURE_DIM), np.float32)

    def step(self):
        reader = tf.train.load_checkpoint(self.checkpoint)
        return int(reader.get_tensor("global_step")) if reader.has_tensor("global_step") else 0

    def close(self):
        self.sess.close()


# ----------------------------------------------------------------------------------------------- eval

def evaluate_checkpoint(adapter, args, config, checkpoint, val_paths, val_labels, val_cams, writer):
    encoder = Encoder(checkpoint, config)
    try:
        features = encoder(val_paths)
        step = encoder.step()
    finally:
        encoder.close()
    distance = metrics.DISTANCES[distance_name(args)]
    ks = (1, 5, 10, 20)
    scores = {k: [] for k in ks}
    for probes, gallery in metrics.random_galleries(val_labels, val_cams, adapter.NUM_GALLERIES, 4321):
        cmc = metrics.cmc_ranks(distance(features[probes], features[gallery]), val_labels[probes],
                                val_labels[gallery], ks)
        for k in ks:
            scores[k].append(cmc[k])
    summary = tf.compat.v1.Summary()
    print(f"checkpoint {checkpoint} (global step {step}), {adapter.NUM_GALLERIES} galleries of "
          f"{len(np.unique(val_labels))} identities:")
    for k in ks:
        value = float(np.mean(scores[k]))
        summary.value.add(tag=f"Precision@{k}", simple_value=value)
        print(f"Precision@{k} : {value:.4f}", flush=True)
    writer.add_summary(summary, step)
    writer.flush()


def evaluate(adapter, args):
    if args.run_id is None:
        raise UsageError("--run_id: required in eval mode (the training run to follow)")
    paths, labels, cams, _, val_mask = split_training_data(adapter, args)
    val_paths = [p for p, k in zip(paths, val_mask) if k]
    val_labels, val_cams = labels[val_mask], cams[val_mask]
    if len(np.unique(val_labels)) < 2:
        raise UsageError(f"--dataset_dir={args.dataset_dir}: fewer than 2 validation identities")
    tf.compat.v1.disable_eager_execution()
    directory = run_dir(args)
    writer = tf.compat.v1.summary.FileWriter(os.path.join(args.eval_log_dir, args.run_id))
    config = inference_config(args)
    evaluated = None
    while True:
        latest = tf.train.latest_checkpoint(directory) if os.path.isdir(directory) else None
        if latest is None and args.eval_once:
            raise UsageError(f"--log_dir/--run_id: no checkpoint in {directory}")
        if latest is not None and latest != evaluated:
            evaluate_checkpoint(adapter, args, config, latest, val_paths, val_labels, val_cams, writer)
            evaluated = latest
            if args.eval_once:
                return 0
        else:
            print(f"waiting {args.eval_interval_secs:g} s for a new checkpoint in {directory}", flush=True)
        time.sleep(args.eval_interval_secs)


# ----------------------------------------------------------------------------------------------- export etc.

def finalize(adapter, args):
    checkpoint = resolve_checkpoint(args.restore_path)
    tf.compat.v1.disable_eager_execution()
    target = os.path.abspath(f"{adapter.NAME}.ckpt")
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, *net_def.IMAGE_SHAPE])
        net_def.create_network(images, False)
        saver = tf.compat.v1.train.Saver(trunk_variables())
        with tf.compat.v1.Session(config=variables_config()) as sess:
            saver.restore(sess, checkpoint)
            saver.save(sess, target, write_meta_graph=False)
    print(f"wrote {target} (network variables of {checkpoint})")
    return 0


def freeze(adapter, args):
    checkpoint = resolve_checkpoint(args.restore_path)
    tf.compat.v1.disable_eager_execution()
    target = os.path.abspath(f"{adapter.NAME}.pb")
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, *net_def.IMAGE_SHAPE], name="images")
        features, _ = net_def.create_network(net_def.preprocess_bgr_uint8(images), False)
        tf.identity(features, name="features")
        saver = tf.compat.v1.train.Saver(trunk_variables())
        with tf.compat.v1.Session(config=variables_config()) as sess:
            saver.restore(sess, checkpoint)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, sess.graph.as_graph_def(), ["features"])
    frozen = tf.compat.v1.graph_util.extract_sub_graph(frozen, ["features"])
    with open(target, "wb") as handle:
        handle.write(frozen.SerializeToString())
    print(f"wrote {target}: input images uint8 [None, 128, 64, 3] BGR, output features float32 [None, 128]")
    return 0


def export(adapter, args):
    encoder = Encoder(resolve_checkpoint(args.restore_path), inference_config(args))
    try:
        adapter.export(args, encoder)
    finally:
        encoder.close()
    return 0


def evaluate_test(adapter, args):
    encoder = Encoder(resolve_checkpoint(args.restore_path), inference_config(args))
    try:
        result = adapter.evaluate_test(args, encoder, metrics.DISTANCES[distance_name(args)])
    finally:
        encoder.close()
    print(f"{adapter.NAME} test protocol (single query, {result['queries']} queries, "
          f"{distance_name(args)} distance):")
    for key in ("rank1", "rank5", "rank10", "mAP"):
        print(f"{key} : {result[key]:.4f}")
    return 0


def save_features(path, features):
    import scipy.io
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scipy.io.savemat(path, {"features": np.asarray(features, np.float32)})
    print(f"wrote {path}: features {features.shape[0]}x{features.shape[1]}")


MODE_FUNCTIONS = {"train": train, "eval": evaluate, "export": export, "finalize": finalize, "freeze": freeze,
                  "evaluate_test": evaluate_test}


def main(adapter, argv=None):
    args = build_parser(adapter).parse_args(sys.argv[1:] if argv is None else argv)
    tf.get_logger().setLevel("ERROR")
    try:
        if not os.path.isdir(args.dataset_dir) and args.mode not in ("finalize", "freeze"):
            raise UsageError(f"--dataset_dir: {args.dataset_dir} is not a folder")
        return MODE_FUNCTIONS[args.mode](adapter, args)
    except UsageError as err:
        sys.stderr.write(f"[Error] {err}\n")
        return 1
