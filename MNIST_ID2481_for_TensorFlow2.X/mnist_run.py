"""The work of mnist_main.py once its flags are parsed: the data, the strategy, training, evaluation, the
SavedModel and the run's result.json. Loads TensorFlow (mnist_main.py itself does not, so that --help and a
bad flag answer at once)."""
import contextlib
import os
import shutil
import sys
import time

import keras
import tensorflow as tf

import checkpoints
import distribution
from errors import UsageError, op_error_cause
import mnist_data
import mnist_device
import mnist_model
import reporting
import run_report
import run_safety
import training

ACCURACY_NAME = "sparse_categorical_accuracy"


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
        model = mnist_model.create_model()
        optimizer = mnist_device.wrap_optimizer(training.create_optimizer(values.learning_rate, values.momentum),
                                                rank_size, precision)
        optimizer.build(model.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        first_step = checkpoints.restore(checkpoint, values.model_dir, values.momentum)
    return model, optimizer, checkpoint, first_step


def claim_model_dir(values):
    """--model_dir made writable and locked for this run (the chief's job), then emptied with --clean, or rid of
    what a save cut short by a kill left; returns the lock, to be released by a `with` block (the kernel frees it
    when the process dies)."""
    run_safety.writable_folder(values.model_dir, "--model_dir")
    lock = run_safety.FolderLock(values.model_dir).acquire()
    if values.clean:  # everything but the lock just taken
        for name in os.listdir(values.model_dir):
            if name != run_safety.LOCK_NAME:
                target = os.path.join(values.model_dir, name)
                shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
    lock.remove_unfinished_saves(values.model_dir)
    return lock


def run(values, datasets_override=None, started=None):
    """mnist_main.run: trains, evaluates and exports as the flags `values` say; returns the run stats.
    SIGTERM / SIGINT stop it after a checkpoint (run_safety.Stopped); a bad record raises DataError naming
    its file."""
    started = time.monotonic() if started is None else started
    files = None if datasets_override else locate_data(values)
    if values.result_dir:
        run_safety.writable_folder(values.result_dir, "--result_dir")
    try:
        return train_and_export(values, files, datasets_override, started)
    except tf.errors.OpError as err:
        if files and not isinstance(err, distribution.COLLECTIVE_ERRORS):
            mnist_data.raise_located(files)
        raise


def train_and_export(values, files, datasets_override, started):
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
        return train_locked(values, placement, precision, replica_batch, data, stop, started)


def train_locked(values, placement, precision, replica_batch, data, stop, started):
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
    if first_step >= values.train_epochs * train_steps:
        print(f"nothing left to train: step {first_step} ends --train_epochs={values.train_epochs}", flush=True)
    # Every rank times the same global steps: images/sec is the cluster's (per-rank batch x ranks).
    clock = run_report.StepClock(values.batch_size * placement.rank_size)
    logger = reporting.StepLogger(clock, values.batch_size, first_step=first_step)
    callbacks = [logger]
    if placement.chief:
        callbacks += [checkpoints.EpochCheckpoint(checkpoint, values.model_dir),
                      reporting.Summaries(values.model_dir, clock,
                                          lambda step: training.learning_rate(step, values.learning_rate),
                                          first_step=first_step)]
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
    folder = values.result_dir or (values.model_dir if placement.chief else None)
    if folder:
        write_record(folder, values, placement, precision, clock, eval_accuracy, logger.last_loss, started)
    return stats


def write_record(folder, values, placement, precision, clock, accuracy, final_loss, started):
    """result.json of this process (run_report.write_result): the zoo's timing rule, the final evaluation's
    accuracy, final_loss as the last step line printed it; null timing and loss when no step ran here."""
    run_report.write_result(
        folder, model=mnist_device.MODEL, launcher=values.launcher, device=precision.device, precision=precision.dtype,
        batch_size=clock.global_batch, rank_size=placement.rank_size, steps=len(clock.seconds),
        warmup_steps=clock.warmup_excluded, ms_per_step=clock.ms_per_step, images_per_sec=clock.images_per_sec,
        accuracy_name=ACCURACY_NAME, accuracy=accuracy, final_loss=final_loss,
        e2e_seconds=round(time.monotonic() - started, 3), precision_mode=values.precision_mode,
        rank=placement.rank)


def main(values, started):
    """mnist_main.main after its flags parsed: runs, and turns what a user can cause into one [Error] line and
    an exit status."""
    tf.get_logger().setLevel("ERROR")
    try:
        run(values, started=started)
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
        rank = (distribution.cluster_from_env() or (values.mul_device_id,))[0]
        sys.stderr.write(f"[Error] rank {rank}: {distribution.lost_peer_message(err)}\n")
        return 1
    except tf.errors.OpError as err:  # a failure that no record of --data_dir explains
        sys.stderr.write(f"[Error] training failed: {op_error_cause(err)}\n")
        return 1
    return 0
