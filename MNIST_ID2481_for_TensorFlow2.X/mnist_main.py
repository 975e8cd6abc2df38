"""Trains and evaluates the Keras MNIST CNN of tensorflow/models `official` on a TFDS-prepared folder.

    python3 mnist_main.py --data_dir=/dataset --model_dir=/tmp/mnist --train_epochs=10 --download=False

Runs on Ascend (when npu_device imports), GPU or CPU. With TF_CONFIG set (test/train_performance_8p_static_eval.sh
writes it) this process is one worker of a MultiWorkerMirroredStrategy cluster. User mistakes end with one
'[Error] ...' line.
"""
import contextlib
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from absl import flags  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import common  # noqa: E402
import mnist_data  # noqa: E402
import multi_worker  # noqa: E402

FLAGS = flags.FLAGS
SHUFFLE_BUFFER = 50000


def define_mnist_flags():
    common.define_base_flags()
    flags.DEFINE_bool("download", True, "Download the data when missing (impossible without network).")
    flags.DEFINE_bool("eval_static", False, "drop_remainder=True: batches with a static shape.")
    flags.DEFINE_integer("profiler_port", 9012, "Profiler server port (accepted; unused off Ascend).")
    flags.DEFINE_enum("precision_mode", "allow_fp32_to_fp16", common.PRECISION_MODES, "Ascend precision mode.")
    flags.DEFINE_bool("over_dump", False, "Ascend: dump overflowing operators.")
    flags.DEFINE_string("over_dump_path", "/tmp/over_dump", "Ascend: overflow dump folder.")
    flags.DEFINE_bool("data_dump_flag", False, "Ascend: dump operator data.")
    flags.DEFINE_string("data_dump_step", "10", "Ascend: steps to dump, e.g. 10 or 0|5|10.")
    flags.DEFINE_string("data_dump_path", "/tmp/data_dump", "Ascend: data dump folder.")
    flags.DEFINE_bool("profiling", False, "Ascend: profile training.")
    flags.DEFINE_string("profiling_dump_path", "/tmp/profiling", "Ascend: profiling output folder.")
    flags.DEFINE_bool("use_mixlist", False, "Ascend: use --mixlist_file with allow_mix_precision.")
    flags.DEFINE_string("mixlist_file", "ops_info.json", "Ascend: mixed-precision operator list.")
    flags.DEFINE_bool("fusion_off_flag", False, "Ascend: switch fusions off with --fusion_off_file.")
    flags.DEFINE_string("fusion_off_file", "fusion_switch.cfg", "Ascend: fusion switch file.")
    flags.DEFINE_integer("mul_rank_size", 1, "Number of ranks; the train set is sharded across them "
                         "(--batch_size is then per rank).", lower_bound=1)
    flags.DEFINE_integer("mul_device_id", 0, "This process's rank.", lower_bound=0)
    flags.DEFINE_integer("collective_timeout", 120, "Multi-worker: seconds an all-reduce may wait for the "
                         "other workers before this worker gives up.", lower_bound=1)
    # Additions of this port (defaults keep the original recipe):
    flags.DEFINE_float("learning_rate", 0.05, "Initial SGD learning rate (decays x0.96 per 100,000 steps).",
                       lower_bound=0.0)
    flags.DEFINE_float("momentum", 0.0, "SGD momentum (the original uses none).", lower_bound=0.0)
    flags.DEFINE_integer("seed", None, "Random seed for weights and shuffling (default: random).", lower_bound=0)


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


def build_datasets(data, batch_size, eval_static, rank_size=1, rank_id=0, seed=None, shard_test=False):
    """The original pipeline: train = cache, repeat, shuffle, batch; eval = cache, repeat, batch. With several
    ranks each takes every rank_size-th train example (and test example with shard_test)."""
    train_files, num_train = data["train"]
    test_files, num_test = data["test"]
    train = mnist_data.load_split(train_files)
    test = mnist_data.load_split(test_files)
    if rank_size > 1:
        train, num_train = train.shard(rank_size, rank_id), num_train // rank_size
        if shard_test:
            test, num_test = test.shard(rank_size, rank_id), num_test // rank_size
    train = train.cache().repeat().shuffle(SHUFFLE_BUFFER, seed=seed)
    train = train.batch(batch_size, drop_remainder=eval_static).prefetch(tf.data.AUTOTUNE)
    test = test.cache().repeat()
    test = test.batch(batch_size, drop_remainder=eval_static).prefetch(tf.data.AUTOTUNE)
    train_steps, eval_steps = num_train // batch_size, num_test // batch_size
    if not train_steps or not eval_steps:
        raise common.UsageError(f"--batch_size={batch_size}: larger than the train ({num_train}) or test "
                                f"({num_test}) split")
    return train, test, train_steps, eval_steps


def locate_data(values):
    """Checks the data folder; with it missing, --download=True fails at once (no network access here)."""
    folder = os.path.join(values.data_dir, "mnist", mnist_data.VERSION)
    if values.download and not os.path.isfile(os.path.join(folder, "dataset_info.json")):
        raise common.UsageError(f"--download=True: {folder} is missing and cannot be downloaded here (no network"
                                "); prepare it with tensorflow_datasets elsewhere and pass --download=False")
    return mnist_data.describe(values.data_dir)


def choose_ranks(values, on_npu):
    """(cluster, rank, rank_size): cluster is True for a TF_CONFIG worker; on Ascend the ranks are the
    --mul_* flags (HCCL), as in the original launcher."""
    cluster = None if on_npu else multi_worker.cluster_from_env()
    if cluster is None:
        return False, values.mul_device_id, values.mul_rank_size
    rank, size = cluster
    if (values.mul_rank_size, values.mul_device_id) not in ((1, 0), (size, rank)):
        raise common.UsageError(f"--mul_rank_size={values.mul_rank_size} --mul_device_id={values.mul_device_id}"
                                f": TF_CONFIG makes this worker {rank} of {size}")
    if values.distribution_strategy not in (None, "multi_worker_mirrored"):
        raise common.UsageError(f"--distribution_strategy={values.distribution_strategy}: TF_CONFIG is set, "
                                "which needs multi_worker_mirrored")
    return True, rank, size


def run(values):
    data = locate_data(values)
    on_npu = common.configure_npu(values)
    cluster, rank, rank_size = choose_ranks(values, on_npu)
    num_gpus = values.num_gpus
    if num_gpus is None:
        num_gpus = 1 if tf.config.list_physical_devices("GPU") else 0
    policy, reason = common.keras_precision(values.precision_mode, on_npu, num_gpus)
    keras.mixed_precision.set_dtype_policy(policy)
    print(f"precision: {policy} ({reason})", flush=True)
    if values.seed is not None:
        keras.utils.set_random_seed(values.seed)
    chief = rank == 0  # only rank 0 writes checkpoints, summaries and the SavedModel
    if chief:
        if values.clean and os.path.isdir(values.model_dir):
            shutil.rmtree(values.model_dir)
        os.makedirs(values.model_dir, exist_ok=True)

    if cluster:
        strategy = multi_worker.create_strategy(values.collective_timeout)
        print(f"multi-worker: rank {rank} of {rank_size}, {strategy.num_replicas_in_sync} replicas, batch "
              f"{values.batch_size} per replica", flush=True)
    else:
        strategy = None if on_npu else common.get_distribution_strategy(values.distribution_strategy, num_gpus)
    train, test, train_steps, eval_steps = build_datasets(
        data, values.batch_size, values.eval_static, rank_size, rank, values.seed, shard_test=cluster)
    print(f"data: {data['train'][1]} train / {data['test'][1]} test examples; {train_steps} steps per epoch, "
          f"{eval_steps} eval steps; batch shape {train.element_spec[0].shape} "
          f"({'static' if values.eval_static else 'dynamic'})", flush=True)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = create_model()
        schedule = keras.optimizers.schedules.ExponentialDecay(values.learning_rate, 100000, 0.96)
        optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=values.momentum)
        if on_npu and rank_size > 1:
            optimizer = common.npu_distributed_optimizer(optimizer)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["sparse_categorical_accuracy"])
        optimizer.build(model.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        resume_from, initial_epoch = common.latest_checkpoint(values.model_dir)
        if resume_from:
            checkpoint.read(resume_from).assert_consumed()
            print(f"resuming from {resume_from} at epoch {initial_epoch}", flush=True)
    if on_npu and rank_size > 1:
        common.npu_broadcast(model.trainable_variables)
    if cluster:
        multi_worker.check_same_start(strategy, model, rank)

    # This process's images per step: a worker of a cluster feeds its local replicas one batch each.
    local_batch = values.batch_size * (strategy.num_replicas_in_sync // rank_size if cluster else 1)
    logger = common.StepLogger(local_batch, first_step=initial_epoch * train_steps)
    callbacks = [logger]
    if chief:
        callbacks = [common.EpochCheckpoint(checkpoint, values.model_dir), logger,
                     common.EpochSummaries(values.model_dir)]
    if cluster:
        loop = multi_worker.Loop(strategy, model, train, test, values.batch_size * strategy.num_replicas_in_sync)
        trained = loop.fit(callbacks, values.train_epochs, initial_epoch, train_steps, eval_steps,
                           values.epochs_between_evals)
    else:
        history = model.fit(train, epochs=values.train_epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=train_steps, validation_data=test, validation_steps=eval_steps,
                            validation_freq=values.epochs_between_evals, callbacks=callbacks, shuffle=False,
                            verbose=2)
        trained = {key: series[-1] for key, series in history.history.items()}
    print(f"Final Training Duration sec : {time.perf_counter() - logger.train_start:.3f}", flush=True)
    if cluster:
        eval_loss, eval_accuracy = loop.final_evaluation(eval_steps)
    else:
        eval_loss, eval_accuracy = model.evaluate(test, steps=eval_steps, verbose=2)
    stats = {"accuracy_top_1": float(eval_accuracy), "eval_loss": float(eval_loss)}
    for key, name in (("loss", "loss"), ("training_accuracy_top_1", "sparse_categorical_accuracy")):
        stats[key] = float(trained[name]) if name in trained else None
    print(f"Run stats: {stats}", flush=True)
    if chief:
        export_dir = os.path.join(values.model_dir, "saved_model")
        shutil.rmtree(export_dir, ignore_errors=True)
        model.export(export_dir, verbose=False)
        print(f"saved model: {export_dir}", flush=True)
    return stats


def print_help():
    print(__doc__.strip())
    for module in (common.__name__, __name__ if __name__ != "__main__" else sys.argv[0]):
        help_text = FLAGS.module_help(module)
        if help_text:
            print(help_text)


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
    except (common.UsageError, mnist_data.DataError) as err:
        sys.stderr.write(f"[Error] {err}\n")
        return 1
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as err:  # a collective failed
        rank = (multi_worker.cluster_from_env() or (FLAGS.mul_device_id,))[0]
        sys.stderr.write(f"[Error] rank {rank}: {multi_worker.lost_peer_message(err)}\n")
        return 1
    except tf.errors.OpError as err:  # e.g. a corrupt record met while reading the data
        message = " ".join(str(err.message).split("\n")[0].split())
        sys.stderr.write(f"[Error] {FLAGS.data_dir}: reading the data failed: {message}\n")
        return 1
    return 0


define_mnist_flags()

if __name__ == "__main__":
    sys.exit(main(sys.argv))
