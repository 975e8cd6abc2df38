"""The one boundary between the training code and the device: Ascend (the npu_bridge adapter imports) or
TensorFlow's own CPU/GPU runtime. Both device classes have the same surface, so model_fn and train.py never
ask where they run:

  describe()                      the start-up line: device, precision and why, runner, ranks
  steps_per_run(iterations)       training steps per session.run (the NPU runs iterations_per_loop at once)
  run_config(...)                 NPURunConfig on Ascend; session_loop.RunConfig (ConfigProto inside, the
                                  checkpoint to resume from) elsewhere
  estimator(model_fn, config)     NPUEstimator on Ascend; session_loop.SessionLoop elsewhere (tf.estimator is
                                  gone from TensorFlow >= 2.16); both train(input_fn, max_steps)
  wrap_optimizer(opt)             NPULossScaleOptimizer(NPUDistributedOptimizer(opt)) on Ascend, as the
                                  original; distributed.AllReduceOptimizer in a TF_CONFIG cluster; else opt
  synchronize(step_op, vars)      off Ascend in a cluster: the batch-norm statistics averaged after each step
  broadcast_hooks()               rank 0's variables to every rank once the session exists

Precision is the zoo's table (zoo_precision.resolve): on a CPU bf16 only where a benchmark measured MobileNet
faster in it (AVX-512 bf16: 1.04x, the table's entry), float32 on CPU kinds not measured. select() raises
ValueError for a bad ZOO_CPU_BF16 as for bad ranks (train.py: one line).
The adapter's modules are imported where they are used: they exist only on Ascend.
"""
import importlib.util

import tensorflow as tf

import distributed
import session_loop
import zoo_precision

ADAPTER = "npu_bridge"
LOSS_SCALE = 4096  # the original's FixedLossScaleManager value
MODEL = "MobileNetV1_for_TensorFlow"  # its key in zoo_precision.MEASURED_BF16


def is_ascend():
    return importlib.util.find_spec(ADAPTER) is not None


def precision(precision_mode, cpu_flags=None):
    """The zoo table for this machine (cpu_flags: the CPU's flags, read from /proc/cpuinfo when None)."""
    return zoo_precision.resolve(precision_mode, zoo_precision.detect_device(ADAPTER), MODEL, cpu_flags)


def select(precision_mode, rank_id, rank_size, cluster, cpu_flags=None):
    """The device of this process. cluster: the TF_CONFIG cluster (distributed.Cluster) or None; Ascend ranks
    talk through HCCL instead. ValueError: several ranks off Ascend without a cluster."""
    chosen = precision(precision_mode, cpu_flags)
    if chosen.device == "Ascend":
        return Ascend(chosen, rank_id, rank_size)
    if rank_size > 1 and cluster is None:
        raise ValueError("RANK_SIZE: several workers off Ascend need TF_CONFIG (a tf.distribute cluster); "
                         "start them with test/train_*_8p.sh, or run with RANK_SIZE=1")
    return Local(chosen, cluster)


class Local:
    """CPU or GPU, one process or one worker of a TF_CONFIG cluster (distributed.py)."""

    def __init__(self, precision_, cluster=None):
        self.precision = precision_
        self.cluster = cluster

    def describe(self):
        line = self.precision.describe()
        if self.cluster:
            line += (f"; worker {self.cluster.index} of {self.cluster.size} ({self.cluster.workers[self.cluster.index]}), "
                     f"gradients all-reduced by TensorFlow collective ops")
        return line + "; session loop"

    def steps_per_run(self, iterations_per_loop):
        return 1

    def session_config(self):
        config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
        if self.precision.device == "GPU":
            config.gpu_options.allow_growth = True
        self.precision.apply_to_session_config(config)
        return self.cluster.session_config(config) if self.cluster else config

    def run_config(self, model_dir, save_checkpoints_steps, keep_checkpoint_max, iterations_per_loop, seed,
                   over_dump, resume_from=None):
        # iterations_per_loop is the logging interval here (the logger hook); the loop runs one step per call.
        # The overflow dump's counterpart: the first op producing inf/NaN stops the run and is named.
        return session_loop.RunConfig(
            model_dir=model_dir, save_checkpoints_steps=save_checkpoints_steps,
            keep_checkpoint_max=keep_checkpoint_max, tf_random_seed=seed, session_config=self.session_config(),
            check_numerics=over_dump, is_chief=self.cluster is None or self.cluster.is_chief, resume_from=resume_from)

    def estimator(self, model_fn, run_config):
        master = self.cluster.connect(run_config.session_config)[1] if self.cluster else ""
        return session_loop.SessionLoop(model_fn, run_config, master)

    def wrap_optimizer(self, optimizer):
        return self.cluster.optimizer(optimizer) if self.cluster else optimizer

    def synchronize(self, step_op, variables):
        """Each worker updated these (batch-norm moving statistics) from its own batch; their mean after the
        step keeps the workers identical."""
        if not self.cluster:
            return step_op
        with tf.control_dependencies([step_op]):
            return self.cluster.average_in_place(variables)

    def broadcast_hooks(self):
        return [BroadcastHook(self.cluster)] if self.cluster else []


class Ascend:
    """An NPU through the CANN adapter, as the original: NPUEstimator, HCCL between RANK_SIZE ranks."""

    def __init__(self, precision_, rank_id, rank_size):
        self.precision = precision_
        self.rank_id = rank_id
        self.rank_size = rank_size
        self.cluster = None

    def describe(self):
        return f"{self.precision.describe()}; rank {self.rank_id} of {self.rank_size}; NPUEstimator"

    def steps_per_run(self, iterations_per_loop):
        return iterations_per_loop

    def run_config(self, model_dir, save_checkpoints_steps, keep_checkpoint_max, iterations_per_loop, seed,
                   over_dump, resume_from=None):
        # NPUEstimator restores from model_dir itself (resume_from is the session loop's).
        from npu_bridge.estimator.npu.npu_config import DumpConfig, NPURunConfig

        dump = DumpConfig(enable_dump_debug=True, dump_path=f"{model_dir}/overflow_dump",
                          dump_debug_mode="all") if over_dump else None
        return NPURunConfig(hcom_parallel=True, precision_mode=self.precision.dtype, enable_data_pre_proc=True,
                            iterations_per_loop=iterations_per_loop, model_dir=model_dir,
                            save_checkpoints_steps=save_checkpoints_steps, keep_checkpoint_max=keep_checkpoint_max,
                            log_step_count_steps=None, save_summary_steps=0, tf_random_seed=seed,
                            dump_config=dump)

    def estimator(self, model_fn, run_config):
        from npu_bridge.estimator.npu.npu_estimator import NPUEstimator

        def estimator_model_fn(features, labels, mode, params):
            spec = model_fn(features, labels)
            return tf.estimator.EstimatorSpec(mode, loss=spec.loss, train_op=spec.train_op, training_hooks=spec.hooks)

        return NPUEstimator(model_fn=estimator_model_fn, config=run_config)

    def wrap_optimizer(self, optimizer):
        from npu_bridge.estimator.npu.npu_loss_scale_manager import FixedLossScaleManager
        from npu_bridge.estimator.npu.npu_loss_scale_optimizer import NPULossScaleOptimizer
        from npu_bridge.estimator.npu.npu_optimizer import NPUDistributedOptimizer

        return NPULossScaleOptimizer(NPUDistributedOptimizer(optimizer), FixedLossScaleManager(loss_scale=LOSS_SCALE),
                                     is_distributed=self.rank_size > 1)

    def synchronize(self, step_op, variables):
        return step_op  # as the original: each NPU keeps the moving statistics of its own batches

    def broadcast_hooks(self):
        if self.rank_size <= 1:
            return []
        from npu_bridge.estimator.npu.npu_hook import NPUBroadcastGlobalVariablesHook

        # Its op runs once the session exists, i.e. after initialisation or restore: rank 0's values win.
        return [NPUBroadcastGlobalVariablesHook(root_rank=0, index=self.rank_id)]


class BroadcastHook(tf.compat.v1.train.SessionRunHook):
    """Sets every global variable to worker 0's value once the session is initialised or restored, and prints
    a digest of the model variables then and at the end: equal digests in every worker's log show that the
    workers started from and ended with bit-identical weights."""

    def __init__(self, cluster):
        self._cluster = cluster
        self._op = None
        self._variables = None

    def begin(self):
        self._op = self._cluster.broadcast(tf.compat.v1.global_variables())
        self._variables = tf.compat.v1.model_variables()

    def _print_digest(self, session, when):
        print(f"worker {self._cluster.index}: weights digest {when}: "
              f"{distributed.digest(session.run(self._variables))}", flush=True)

    def after_create_session(self, session, coord):
        session.run(self._op)
        self._print_digest(session, "after broadcast")

    def end(self, session):
        self._print_digest(session, "at end")
