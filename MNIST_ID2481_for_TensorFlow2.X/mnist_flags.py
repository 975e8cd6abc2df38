"""The flags of mnist_main.py: the base flags of tensorflow/models `official`, the Ascend port's flags and the
additions of this port. No TensorFlow here: mnist_main parses the flags before it loads TensorFlow, so --help
and a bad flag answer at once. The strategy names are distribution.FACTORIES' (a unit test holds them equal;
distribution.py imports TensorFlow)."""
from absl import flags

import zoo_precision

STRATEGIES = ("off", "one_device", "mirrored", "multi_worker_mirrored", "parameter_server")


def define_base_flags():
    """The base flags of tensorflow/models `official` that mnist_main uses."""
    flags.DEFINE_string("data_dir", "/tmp", "Folder holding the TFDS-prepared mnist/3.0.1.", short_name="dd")
    flags.DEFINE_string("model_dir", "/tmp/mnist_model", "Checkpoints, TensorBoard logs, SavedModel.",
                        short_name="md")
    flags.DEFINE_bool("clean", False, "Remove --model_dir before training (no resume).")
    flags.DEFINE_integer("train_epochs", 1, "Number of training epochs.", lower_bound=1, short_name="te")
    flags.DEFINE_integer("epochs_between_evals", 1, "Validate every N epochs.", lower_bound=1, short_name="ebe")
    flags.DEFINE_integer("batch_size", 1024, "Global batch size (per rank with several ranks).", lower_bound=1,
                         short_name="bs")
    flags.DEFINE_integer("num_gpus", None, "GPUs to use (default: 1 if one is visible, else 0).", lower_bound=0,
                         short_name="ng")
    flags.DEFINE_enum("distribution_strategy", None, STRATEGIES,
                      "Default: mirrored with several GPUs, one_device with one, off without GPUs.", short_name="ds")
    flags.DEFINE_string("tpu", None, "Accepted for compatibility; unused.")


def define_ascend_flags():
    """The options the Ascend port added; off Ascend they are accepted and have no effect."""
    flags.DEFINE_integer("profiler_port", 9012, "Profiler server port (accepted; unused off Ascend).")
    flags.DEFINE_enum("precision_mode", "allow_fp32_to_fp16", zoo_precision.PRECISION_MODES,
                      "Ascend precision mode; elsewhere mapped by the zoo's precision table (see README).")
    # The original's default for all three dump folders; its launchers pass <model>/output/<kind> instead.
    flags.DEFINE_bool("over_dump", False, "Ascend: dump overflowing operators.")
    flags.DEFINE_string("over_dump_path", "/home/data", "Ascend: overflow dump folder.")
    flags.DEFINE_bool("data_dump_flag", False, "Ascend: dump operator data.")
    flags.DEFINE_string("data_dump_step", "10", "Ascend: steps to dump, e.g. 10 or 0|5|10.")
    flags.DEFINE_string("data_dump_path", "/home/data", "Ascend: data dump folder.")
    flags.DEFINE_bool("profiling", False, "Ascend: profile training.")
    flags.DEFINE_string("profiling_dump_path", "/home/data", "Ascend: profiling output folder.")
    flags.DEFINE_bool("use_mixlist", False, "Ascend: use --mixlist_file with allow_mix_precision.")
    flags.DEFINE_string("mixlist_file", "ops_info.json", "Ascend: mixed-precision operator list.")
    flags.DEFINE_bool("fusion_off_flag", False, "Ascend: switch fusions off with --fusion_off_file.")
    flags.DEFINE_string("fusion_off_file", "fusion_switch.cfg", "Ascend: fusion switch file.")
    flags.DEFINE_integer("mul_rank_size", 1, "Number of ranks; the train set is sharded across them "
                         "(--batch_size is then per rank).", lower_bound=1)
    flags.DEFINE_integer("mul_device_id", 0, "This process's rank.", lower_bound=0)


def define_mnist_flags():
    define_base_flags()
    flags.DEFINE_bool("download", True, "Download the data when missing (impossible without network).")
    flags.DEFINE_bool("eval_static", False, "drop_remainder=True: batches with a static shape.")
    define_ascend_flags()
    # Additions of this port (defaults keep the original recipe):
    flags.DEFINE_integer("collective_timeout", 120, "Multi-worker: seconds an all-reduce may wait for the "
                         "other workers before this worker gives up.", lower_bound=1)
    flags.DEFINE_float("learning_rate", 0.05, "Initial SGD learning rate (decays x0.96 per 100,000 steps).",
                       lower_bound=0.0)
    flags.DEFINE_float("momentum", 0.0, "SGD momentum (the original uses none).", lower_bound=0.0)
    flags.DEFINE_integer("seed", None, "Random seed for weights and shuffling (default: random).", lower_bound=0)
    flags.DEFINE_string("result_dir", None, "Folder for this process's result.json (default: --model_dir; "
                        "with several ranks, rank 0 only).")
    flags.DEFINE_string("launcher", "mnist_main.py", "The launcher that started this run, for result.json.")
