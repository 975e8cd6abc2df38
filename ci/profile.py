"""Where a model's training step time goes: a traced profile of its real performance launcher, per op type.

    python ci/profile.py [--only MODEL] [--precision float32|mixed] [--warmup W] [--traced K] [--top N]

For every model of ci/bench.toml (the benchmark's launcher, synthetic dataset of ci/datasets, batch and
arguments) it runs the launcher unchanged, in float32 (--precision_mode=must_keep_origin_dtype) or in the mixed
mode as the benchmark runs it (allow_mix_precision with ZOO_CPU_BF16=1: bf16 on a CPU with native bf16), with a
sitecustomize.py on PYTHONPATH that wraps tf.compat.v1's Session.run in every Python process the launcher
starts. A call counts as a training call when what it fetches depends on an optimizer's Apply op (in the graph
or in a function it calls, e.g. a while loop's body); the first W training calls run as usual, the next K with
RunOptions(trace_level=FULL_TRACE), and the RunMetadata's step_stats of those K calls are summed per op type
(from each node's timeline label) and per phase (from node names: input pipeline, gradients, optimizer update,
forward and the rest). A training call may run several steps (LeNet's --iteration_per_loop runs a while loop):
steps per call = how often one Apply node ran in it. A model that trains in a tf.function instead (MNIST TF2)
names it in bench.toml (train_function): the calls of the tf.function of that name are counted the same way,
the K after the warm-up run under tf.profiler, one step per call, and the trace's op events (the executor's
'node:OpType' events) are summed the same way. Ops overlap on the cores, so shares are of the summed op time,
which may exceed the call's wall time. Writes ci/work/profile/<model>.json and <model>.md (<model>.mixed.* in
the mixed mode) and prints the tables. A model with neither is reported as not profiled.
"""
import argparse
import atexit
import functools
import importlib.machinery
import json
import os
import re
import shutil
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The launcher's processes read their settings from these (set by run_model for the sitecustomize).
ENV_DIR, ENV_WARMUP, ENV_TRACED = "ZOO_PROFILE_DIR", "ZOO_PROFILE_WARMUP", "ZOO_PROFILE_TRACED"
ENV_FUNCTION = "ZOO_PROFILE_FUNCTION"
SESSION_MODULE = "tensorflow.python.client.session"
FUNCTION_MODULE = "tensorflow.python.eager.polymorphic_function.polymorphic_function"
# A kernel's event in a tf.profiler trace: 'scope/node:OpType' (not 'Class::method' or 'Eager...: name').
TRACE_OP = re.compile(r"^([^:\s]+):(\w+)$")
APPLY = re.compile(r"^(Resource)?(Sparse)?Apply")
INPUT_TYPES = {"IteratorGetNext", "IteratorGetNextSync", "IteratorGetNextAsOptional", "_Arg", "_Recv"}
OPTIMIZER_SCOPES = {"Adam", "Momentum", "GradientDescent", "RMSProp", "Adagrad", "Adadelta", "Ftrl",
                    "ExponentialMovingAverage"}
# Keras 3 optimizers' name scopes (sgd, adam_1, ...).
KERAS_OPTIMIZER_SCOPE = re.compile(r"(sgd|adam|adamw|rmsprop|adagrad|adadelta|ftrl|nadam|lion)(_\d+)?")
PHASES = ("input pipeline", "forward and the rest", "gradients", "optimizer update")
SITECUSTOMIZE = f"""# Written by ci/profile.py: traces the training Session.run calls of the processes the launcher starts.
import sys
sys.path.append({REPO!r})
from ci import profile
profile.install_from_env()
"""


def op_type(label):
    """'conv1/Conv2D = Conv2D(a, b)' -> 'Conv2D' (labels may start with a '[cpu 1MB 1MB] ' memory note)."""
    found = re.search(r"= ([\w>]+)\(", label)
    return found.group(1) if found else None


def phase(node_name, kind):
    parts = node_name.split("/")
    if kind in INPUT_TYPES:
        return "input pipeline"
    if APPLY.match(kind) or any(p.startswith("update_") or p in OPTIMIZER_SCOPES or "AssignMovingAvg" in p
                                or KERAS_OPTIMIZER_SCOPE.fullmatch(p) for p in parts):
        return "optimizer update"
    if any(re.fullmatch(r"gradients(_\d+)?", p) or p == "gradient_tape" for p in parts):
        return "gradients"
    return "forward and the rest"


def _count(types, phases, node_name, kind, micros):
    """Adds one op execution to the per-type and per-phase sums."""
    entry = types.setdefault(kind, {"micros": 0, "runs": 0})
    entry["micros"] += micros
    entry["runs"] += 1
    phases[phase(node_name, kind)] += micros


def summarise_call(step_stats, wall_seconds):
    """One traced call: summed microseconds and executions per op type and per phase, steps, wall time."""
    types, phases, apply_runs = {}, dict.fromkeys(PHASES, 0), {}
    for device in step_stats.dev_stats:
        for node in device.node_stats:
            kind = op_type(node.timeline_label)
            if kind is None:
                continue
            _count(types, phases, node.node_name, kind, node.all_end_rel_micros)
            if APPLY.match(kind):
                apply_runs[node.node_name] = apply_runs.get(node.node_name, 0) + 1
    return {"wall_ms": wall_seconds * 1e3, "steps": max(apply_runs.values(), default=1), "types": types,
            "phases": phases}


def summarise_trace(xspace, wall_seconds, calls):
    """`calls` traced tf.function calls of one step each, from the XSpace of their tf.profiler trace: summed
    microseconds and executions per op type and per phase, as summarise_call."""
    types, phases = {}, dict.fromkeys(PHASES, 0)
    for plane in xspace.planes:
        for line in plane.lines:
            for event in line.events:
                found = TRACE_OP.match(plane.event_metadata[event.metadata_id].name)
                if not found:
                    continue
                _count(types, phases, *found.groups(), event.duration_ps / 1e6)
    return {"wall_ms": wall_seconds * 1e3, "steps": calls, "calls": calls, "types": types, "phases": phases}


def read_trace(trace_dir):
    """The XSpace tf.profiler wrote under trace_dir (plugins/profile/<run>/<host>.xplane.pb)."""
    import glob

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = glob.glob(os.path.join(trace_dir, "plugins", "profile", "*", "*.xplane.pb"))
    xspace = xplane_pb2.XSpace()
    with open(path, "rb") as handle:
        xspace.ParseFromString(handle.read())
    return xspace


class Recorder:
    """Counts the training calls of one process, traces calls warmup+1 .. warmup+traced, writes out_path."""

    HOOK = (SESSION_MODULE, "BaseSession", "run")  # what install() wraps: module, class, method

    def __init__(self, warmup, traced, out_path):
        self.warmup, self.traced, self.out_path = warmup, traced, out_path
        self.hooked_calls = 0  # calls of the wrapped HOOK (Session.run or the named tf.function), training or not
        self.untraced_ms = []  # wall time of each training call that was not traced
        self.calls = []  # summarise_call of each traced call
        self._trains = {}

    def trains(self, graph, fetches):
        """Whether fetches depend on an optimizer's Apply op (cached per graph version and fetch names)."""
        elements = []
        for leaf in _leaves(fetches):
            try:
                elements.append(graph.as_graph_element(leaf))
            except (TypeError, ValueError, KeyError):
                continue  # not a graph element (e.g. a callable's fetch): it cannot make the call a training one
        key = (id(graph), graph.version, tuple(sorted(e.name for e in elements)))
        if key not in self._trains:
            self._trains[key] = _depends_on_apply(graph, [getattr(e, "op", e) for e in elements])
        return self._trains[key]

    def wrap(self, run):
        recorder = self

        @functools.wraps(run)
        def profiled_run(session, fetches, feed_dict=None, options=None, run_metadata=None):
            recorder.hooked_calls += 1
            trains = recorder.trains(session.graph, fetches)
            if not trains or len(recorder.untraced_ms) < recorder.warmup or len(recorder.calls) >= recorder.traced:
                start = time.perf_counter()
                result = run(session, fetches, feed_dict, options, run_metadata)
                if trains:
                    recorder.untraced_ms.append((time.perf_counter() - start) * 1e3)
                return result
            import tensorflow as tf

            traced_options = tf.compat.v1.RunOptions()
            if options is not None:
                traced_options.CopyFrom(options)
            traced_options.trace_level = tf.compat.v1.RunOptions.FULL_TRACE
            metadata = run_metadata if run_metadata is not None else tf.compat.v1.RunMetadata()
            start = time.perf_counter()
            result = run(session, fetches, feed_dict, traced_options, metadata)
            recorder.calls.append(summarise_call(metadata.step_stats, time.perf_counter() - start))
            recorder.write()
            return result

        return profiled_run

    def write(self):
        if not self.hooked_calls:
            return
        import tensorflow as tf

        record = {"pid": os.getpid(), "argv": sys.argv, "tf_version": tf.__version__, "warmup": self.warmup,
                  "hooked_calls": self.hooked_calls, "untraced_ms": self.untraced_ms, "calls": self.calls}
        with open(self.out_path + ".tmp", "w") as handle:
            json.dump(record, handle)
        os.replace(self.out_path + ".tmp", self.out_path)


class FunctionRecorder(Recorder):
    """Counts the calls of the tf.function called `name` (one training step each): warmup calls as usual, the
    next `traced` under tf.profiler (trace in trace_dir), summed into one entry of calls."""

    HOOK = (FUNCTION_MODULE, "Function", "__call__")

    def __init__(self, name, warmup, traced, out_path, trace_dir):
        super().__init__(warmup, traced, out_path)
        self.name, self.trace_dir = name, trace_dir
        self.traced_ms = []

    def wrap(self, call):
        recorder = self

        @functools.wraps(call)
        def profiled_call(function, *args, **kwargs):
            if getattr(function, "name", None) != recorder.name:
                return call(function, *args, **kwargs)
            import tensorflow as tf

            recorder.hooked_calls += 1
            tracing = len(recorder.untraced_ms) >= recorder.warmup and len(recorder.traced_ms) < recorder.traced
            if tracing and not recorder.traced_ms:
                tf.profiler.experimental.start(recorder.trace_dir)
            start = time.perf_counter()
            result = call(function, *args, **kwargs)
            (recorder.traced_ms if tracing else recorder.untraced_ms).append((time.perf_counter() - start) * 1e3)
            if tracing and len(recorder.traced_ms) == recorder.traced:
                tf.profiler.experimental.stop()
                recorder.calls.append(summarise_trace(read_trace(recorder.trace_dir), sum(recorder.traced_ms) / 1e3,
                                                      recorder.traced))
                recorder.write()
            return result

        return profiled_call


def _leaves(fetches):
    """The fetches of nested dicts, lists and tuples (not tf.nest: MonitoredSession keys its dict by hook objects,
    which cannot be sorted)."""
    if isinstance(fetches, dict):
        fetches = list(fetches.values())
    if isinstance(fetches, (list, tuple)):
        return [leaf for item in fetches for leaf in _leaves(item)]
    return [fetches]


def _depends_on_apply(graph, ops):
    updating = None  # names of library functions holding an Apply op, read only when a call op is met
    seen, stack = set(), list(ops)
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if APPLY.match(op.type):
            return True
        called = {v.func.name for v in op.node_def.attr.values() if v.HasField("func")}
        if called:
            updating = _updating_functions(graph) if updating is None else updating
            if called & updating:
                return True
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return False


def _updating_functions(graph):
    """Library functions that run an Apply op themselves or through a function they call."""
    library = graph.as_graph_def().library.function
    calls = {f.signature.name: {v.func.name for n in f.node_def for v in n.attr.values() if v.HasField("func")}
             for f in library}
    updating = {f.signature.name for f in library if any(APPLY.match(n.op) for n in f.node_def)}
    grown = True
    while grown:
        callers = {name for name, called in calls.items() if called & updating} - updating
        updating |= callers
        grown = bool(callers)
    return updating


class _AfterImport:
    """A meta path finder that calls callback(module) once the module named fullname has been executed."""

    def __init__(self, fullname, callback):
        self.fullname, self.callback = fullname, callback

    def find_spec(self, fullname, path, target=None):
        if fullname != self.fullname:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            self.callback(module)

        spec.loader.exec_module = exec_module
        return spec


def install(recorder):
    """Wraps the method recorder.HOOK names (BaseSession.run, or tf.function's Function.__call__) with recorder:
    now if its TensorFlow module is loaded, else when it is."""
    module_name, cls, method = recorder.HOOK

    def patch(module):
        owner = getattr(module, cls)
        setattr(owner, method, recorder.wrap(getattr(owner, method)))

    if module_name in sys.modules:
        patch(sys.modules[module_name])
    else:
        sys.meta_path.insert(0, _AfterImport(module_name, patch))
    atexit.register(recorder.write)


def install_from_env():
    """The sitecustomize's entry: a no-op unless run_model set the profile folder."""
    folder = os.environ.get(ENV_DIR)
    if not folder:
        return
    warmup, traced = int(os.environ[ENV_WARMUP]), int(os.environ[ENV_TRACED])
    out_path = os.path.join(folder, f"calls-{os.getpid()}.json")
    name = os.environ.get(ENV_FUNCTION)
    install(FunctionRecorder(name, warmup, traced, out_path, os.path.join(folder, f"trace-{os.getpid()}"))
            if name else Recorder(warmup, traced, out_path))


def aggregate(calls):
    """Per-step means over the traced calls: {'types': {type: (runs, ms)}, 'phases': {phase: ms}, ...}."""
    steps = sum(c["steps"] for c in calls)
    types = {}
    for call in calls:
        for kind, entry in call["types"].items():
            runs, micros = types.get(kind, (0, 0))
            types[kind] = (runs + entry["runs"], micros + entry["micros"])
    traced_calls = sum(c.get("calls", 1) for c in calls)  # a tf.function trace sums several calls in one entry
    return {"steps_per_call": steps / traced_calls, "traced_calls": traced_calls,
            "wall_ms_per_step": sum(c["wall_ms"] for c in calls) / steps,
            "types": {k: (runs / steps, micros / 1e3 / steps) for k, (runs, micros) in types.items()},
            "phases": {p: sum(c["phases"][p] for c in calls) / 1e3 / steps for p in PHASES}}


def tables(profile, top):
    """Markdown: the top op types + other + total, then the phases; shares of summed op time."""
    total = sum(ms for _, ms in profile["types"].values())
    ranked = sorted(profile["types"].items(), key=lambda item: -item[1][1])
    lines = ["| op type (share: of summed op time; ops overlap on the cores) | runs per step | ms per step | share |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {kind} | {runs:g} | {ms:,.2f} | {100 * ms / total:.1f} % |" for kind, (runs, ms) in ranked[:top]]
    rest = ranked[top:]
    if rest:
        ms = sum(m for _, (_, m) in rest)
        lines.append(f"| other ({len(rest)} op types) | {sum(r for _, (r, _) in rest):g} | {ms:,.2f} | "
                     f"{100 * ms / total:.1f} % |")
    lines += [f"| summed op time | | {total:,.2f} | 100.0 % |", "",
              "| phase (from node names) | ms per step | share of summed op time |", "| --- | --- | --- |"]
    lines += [f"| {name} | {ms:,.2f} | {100 * ms / total:.1f} % |" for name, ms in profile["phases"].items()]
    return lines


def report(model, record, profile, command, top):
    steps = profile["steps_per_call"]
    total = sum(ms for _, ms in profile["types"].values())
    skip = record["warmup"] // 2  # the first calls build caches and warm the allocator
    untraced = record["untraced_ms"][skip:]
    plain = (f"untraced step {statistics.median(untraced) / steps:,.2f} ms (median of the {len(untraced)} untraced "
             f"training calls after the first {skip}; {min(untraced) / steps:,.2f} to {max(untraced) / steps:,.2f})"
             if untraced else "no untraced call to compare")
    lines = [f"### {model}", "", f"Launcher run (in {model}/test/; paths from the repository root): `{command}`", "",
             f"{profile['traced_calls']} traced training calls of {steps:g} step(s) each, after {record['warmup']} "
             f"warm-up calls. Traced step: {profile['wall_ms_per_step']:,.2f} ms wall; {plain}; summed op time "
             f"{total:,.2f} ms = {total / profile['wall_ms_per_step']:.2f}x the traced wall time.", ""]
    return "\n".join(lines + tables(profile, top)) + "\n"


def run_model(model, cfg, args):
    """Runs the model's launcher with the tracing sitecustomize; (markdown, problem or None, skipped note)."""
    # The harness modules import numpy and scipy: kept out of this module's top, which every process the
    # launcher starts imports through the sitecustomize.
    from ci import bench, contract, smoke

    boot = os.path.join(args.work_dir, "boot")
    calls_dir = os.path.join(args.work_dir, "calls", model)
    shutil.rmtree(calls_dir, ignore_errors=True)  # the last run's records and traces
    for folder in (boot, calls_dir):
        os.makedirs(folder, exist_ok=True)
    with open(os.path.join(boot, "sitecustomize.py"), "w") as handle:
        handle.write(SITECUSTOMIZE)
    data = smoke.ensure_dataset(cfg["dataset"], os.path.dirname(args.work_dir))
    command = ["bash", cfg["launcher"], f"--data_path={data}", f"--{cfg['batch_flag']}={cfg['batch']}",
               f"--precision_mode={bench.MODES[args.precision]}"] + cfg["args"]
    forced = bench.MODE_ENV[args.precision]  # the mixed mode's ZOO_CPU_BF16=1, as the benchmark sets it
    env = bench.child_env({**forced, ENV_DIR: calls_dir, ENV_WARMUP: args.warmup,
                           ENV_TRACED: args.traced, ENV_FUNCTION: cfg.get("train_function", ""),
                           "PYTHONPATH": os.pathsep.join(filter(None, [boot, os.environ.get("PYTHONPATH")]))})
    keep = os.path.join(args.work_dir, "runs", model)
    shutil.rmtree(keep, ignore_errors=True)  # the last run's output: keep_launcher_output renames into it
    os.makedirs(keep)
    model_dir = os.path.join(REPO, model)
    stdout_path = os.path.join(keep, "launcher.out")
    code, _, _ = bench.run_measured(command, os.path.join(model_dir, "test"), env, stdout_path,
                                    cfg.get("timeout", 900))
    with open(stdout_path, errors="replace") as handle:
        problems = contract.check(contract.Run(model_dir, cfg["launcher"], handle.read(), bench.DEVICE_ID), code)
    bench.keep_launcher_output(model_dir, keep)
    shown = " ".join([f"{name}={value}" for name, value in forced.items()] + command).replace(REPO + os.sep, "")
    if problems:
        return None, f"{model}: the launcher run failed: {'; '.join(problems)} (output in {keep})", None
    records = []
    for name in sorted(n for n in os.listdir(calls_dir) if n.endswith(".json")):
        with open(os.path.join(calls_dir, name)) as handle:
            records.append(json.load(handle))
    traced = [r for r in records if r["calls"]]
    if not traced:
        trained = sum(len(r["untraced_ms"]) for r in records)
        if not trained:
            return None, None, (f"{model}: not profiled: no Session.run call fetched a training op (a "
                                "tf.function model: name its training function as train_function in bench.toml)")
        return None, (f"{model}: only {trained} training calls, none after the {args.warmup} warm-up calls: "
                      "give the launcher more steps or pass a smaller --warmup"), None
    record = traced[0]
    profile = aggregate(record["calls"])
    markdown = report(model, record, profile, shown, args.top)
    stem = os.path.join(args.work_dir, model if args.precision == "float32" else f"{model}.{args.precision}")
    with open(stem + ".md", "w") as handle:
        handle.write(markdown)
    with open(stem + ".json", "w") as handle:
        json.dump({"machine": bench.machine({"tf_version": record["tf_version"], "device": "CPU"}),
                   "command": shown, "profile": profile, "record": record}, handle, indent=1)
    return markdown, None, None


def main(argv=None):
    import tomllib

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="models whose directory name contains this text")
    parser.add_argument("--precision", choices=("float32", "mixed"), default="float32",
                        help="mixed: the benchmark's mixed mode (bf16 on a CPU with native bf16, fp16 on a GPU)")
    parser.add_argument("--warmup", type=int, default=10, help="training calls run untraced first")
    parser.add_argument("--traced", type=int, default=3, help="training calls traced after the warm-up")
    parser.add_argument("--top", type=int, default=12, help="op types listed before 'other'")
    parser.add_argument("--config", default=os.path.join(REPO, "ci", "bench.toml"))
    parser.add_argument("--work_dir", default=os.path.join(REPO, "ci", "work", "profile"))
    args = parser.parse_args(argv)
    if args.warmup < 0 or args.traced < 1 or args.top < 1:
        print("[Error] ci/profile.py: --warmup must be >= 0, --traced and --top >= 1")
        return 1
    with open(args.config, "rb") as handle:
        config = tomllib.load(handle)
    from ci import bench

    models = [m for m in config if args.only in m]
    if not models:
        print(f"[Error] ci/profile.py: no model in {args.config} matches {args.only!r}")
        return 1
    failed = not_traced = 0
    for model in models:
        markdown, problem, skipped = run_model(model, bench.model_settings(config, model, False), args)
        print(f"[Error] {problem}" if problem else markdown or skipped, flush=True)
        failed += bool(problem)
        not_traced += bool(skipped)
    print(f"profile: {len(models) - failed - not_traced} of {len(models)} models profiled, {not_traced} without "
          f"a traced training call, {failed} failed; tables and JSON in {args.work_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, REPO)  # run as a script: the harness modules are imported as the ci package
    sys.exit(main())
