"""Trains and evaluates the Keras MNIST CNN of tensorflow/models `official` on a TFDS-prepared folder.

    python3 mnist_main.py --data_dir=/dataset --model_dir=/tmp/mnist --train_epochs=10 --download=False

Runs on Ascend (when npu_device imports; mnist_device.py), GPU or CPU. With TF_CONFIG set
(test/train_performance_8p_static_eval.sh writes it) this process is one worker of a MultiWorkerMirroredStrategy
cluster (distribution.py). User mistakes end with one '[Error] ...' line.
"""
import contextlib
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from absl import flags  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import checkpoints  # noqa: E402
import distribution  # noqa: E402
from errors import UsageError, op_error_cause  # noqa: E402
import mnist_data  # noqa: E402
import mnist_device  # noqa: E402
import mnist_flags  # noqa: E402
import reporting  # noqa: E402
import run_safety  # noqa: E402
import training  # noqa: E402

FLAGS = flags.FLAGS


def create_model():
    """The `mnist` Keras model of the original: 1,643,370 parameters."""
    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, 2, padding="same"),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, 2, padding="same"),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.4),
        layers.Dense(10, activation="softmax", dtype="float32"),  # float32 output under mixed precision
    ], name="mnist")


def locate_data(values):
    """{split: (files, examples)} of --data_dir; with the folder missing, --download=True fails at once (no
    network access here)."""
    folder = os.path.join(values.data_dir, "mnist", mnist_data.VERSION)
    if values.download and not os.path.isfile(os.path.join(folder, "dataset_info.json")):
        raise UsageError(f"--download=True: {folder} is missing and cannot be downloaded here (no network); "
                         "prepare it with tensorflow_datasets elsewhere and pass --download=False")
    return mnist_data.describe(values.data_dir)


def counted(datasets_override):
    """{split: (dataset, examples)} for run()'s (train, test) datasets of known, finite length."""
    splits = {}
    for split, dataset in zip(("train", "test"), datasets_override):
        count = int(dataset.cardinality())
        if count < 0:
            raise ValueError(f"datasets_override: the {split} dataset's length is unknown or infinite")
        splits[split] = (dataset, count)
    return splits


def build(strategy, values, rank_size, precision):
    """Model, optimizer and their checkpoint under the strategy, restored from the newest loadable checkpoint
    of --model_dir if any; returns them with the global step the run starts at."""
    with strategy.scope():
        model = create_model()
        optimizer = mnist_device.wrap_optimizer(training.create_optimizer(values.learning_rate, values.momentum),
                                                rank_size, precision)
        optimizer.build(model.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        first_step = checkpoints.restore(checkpoint, values.model_dir, values.momentum)
    return model, optimizer, checkpoint, first_step


def claim_model_dir(values):
    """--model_dir made writable and locked for this run (the chief's job), then emptied with --clean; returns
    the lock, to be released by a `with` block (the kernel frees it when the process dies)."""
    run_safety.writable_folder(values.model_dir, "--model_dir")
    lock = run_safety.FolderLock(values.model_dir).acquire()
    if values.clean:  # everything but the lock just taken
        for name in os.listdir(values.model_dir):
            if name != run_safety.LOCK_NAME:
                target = os.path.join(values.model_dir, name)
                shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
    return lock


def run(values, datasets_override=None):
    """Trains, evaluates and exports as the flags `values` say; returns the run stats. datasets_override:
    (train, test) unbatched datasets of (float32 [28, 28, 1] image in [0, 1], int label) used instead of
    --data_dir, as tensorflow/models `official` mnist_main.run allows. SIGTERM / SIGINT stop it after a
    checkpoint (run_safety.Stopped); a bad record raises DataError naming its file."""
    files = None if datasets_override else locate_data(values)
    try:
        return train_and_export(values, files, datasets_override)
    except tf.errors.OpError as err:
        if files and not isinstance(err, distribution.COLLECTIVE_ERRORS):
            mnist_data.raise_located(files)
        raise


def train_and_export(values, files, datasets_override):
    num_gpus = mnist_device.gpu_count(values.num_gpus)
    precision = mnist_device.set_up(values, num_gpus)
    # Before any TensorFlow op: a cluster strategy configures the runtime's collectives at start-up.
    placement = distribution.place(values.distribution_strategy, num_gpus, values.mul_rank_size,
                                   values.mul_device_id, values.collective_timeout, mnist_device.is_ascend())
    splits = counted(datasets_override) if datasets_override else {
        split: (mnist_data.load_split(paths), count) for split, (paths, count) in files.items()}
    if values.seed is not None:
        keras.utils.set_random_seed(values.seed)
    print(placement.describe(values.batch_size), flush=True)
    replica_batch = placement.replica_batch(values.batch_size)
    data = mnist_data.pipelines(splits, replica_batch, values.batch_size, values.eval_static, placement.rank_size,
                                placement.rank, values.seed, shard_test=placement.workers > 1)
    print(f"data: {splits['train'][1]} train / {splits['test'][1]} test examples; {data[2]} steps per epoch, "
          f"{data[3]} eval steps; batch shape {data[0].element_spec[0].shape} "
          f"({'static' if values.eval_static else 'dynamic'})", flush=True)
    # Only now: a cluster strategy's runtime installs its own SIGTERM handler (TensorFlow's preemption
    # notifier), which would swallow the signal. One arriving during set-up stops the run at its first step.
    # Rank 0 alone writes to --model_dir, and holds its lock until the run ends.
    with run_safety.StopSignals() as stop, claim_model_dir(values) if placement.chief else contextlib.nullcontext():
        return train_locked(values, placement, precision, replica_batch, data, stop)


def train_locked(values, placement, precision, replica_batch, data, stop):
    train, test, train_steps, eval_steps = data
    strategy = placement.strategy
    model, optimizer, checkpoint, first_step = build(strategy, values, placement.rank_size, precision)
    mnist_device.broadcast(model.trainable_variables, placement.rank_size)
    distribution.check_same_start(placement, model)

    def save(step):
        """Only the chief writes; every worker names the checkpoint the chief wrote."""
        if not placement.chief:
            return checkpoints.path(values.model_dir, step)
        return checkpoints.save(checkpoint, values.model_dir, step)

    if first_step == 0:  # a kill at any later moment leaves a checkpoint to resume from
        save(0)
    callbacks = [reporting.StepLogger(values.batch_size, first_step=first_step)]
    if placement.chief:
        callbacks += [checkpoints.EpochCheckpoint(checkpoint, values.model_dir),
                      reporting.EpochSummaries(values.model_dir)]
    loop = training.TrainingLoop(strategy, model, optimizer, train, test,
                                 global_batch=replica_batch * strategy.num_replicas_in_sync)
    trained = loop.fit(callbacks, values.train_epochs, first_step, train_steps, eval_steps,
                       values.epochs_between_evals, stop=stop, save=save)
    eval_loss, eval_accuracy = reporting.timed_evaluation(loop.evaluate, eval_steps)
    print(f"weights sha256 final: {distribution.weights_digest(model)}", flush=True)
    stats = {"accuracy_top_1": eval_accuracy, "eval_loss": eval_loss, "loss": trained.get("loss"),
             "training_accuracy_top_1": trained.get("sparse_categorical_accuracy")}
    print(f"Run stats: {stats}", flush=True)
    if placement.chief:
        checkpoints.export_saved_model(model, values.model_dir)
    return stats


def print_help():
    print(__doc__.strip())
    print(FLAGS.module_help(mnist_flags.__name__))


def main(argv):
    script = os.path.basename(argv[0])
    if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv[1:]):
        print_help()
        return 0
    try:
        rest = FLAGS(argv)
    except flags.Error as err:
        sys.stderr.write(f"[Error] {script}: {err}\n")
        return 2
    if len(rest) > 1:
        sys.stderr.write(f"[Error] {script}: unexpected argument {rest[1]!r} (flags are --name=value)\n")
        return 2
    tf.get_logger().setLevel("ERROR")
    try:
        run(FLAGS)
    except (UsageError, mnist_data.DataError, run_safety.RunSafetyError) as err:
        sys.stderr.write(f"[Error] {err}\n")
        return 1
    except run_safety.Stopped as stopped:
        sys.stderr.write(f"[Error] {stopped}\n")
        return stopped.status
    except KeyboardInterrupt:  # Ctrl-C before the training loop took over SIGINT: nothing to save yet
        sys.stderr.write("[Error] stopped by SIGINT before training started\n")
        return 130
    except distribution.COLLECTIVE_ERRORS as err:
        rank = (distribution.cluster_from_env() or (FLAGS.mul_device_id,))[0]
        sys.stderr.write(f"[Error] rank {rank}: {distribution.lost_peer_message(err)}\n")
        return 1
    except tf.errors.OpError as err:  # a failure that no record of --data_dir explains
        sys.stderr.write(f"[Error] training failed: {op_error_cause(err)}\n")
        return 1
    return 0


mnist_flags.define_mnist_flags()

if __name__ == "__main__":
    sys.exit(main(sys.argv))
