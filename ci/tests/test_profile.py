"""ci/profile.py without running a model: a tiny graph traced for real, its aggregation, and the Session.run
bootstrap on a tiny script run in-process (runpy), as the launcher's entry script runs under the sitecustomize."""
import json
import runpy
import sys

import pytest

from ci import profile

tf = pytest.importorskip("tensorflow")

TINY_SCRIPT = """
import numpy as np
import tensorflow as tf

graph = tf.Graph()
with graph.as_default():
    images = tf.compat.v1.placeholder(tf.float32, [4, 8, 8, 3])
    kernel = tf.compat.v1.get_variable("kernel", [3, 3, 3, 4])
    weights = tf.compat.v1.get_variable("weights", [8 * 8 * 4, 5])
    logits = tf.matmul(tf.reshape(tf.nn.relu(tf.nn.conv2d(images, kernel, 1, "SAME")), [4, -1]), weights)
    loss = tf.reduce_mean(tf.square(logits))
    train = tf.compat.v1.train.MomentumOptimizer(0.01, 0.9).minimize(loss)
    init = tf.compat.v1.global_variables_initializer()
with tf.compat.v1.Session(graph=graph) as sess:
    sess.run(init)
    feed = {images: np.ones([4, 8, 8, 3], np.float32)}
    for _ in range(CALLS):
        sess.run([train, loss], feed)
        sess.run(loss, feed)  # not a training call: neither counted nor traced
"""


@pytest.fixture
def session_run(monkeypatch):
    """BaseSession.run as it is now, restored after the test whatever the bootstrap wrapped; the functions the
    bootstrap registers to run at exit."""
    from tensorflow.python.client import session

    monkeypatch.setattr(session.BaseSession, "run", session.BaseSession.run)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    at_exit = []
    monkeypatch.setattr(profile.atexit, "register", at_exit.append)
    return at_exit


def run_tiny_script(tmp_path, calls, warmup, traced):
    script = tmp_path / "tiny.py"
    script.write_text(TINY_SCRIPT.replace("CALLS", str(calls)))
    recorder = profile.Recorder(warmup, traced, str(tmp_path / "calls.json"))
    profile.install(recorder)
    runpy.run_path(str(script), run_name="__main__")
    return recorder


def test_bootstrap_traces_only_the_training_calls_after_the_warm_up(tmp_path, session_run):
    recorder = run_tiny_script(tmp_path, calls=6, warmup=2, traced=3)
    assert recorder.hooked_calls == 1 + 2 * 6  # init, then a training and an evaluation call each time
    assert len(recorder.calls) == 3
    assert len(recorder.untraced_ms) == 6 - 3
    record = json.loads((tmp_path / "calls.json").read_text())  # written after each traced call: the last
    assert record["warmup"] == 2 and len(record["calls"]) == 3 and record["hooked_calls"] == 1 + 2 * 4 + 1
    assert session_run == [recorder.write]  # and once more at exit, with the final counts


def test_aggregation_names_the_graphs_op_types_and_shares_add_up(tmp_path, session_run):
    recorder = run_tiny_script(tmp_path, calls=3, warmup=1, traced=2)
    result = profile.aggregate(recorder.calls)
    assert result["traced_calls"] == 2 and result["steps_per_call"] == 1
    names = set(result["types"])
    assert any("MatMul" in n for n in names), names
    assert any("Conv2D" in n and "Backprop" not in n for n in names), names
    assert any("Conv2DBackpropFilter" in n for n in names), names
    assert result["types"]["ResourceApplyMomentum"][0] == 2  # one update per variable and step
    assert result["phases"]["optimizer update"] > 0 and result["phases"]["gradients"] > 0
    assert result["phases"]["forward and the rest"] > 0
    total = sum(ms for _, ms in result["types"].values())
    assert sum(result["phases"].values()) == pytest.approx(total)
    lines = profile.tables(result, top=3)
    shares = [float(line.split("|")[-2].strip(" %")) for line in lines[2:lines.index("")]]
    assert len(shares) == 3 + 1 + 1  # top 3, other, the total
    assert sum(shares[:-1]) == pytest.approx(100, abs=0.2) and shares[-1] == 100


def test_steps_per_call_counts_an_update_that_runs_in_a_loop():
    # A while loop running the update 4 times in one call (LeNet's --iteration_per_loop), traced for real.
    graph = tf.Graph()
    with graph.as_default():
        weight = tf.compat.v1.get_variable("w", [3], use_resource=True)
        optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.1)

        def body(i):
            with tf.control_dependencies([optimizer.minimize(tf.reduce_sum(tf.square(weight)))]):
                return i + 1

        loop = tf.compat.v1.while_loop(lambda i: i < 4, body, [tf.constant(0)])
        init = tf.compat.v1.global_variables_initializer()
    recorder = profile.Recorder(0, 1, "unused")
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(init)
        assert recorder.trains(graph, loop) and not recorder.trains(graph, weight)
        # MonitoredSession's fetches: a dict keyed by the caller and by hook objects.
        assert recorder.trains(graph, {"caller": [weight], object(): {"step": (loop, None)}, object(): weight.name})
        metadata = tf.compat.v1.RunMetadata()
        sess.run(loop, options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                 run_metadata=metadata)
    assert profile.summarise_call(metadata.step_stats, 0.01)["steps"] == 4


@pytest.mark.parametrize("name, kind, expected", [
    ("IteratorGetNext", "IteratorGetNext", "input pipeline"),
    ("gradients/conv1/Conv2D_grad/Conv2DBackpropFilter", "Conv2DBackpropFilter", "gradients"),
    ("while/gradients_1/MatMul_grad/MatMul", "MatMul", "gradients"),
    ("Momentum/update_conv1/weights/ResourceApplyMomentum", "ResourceApplyMomentum", "optimizer update"),
    ("Adam/mul", "Mul", "optimizer update"),
    ("conv1/BatchNorm/AssignMovingAvg/sub", "Sub", "optimizer update"),
    ("conv1/Conv2D", "_FusedConv2D", "forward and the rest"),
])
def test_phase_from_node_names(name, kind, expected):
    assert profile.phase(name, kind) == expected


def test_op_type_from_a_timeline_label():
    assert profile.op_type("[cpu 25.8MB 25.8MB] g/Conv2D_grad = Conv2DBackpropFilter(a, b, c)") == \
        "Conv2DBackpropFilter"
    assert profile.op_type("_SOURCE = NoOp()") == "NoOp"
    assert profile.op_type("no label") is None


def test_after_import_hook_runs_once_the_module_is_loaded(tmp_path, monkeypatch):
    (tmp_path / "zoo_profile_probe.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, "zoo_profile_probe", raising=False)
    seen = []
    sys.meta_path.insert(0, profile._AfterImport("zoo_profile_probe", lambda module: seen.append(module.VALUE)))
    import zoo_profile_probe  # noqa: F401

    assert seen == [1]
    assert not any(isinstance(f, profile._AfterImport) for f in sys.meta_path)  # removed after its one use


def test_sitecustomize_installs_a_recorder_only_when_the_profile_folder_is_set(tmp_path, monkeypatch, session_run):
    from tensorflow.python.client import session

    unwrapped = session.BaseSession.run
    monkeypatch.delenv(profile.ENV_DIR, raising=False)
    exec(compile(profile.SITECUSTOMIZE, "sitecustomize.py", "exec"), {})
    assert session.BaseSession.run is unwrapped and session_run == []  # every other python3 of a launcher
    monkeypatch.setenv(profile.ENV_DIR, str(tmp_path))
    monkeypatch.setenv(profile.ENV_WARMUP, "4")
    monkeypatch.setenv(profile.ENV_TRACED, "2")
    exec(compile(profile.SITECUSTOMIZE, "sitecustomize.py", "exec"), {})
    assert session.BaseSession.run is not unwrapped and session.BaseSession.run.__wrapped__ is unwrapped
    recorder = session_run[0].__self__
    assert (recorder.warmup, recorder.traced) == (4, 2) and recorder.out_path.startswith(str(tmp_path))


def test_no_matching_model_is_one_error_line(capsys):
    assert profile.main(["--only", "NoSuchModel"]) == 1
    assert capsys.readouterr().out.count("[Error]") == 1


@pytest.mark.parametrize("precision, mode, forced", [("float32", "must_keep_origin_dtype", None),
                                                      ("mixed", "allow_mix_precision", "1")])
def test_the_launcher_runs_in_the_chosen_precision(tmp_path, monkeypatch, precision, mode, forced):
    """The launcher's command and environment, as the benchmark runs it in that mode (bench.MODES, MODE_ENV)."""
    from ci import bench, smoke

    seen = {}

    def failed_run(command, cwd, env, log_path, timeout):
        seen.update(command=command, env=env)
        open(log_path, "w").close()
        return 1, 0.0, 0

    monkeypatch.setattr(bench, "run_measured", failed_run)
    monkeypatch.setattr(bench, "keep_launcher_output", lambda *args: None)
    monkeypatch.setattr(smoke, "ensure_dataset", lambda name, work_dir: str(tmp_path / name))
    monkeypatch.delenv("ZOO_CPU_BF16", raising=False)
    work_dir = tmp_path / "profile"
    assert profile.main(["--only", "LeNet", "--precision", precision, "--work_dir", str(work_dir)]) == 1
    assert f"--precision_mode={mode}" in seen["command"]
    assert seen["env"].get("ZOO_CPU_BF16") == forced


@pytest.fixture
def function_call(monkeypatch):
    """tf.function's Function.__call__ as it is now, restored after the test; the functions registered at exit."""
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    monkeypatch.setattr(polymorphic_function.Function, "__call__", polymorphic_function.Function.__call__)
    at_exit = []
    monkeypatch.setattr(profile.atexit, "register", at_exit.append)
    return at_exit


def test_a_tf_function_training_step_is_traced_after_the_warm_up(tmp_path, function_call):
    import keras

    recorder = profile.FunctionRecorder("train_step", 2, 3, str(tmp_path / "calls.json"), str(tmp_path / "trace"))
    profile.install(recorder)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(5)])
    optimizer = keras.optimizers.SGD(0.01)
    images = tf.ones([4, 8, 8, 3])

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(images, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    @tf.function
    def evaluate():
        return tf.reduce_mean(model(images))

    for _ in range(7):
        train_step()
        evaluate()  # another function: neither counted nor traced
    assert recorder.hooked_calls == 7 and len(recorder.traced_ms) == 3 and len(recorder.untraced_ms) == 4
    (entry,) = recorder.calls
    assert entry["calls"] == entry["steps"] == 3
    result = profile.aggregate(recorder.calls)
    assert result["traced_calls"] == 3 and result["steps_per_call"] == 1
    names = set(result["types"])
    assert any("Conv2D" in n and "Backprop" not in n for n in names), names
    assert any("Conv2DBackpropFilter" in n for n in names), names
    assert result["phases"]["gradients"] > 0 and result["phases"]["optimizer update"] > 0
    assert result["phases"]["forward and the rest"] > 0
    assert sum(result["phases"].values()) == pytest.approx(sum(ms for _, ms in result["types"].values()))
    assert json.loads((tmp_path / "calls.json").read_text())["calls"] == recorder.calls
    assert recorder.write in function_call  # (the profiler registers its own exit functions too)


def test_the_sitecustomize_picks_the_function_recorder_when_a_function_is_named(tmp_path, monkeypatch,
                                                                               function_call):
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    unwrapped = polymorphic_function.Function.__call__
    for name, value in ((profile.ENV_DIR, str(tmp_path)), (profile.ENV_WARMUP, "1"), (profile.ENV_TRACED, "1"),
                        (profile.ENV_FUNCTION, "train_step")):
        monkeypatch.setenv(name, value)
    exec(compile(profile.SITECUSTOMIZE, "sitecustomize.py", "exec"), {})
    assert polymorphic_function.Function.__call__.__wrapped__ is unwrapped
    (recorder,) = [f.__self__ for f in function_call if isinstance(getattr(f, "__self__", None), profile.Recorder)]
    assert isinstance(recorder, profile.FunctionRecorder) and recorder.name == "train_step"


@pytest.mark.parametrize("name, kind, expected", [
    ("gradient_tape/sequential/conv2d/Conv2DBackpropFilter", "_MklNativeConv2DBackpropFilterWithBias", "gradients"),
    ("sgd_1/AssignSubVariableOp_2", "AssignSubVariableOp", "optimizer update"),
    ("adam/Mul", "Mul", "optimizer update"),
    ("sequential/conv2d/Relu", "_MklNativeFusedConv2D", "forward and the rest"),
])
def test_phase_from_keras_3_node_names(name, kind, expected):
    assert profile.phase(name, kind) == expected


def test_trace_event_names():
    assert profile.TRACE_OP.match("sequential/conv2d/Relu:_MklNativeFusedConv2D").groups() == \
        ("sequential/conv2d/Relu", "_MklNativeFusedConv2D")
    for other in ("ExecutorState::Process", "EagerLocalExecute: __inference_step_142", "train_step"):
        assert profile.TRACE_OP.match(other) is None
