"""Trains and evaluates the Keras MNIST CNN of tensorflow/models `official` on a TFDS-prepared folder.

    python3 mnist_main.py --data_dir=/dataset --model_dir=/tmp/mnist --train_epochs=10 --download=False

Runs on Ascend (when npu_device imports), GPU or CPU. User mistakes end with one '[Error] ...' line.
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
    flags.DEFINE_integer("mul_rank_size", 1, "Number of ranks; the train set is sharded across them.",
                         lower_bound=1)
    flags.DEFINE_integer("mul_device_id", 0, "This process's rank.", lower_bound=0)
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


def build_datasets(data, batch_size, eval_static, rank_size=1, rank_id=0, seed=None):
    """The original pipeline: train = cache, repeat, shuffle, batch; eval = cache, repeat, batch."""
    train_files, num_train = data["train"]
    test_files, num_test = data["test"]
    train = mnist_data.load_split(train_files)
    if rank_size > 1:
        train, num_train = train.shard(rank_size, rank_id), num_train // rank_size
    train = train.cache().repeat().shuffle(SHUFFLE_BUFFER, seed=seed)
    train = train.batch(batch_size, drop_remainder=eval_static).prefetch(tf.data.AUTOTUNE)
    test = mnist_data.load_split(test_files).cache().repeat()
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


def run(values):
    data = locate_data(values)
    on_npu = common.configure_npu(values)
    num_gpus = values.num_gpus
    if num_gpus is None:
        num_gpus = 1 if tf.config.list_physical_devices("GPU") else 0
    policy, reason = common.keras_precision(values.precision_mode, on_npu, num_gpus)
    keras.mixed_precision.set_dtype_policy(policy)
    print(f"precision: {policy} ({reason})", flush=True)
    if values.seed is not None:
        keras.utils.set_random_seed(values.seed)
    if values.clean and os.path.isdir(values.model_dir):
        shutil.rmtree(values.model_dir)
    os.makedirs(values.model_dir, exist_ok=True)

    strategy = None if on_npu else common.get_distribution_strategy(values.distribution_strategy, num_gpus)
    train, test, train_steps, eval_steps = build_datasets(
        data, values.batch_size, values.eval_static, values.mul_rank_size, values.mul_device_id, values.seed)
    print(f"data: {data['train'][1]} train / {data['test'][1]} test examples; {train_steps} steps per epoch, "
          f"{eval_steps} eval steps; batch shape {train.element_spec[0].shape} "
          f"({'static' if values.eval_static else 'dynamic'})", flush=True)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = create_model()
        schedule = keras.optimizers.schedules.ExponentialDecay(values.learning_rate, 100000, 0.96)
        optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=values.momentum)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["sparse_categorical_accuracy"])
        optimizer.build(model.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        resume_from, initial_epoch = common.latest_checkpoint(values.model_dir)
        if resume_from:
            checkpoint.read(resume_from).assert_consumed()
            print(f"resuming from {resume_from} at epoch {initial_epoch}", flush=True)

    logger = common.StepLogger(values.batch_size, first_step=initial_epoch * train_steps)
    callbacks = [common.EpochCheckpoint(checkpoint, values.model_dir), logger,
                 common.EpochSummaries(values.model_dir)]
    history = model.fit(train, epochs=values.train_epochs, initial_epoch=initial_epoch,
                        steps_per_epoch=train_steps, validation_data=test, validation_steps=eval_steps,
                        validation_freq=values.epochs_between_evals, callbacks=callbacks, shuffle=False, verbose=2)
    print(f"Final Training Duration sec : {time.perf_counter() - logger.train_start:.3f}", flush=True)
    eval_loss, eval_accuracy = model.evaluate(test, steps=eval_steps, verbose=2)
    trained = history.history
    stats = {"accuracy_top_1": float(eval_accuracy), "eval_loss": float(eval_loss),
             "loss": trained["loss"][-1] if trained.get("loss") else None,
             "training_accuracy_top_1": trained["sparse_categorical_accuracy"][-1] if trained.get("loss") else None}
    print(f"Run stats: {stats}", flush=True)
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
    except tf.errors.OpError as err:  # e.g. a corrupt record met while reading the data
        message = " ".join(str(err.message).split("\n")[0].split())
        sys.stderr.write(f"[Error] {FLAGS.data_dir}: reading the data failed: {message}\n")
        return 1
    return 0


define_mnist_flags()

if __name__ == "__main__":
    sys.exit(main(sys.argv))
