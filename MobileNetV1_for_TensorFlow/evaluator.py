"""The evaluation graph of eval_image_classifier_mobilenet.py: one graph and session, restore() + run per
checkpoint, top-1 / top-5 / mean cross-entropy over a split (TensorBoard scalars of each checkpoint into the
eval folder)."""
import math
import time

import tensorflow as tf

import cli_util
import run_report
from cli_util import UserError
from dataloader import data_provider
from nets import nets_factory
from nets.slim_compat import slim


class Evaluator:
    def __init__(self, args, files):
        self.args = args
        batches = math.ceil(data_provider.estimated_count(files) / args.batch_size)
        self.total_batches = min(batches, args.max_num_batches or batches)
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
            self.writer = tf.compat.v1.summary.FileWriter(args.eval_dir)  # a graph-mode writer, in a graph

    def evaluate(self, prefix, step):
        """(top1, top5, mean loss, images) of the checkpoint prefix; also TensorBoard scalars at its step."""
        cli_util.check_checkpoint(prefix, self.restore_map, self.args.moving_average_decay)
        with self.graph.as_default():  # Saver.restore outside its graph would take the eager path
            self.saver.restore(self.session, prefix)
        self.session.run(self.iterator.initializer)
        totals = {k: 0.0 if k == "xent" else 0 for k in self.counts}
        progress = run_report.Progress(self.total_batches, unit="batch")
        started = time.perf_counter()
        batches = 0
        while self.args.max_num_batches is None or batches < self.args.max_num_batches:
            try:
                values = self.session.run(self.counts)
            except tf.errors.OutOfRangeError:
                break
            for key, value in values.items():
                totals[key] += float(value) if key == "xent" else int(value)
            batches += 1
            progress.update(batches, loss=totals["xent"] / totals["images"],
                            images_per_sec=totals["images"] / (time.perf_counter() - started))
        if totals["images"] == 0:
            raise UserError(f"--dataset_dir {self.args.dataset_dir}: the {self.args.dataset_split_name} split is empty")
        count = totals["images"]
        metrics = {"top1": totals["top1"] / count, "top5": totals["top5"] / count, "loss": totals["xent"] / count}
        self.writer.add_summary(tf.compat.v1.Summary(value=[
            tf.compat.v1.Summary.Value(tag=tag, simple_value=value) for tag, value in metrics.items()]), step)
        self.writer.flush()
        return metrics["top1"], metrics["top5"], metrics["loss"], count
