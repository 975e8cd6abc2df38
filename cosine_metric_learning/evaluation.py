"""Features of a checkpoint (Encoder), validation CMC over random galleries, the eval polling loop and the
official test protocol."""
import os
import time

import numpy as np
import tensorflow as tf

import checkpoints
import input_pipeline
import losses
import metrics
import reporting
import run_report
import run_safety
from datasets.util import UsageError
from nets.deep_sort import network_definition as net_def

RANKS = (1, 5, 10, 20)
GALLERY_SEED = 4321


class Encoder:
    """Inference network on file paths (tf.data decode) restored from a checkpoint."""

    def __init__(self, checkpoint, config, batch_size=128):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.paths = tf.compat.v1.placeholder(tf.string, [None])
            data = tf.data.Dataset.from_tensor_slices(self.paths).map(
                input_pipeline.decode, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)
            self.iterator = tf.compat.v1.data.make_initializable_iterator(data)
            self.features, _ = net_def.create_network(self.iterator.get_next(), False)
            self.sess = tf.compat.v1.Session(graph=self.graph, config=config)
            try:
                checkpoints.restore_trunk(self.sess, checkpoint)
            except Exception:
                self.sess.close()  # the caller gets no Encoder to close
                raise
        self.checkpoint = checkpoint

    def __call__(self, paths):
        self.sess.run(self.iterator.initializer, {self.paths: list(paths)})
        progress = run_report.Progress(len(paths), unit="image")
        begin, done = time.time(), 0
        progress.update(done)
        out = []
        while True:
            try:
                out.append(self.sess.run(self.features))
            except tf.errors.OutOfRangeError:
                break
            except tf.errors.InvalidArgumentError as err:
                raise input_pipeline.decode_failure(paths, err) from None
            done += len(out[-1])
            progress.update(done, images_per_sec=done / max(time.time() - begin, 1e-9))
        return np.concatenate(out) if out else np.zeros((0, net_def.FEATURE_DIM), np.float32)

    def step(self):
        reader = tf.train.load_checkpoint(self.checkpoint)
        return int(reader.get_tensor("global_step")) if reader.has_tensor("global_step") else 0

    def close(self):
        self.sess.close()


def encode(checkpoint, config, paths):
    """(features of paths, the checkpoint's global step)."""
    encoder = Encoder(checkpoint, config)
    try:
        return encoder(paths), encoder.step()
    finally:
        encoder.close()


def validation_cmc(features, split, distance, num_galleries):
    """CMC rank-k averaged over num_galleries random galleries (seeds GALLERY_SEED + i)."""
    scores = {k: [] for k in RANKS}
    for probes, gallery in metrics.random_galleries(split.labels, split.cameras, num_galleries, GALLERY_SEED):
        cmc = metrics.cmc_ranks(distance(features[probes], features[gallery]), split.labels[probes],
                                split.labels[gallery], RANKS)
        for k in RANKS:
            scores[k].append(cmc[k])
    return {k: float(np.mean(v)) for k, v in scores.items()}


def evaluate_checkpoint(checkpoint, config, split, loss_mode, num_galleries, writer):
    """Prints and writes Precision@k of one checkpoint; returns {k: score}."""
    features, step = encode(checkpoint, config, split.paths)
    cmc = validation_cmc(features, split, metrics.DISTANCES[losses.DISTANCES[loss_mode]], num_galleries)
    print(f"checkpoint {checkpoint} (global step {step}), {num_galleries} galleries of {split.num_ids} "
          f"identities:")
    for k, value in cmc.items():
        print(f"Precision@{k} : {value:.4f}", flush=True)
    writer.add_summary(reporting.scalar_summary({f"Precision@{k}": value for k, value in cmc.items()}), step)
    writer.flush()
    return cmc


def follow(run_dir, eval_dir, config, split, loss_mode, num_galleries, interval_secs, once, on_evaluated=None):
    """Evaluates each new checkpoint of run_dir, polling every interval_secs; once: the latest, then exit.
    on_evaluated(cmc) after each checkpoint (the launchers: its Precision@1 into result.json)."""
    with tf.Graph().as_default():
        writer = tf.compat.v1.summary.FileWriter(eval_dir)
    evaluated = None
    while True:
        # Listed, not read from the state file (a moved run folder); a checkpoint damaged by a kill is skipped.
        latest = run_safety.resume_point(run_dir) if os.path.isdir(run_dir) else None
        if latest is None and once:
            raise UsageError(f"--log_dir/--run_id: no checkpoint in {run_dir}")
        if latest is not None and latest != evaluated:
            cmc = evaluate_checkpoint(latest, config, split, loss_mode, num_galleries, writer)
            evaluated = latest
            if on_evaluated:
                on_evaluated(cmc)
            if once:
                writer.close()
                return cmc
        else:
            print(f"waiting {interval_secs:g} s for a new checkpoint in {run_dir}", flush=True)
        time.sleep(interval_secs)


def evaluate_test(adapter, dataset_dir, checkpoint, config, loss_mode):
    """The dataset's official single-query protocol; prints and returns rank-1/5/10, mAP, queries."""
    encoder = Encoder(checkpoint, config)
    distance_name = losses.DISTANCES[loss_mode]
    try:
        result = adapter.evaluate_test(dataset_dir, encoder, metrics.DISTANCES[distance_name])
    finally:
        encoder.close()
    print(f"{adapter.NAME} test protocol (single query, {result['queries']} queries, {distance_name} distance):")
    for key in ("rank1", "rank5", "rank10", "mAP"):
        print(f"{key} : {result[key]:.4f}")
    return result
