"""Evaluates MobileNet v1 checkpoints on a slim ImageNet split: top-1 and top-5 over the whole split.

    python eval_image_classifier_mobilenet.py --checkpoint_path=results/0 --dataset_dir=/opt/npu/slimImagenet

--checkpoint_path is a checkpoint (model.ckpt-N) or a folder: then every checkpoint in it is evaluated,
oldest first. With --moving_average_decay the EMA shadow weights are evaluated instead of the raw ones.
Per checkpoint it prints `checkpoint: ... step: N images: M`, `acc: [<top1>]`, `top1: <a>`, `top5: <b>`,
`loss: <mean cross-entropy>`
and appends the same to <eval_dir>/eval_results.txt.
"""
import glob
import os
import re
import sys

import cli_util
import run_safety
import tensorflow as tf  # after cli_util, which sets TensorFlow's C++ log level
from cli_util import UserError
from dataloader import data_provider
from nets import nets_factory
from nets.slim_compat import slim
from preprocessing import preprocessing_factory


def build_parser():
    p = cli_util.Parser(prog="eval_image_classifier_mobilenet.py", description=__doc__.splitlines()[0])
    a = p.add_argument
    a("--batch_size", type=cli_util.positive_int, default=100)
    a("--max_num_batches", type=cli_util.positive_int, default=None, help="default: the whole split")
    a("--checkpoint_path", default="./results/0", help="checkpoint file or folder of checkpoints")
    a("--eval_dir", default="./eval", help="where eval_results.txt is written")
    a("--dataset_dir", default="/opt/npu/slimImagenet")
    a("--dataset_split_name", default="validation")
    a("--model_name", default="mobilenet_v1", choices=list(nets_factory.DEPTH_MULTIPLIERS))
    a("--preprocessing_name", default="inception_v2", choices=list(preprocessing_factory.NAMES))
    a("--moving_average_decay", type=cli_util.unit_interval, default=None,
      help="evaluate the exponential-moving-average weights (any value in (0, 1) selects them)")
    a("--eval_image_size", type=cli_util.positive_int, default=224)
    a("--num_classes", type=cli_util.positive_int, default=1001)
    a("--labels_offset", type=cli_util.non_negative_int, default=0)
    return p


def checkpoints(path):
    """Checkpoint prefixes for a file or a folder, ordered by step."""
    if os.path.isdir(path):
        found = [p[:-len(".index")] for p in glob.glob(os.path.join(path, "*.ckpt-*.index"))]
        if not found:
            raise UserError(f"--checkpoint_path {path}: no checkpoint (*.ckpt-N.index) in this folder")
        return sorted(found, key=step_of)
    if not os.path.isfile(path + ".index"):
        raise UserError(f"--checkpoint_path {path}: no such checkpoint ({path}.index missing)")
    return [path]


def step_of(prefix):
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


class Evaluator:
    """One inference graph; restore() + run() per checkpoint."""

    def __init__(self, args):
        self.args = args
        self.graph = tf.Graph()
        with self.graph.as_default():
            dataset = data_provider.build_dataset(
                args.dataset_dir, args.dataset_split_name, args.batch_size, False, args.eval_image_size,
                args.num_classes, args.preprocessing_name, args.labels_offset)
            self.iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
            images, labels = self.iterator.get_next()
            logits, _ = nets_factory.get_network_fn(args.model_name, args.num_classes, is_training=False)(images)
            # top_k breaks ties toward the lower class id (in_top_k would count a tie as a hit).
            top = tf.math.top_k(logits, k=min(5, args.num_classes)).indices
            hits = tf.cast(tf.equal(top, labels[:, tf.newaxis]), tf.int32)
            self.counts = {"images": tf.size(labels), "top1": tf.reduce_sum(hits[:, 0]),
                           "top5": tf.reduce_sum(hits),
                           "xent": tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                               labels=labels, logits=logits))}
            model_variables = slim.get_model_variables()
            if args.moving_average_decay:
                ema = tf.compat.v1.train.ExponentialMovingAverage(args.moving_average_decay)
                restore = ema.variables_to_restore(model_variables)
            else:
                restore = {v.op.name: v for v in model_variables}
            self.restore_map = restore
            self.saver = tf.compat.v1.train.Saver(restore)
            self.session = tf.compat.v1.Session(graph=self.graph)

    def evaluate(self, prefix):
        cli_util.check_checkpoint(prefix, self.restore_map, self.args.moving_average_decay)
        with self.graph.as_default():  # Saver.restore outside its graph would take the eager path
            self.saver.restore(self.session, prefix)
        self.session.run(self.iterator.initializer)
        totals = {k: 0.0 if k == "xent" else 0 for k in self.counts}
        batches = 0
        while self.args.max_num_batches is None or batches < self.args.max_num_batches:
            try:
                values = self.session.run(self.counts)
            except tf.errors.OutOfRangeError:
                break
            for key, value in values.items():
                totals[key] += float(value) if key == "xent" else int(value)
            batches += 1
        if totals["images"] == 0:
            raise UserError(f"--dataset_dir {self.args.dataset_dir}: the {self.args.dataset_split_name} split is empty")
        count = totals["images"]
        return totals["top1"] / count, totals["top5"] / count, totals["xent"] / count, count


def main(argv):
    args = cli_util.parse(build_parser(), argv)
    prefixes = checkpoints(args.checkpoint_path)
    files = data_provider.list_files(args.dataset_dir, args.dataset_split_name)
    data_provider.check_records(files)
    run_safety.writable_folder(args.eval_dir, "--eval_dir")
    evaluator = Evaluator(args)
    weights = "EMA" if args.moving_average_decay else "raw"
    for prefix in prefixes:
        try:
            top1, top5, loss, count = evaluator.evaluate(prefix)
        except tf.errors.OpError as err:
            raise data_provider.diagnose(err, files) or err from None
        lines = [f"checkpoint: {prefix}  step: {step_of(prefix)}  images: {count}  weights: {weights}",
                 f"acc: [{top1:.6f}]", f"top1: {top1:.6f}", f"top5: {top5:.6f}",
                 f"loss: {loss:.6f}"]
        print("\n".join(lines), flush=True)
        with open(os.path.join(args.eval_dir, "eval_results.txt"), "a") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(cli_util.main_wrapper(main, "eval_image_classifier_mobilenet.py"))
