"""The schedule tuner: workload keys, spaces, measurement, Optuna search and records, on tiny
conv/pool workloads on the OpenCL (PoCL) device; compiled results against onnxruntime."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("optuna")

from visc.compiler import GRAPH_PIPELINE, compile_model, run_passes  # noqa: E402
from visc.dialects.vision import Conv2dOp, VisionOp  # noqa: E402
from visc.errors import ViscError  # noqa: E402
from visc.frontend.onnx import import_model  # noqa: E402
from visc.tuner.measure import IsolatedMeasurer, Measurer, device_identity  # noqa: E402
from visc.tuner.records import RecordBook, best_records, export_records, import_records  # noqa: E402
from visc.tuner.search import (  # noqa: E402
    is_measured,
    open_storage,
    ordered_choices,
    startup_trials,
    trial_schedule,
    tune_task,
)
from visc.tuner.space import signature  # noqa: E402
from visc.tuner.workload import Workload, extract_tasks, model_tasks, workload_key  # noqa: E402


def tiny_model(c: int = 4, o: int = 8, hw: int = 8) -> onnx.ModelProto:
    """conv+bias+relu, two identical convs, a 1x1 conv and a max pool."""
    rng = np.random.default_rng(7)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["y1"], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("Relu", ["y1"], ["r1"], name="r1"),
             helper.make_node("Conv", ["r1", "w2"], ["y2"], pads=[1, 1, 1, 1], name="c2"),
             helper.make_node("Conv", ["y2", "w3"], ["y3"], pads=[1, 1, 1, 1], name="c3"),
             helper.make_node("Conv", ["y3", "w4"], ["y4"], name="c4"),
             helper.make_node("MaxPool", ["y4"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, None)],
                              [init("w1", o, c, 3, 3), init("b1", o), init("w2", o, o, 3, 3), init("w3", o, o, 3, 3),
                               init("w4", o, o, 1, 1)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("tuner") / "tiny.onnx")
    onnx.save(tiny_model(), path)
    return path


@pytest.fixture(scope="module")
def tasks(model_path: str):
    return model_tasks(model_path)


def _conv_task(tasks, node: str):
    return next(t for t in tasks if node in t.nodes)


# ------------------------------------------------------------------------------ workloads


def test_tasks_dedupe_identical_convs(tasks) -> None:
    kinds = [t.workload.kind for t in tasks]
    assert kinds == ["vision.conv2d", "vision.conv2d", "vision.conv2d", "vision.pool2d"]
    shared = _conv_task(tasks, "c2")
    assert shared.nodes == ["c2", "c3"] and shared.weight == 2
    assert _conv_task(tasks, "c1+r1").workload.body  # the fused relu is part of the workload
    assert len({t.key for t in tasks}) == len(tasks)


def test_key_ignores_names_and_survives_bufferization(model_path: str) -> None:
    imported = import_model(model_path)
    run_passes(imported.module, list(GRAPH_PIPELINE), imported.weights)
    before = [workload_key(op) for op in imported.module.walk() if isinstance(op, Conv2dOp)]
    run_passes(imported.module, ["vision-bufferize"], imported.weights)
    after = [workload_key(op) for op in imported.module.walk() if isinstance(op, Conv2dOp)]
    assert before == after and before[1] == before[2]


def test_key_changes_with_attributes_and_version(tasks) -> None:
    work = _conv_task(tasks, "c2").workload
    strided = Workload(work.kind, work.ins, work.fuse, work.outs,
                       tuple((k, "array<i64: 2, 2>" if k == "strides" else v) for k, v in work.attrs), work.body)
    newer = Workload(work.kind, work.ins, work.fuse, work.outs, work.attrs, work.body, work.version + 1)
    assert len({work.key, strided.key, newer.key}) == 3


def test_extract_tasks_all_kinds(model_path: str) -> None:
    imported = import_model(model_path)
    run_passes(imported.module, list(GRAPH_PIPELINE), imported.weights)
    every = extract_tasks(imported.module, kinds=None)
    assert {t.workload.kind for t in every} >= {"vision.conv2d", "vision.pool2d"}


# ------------------------------------------------------------------------------ spaces and measurement


@pytest.fixture(scope="module")
def conv_measurer(tasks) -> Measurer:
    return Measurer(_conv_task(tasks, "c2").module_text, "opencl", repeat=2)


def test_space_choices_follow_shapes(conv_measurer: Measurer, tasks) -> None:
    space = conv_measurer.space()
    assert space.choices["tile_oc"] == [1, 2, 4, 8]  # divisors of the 8 output channels
    assert max(space.choices["wg"]) <= space.limits.max_workgroup_size
    assert space.choices["flat"] == [0]  # a 3x3 conv cannot flatten
    one_by_one = Measurer(_conv_task(tasks, "c4").module_text, "opencl", repeat=1).space()
    assert one_by_one.choices["flat"] == [0, 1]


def test_space_rejects_invalid_combinations(conv_measurer: Measurer) -> None:
    space = conv_measurer.space()
    base = {"wg": 8, "tile_oc": 2, "tile_ow": 1, "vec": 4, "flat": 0, "unroll_k": 1, "unroll_win": 1}
    assert space.problems(base) == []
    assert any("column groups" in p for p in space.problems({**base, "tile_ow": 3}))  # 8 cols / vec 4 = 2 groups
    assert any("larger than" in p for p in space.problems({**base, "wg": 1024}))
    assert space.problems({**base, "tile_oc": 3})  # not in the space, and not a divisor


def test_min_repeat_ms_times_more_runs(tasks) -> None:
    """min_ms: runs are added until the kernels add up to it, at most MAX_RUNS."""
    from visc.tuner.measure import MAX_RUNS

    measurer = Measurer(_conv_task(tasks, "c4").module_text, "opencl", repeat=2, min_ms=1e6)
    result = measurer.measure(None)
    assert result.ok and len(result.times) == MAX_RUNS
    assert result.seconds == pytest.approx(float(np.median(result.times)))


def test_space_is_a_tree_of_kernel_families(tasks) -> None:
    """Each branch searches only the keys its kernel reads; the others keep their neutral
    values, a staged block's wg is its thread count; propose and params invert each other."""
    from xdsl.parser import Parser

    from visc.dialects import make_context
    from visc.tuner.space import NEUTRAL, DeviceLimits, branches_of, task_space

    module = Parser(make_context(), _conv_task(tasks, "c2").module_text).parse_module()
    gpu = task_space(module, DeviceLimits("gpu", 1024, 48 * 1024, 128))
    cpu = task_space(module, DeviceLimits("cpu", 1024, 1 << 20, 256))
    assert [b.name for b in gpu.branches] == ["direct", "staged", "split"]
    assert [b.name for b in cpu.branches] == ["direct", "packed", "staged"]
    split = gpu.branches[2]
    assert split.choices["stage"] == [3] and "threads_k" in split.choices and "block_m" not in split.choices
    assert "threads_k" not in gpu.branches[1].choices and gpu.branches[1].fixed["threads_k"] == 1
    staged = gpu.branches[1]
    assert "wg" not in staged.choices and "vec" not in staged.choices and staged.fixed["vec"] == 1
    assert all(v & (v - 1) == 0 for v in staged.choices["tile_ow"])  # must divide a power-of-two block
    assert set(gpu.branches[0].choices) == {"wg", "tile_oc", "tile_ow", "vec", "flat", "unroll_k", "unroll_win"}
    assert 0 in gpu.branches[0].choices["unroll_k"]  # 8 input channels: short enough to unroll fully
    long = branches_of({"wg": [8], "tile_oc": [1], "tile_ow": [1], "unroll_k": [0, 1, 2], "stage": [0, 1]},
                       unroll_fully=False)
    assert long[0].choices["unroll_k"] == [1, 2] and long[1].choices["unroll_k"] == [1, 2, 0]
    assert gpu.size == sum(b.size for b in gpu.branches)
    rng = np.random.default_rng(0)
    seen = set()
    for space in (gpu, cpu):
        for _ in range(60):
            sched = space.sample(rng)
            assert sched is not None and not space.problems(sched)
            params = space.params(sched)
            branch = space.branches[params["kernel"]]
            seen.add(branch.name)
            assert space.propose(lambda p, n: params[p]) == sched  # noqa: B023 - called here
            assert all(sched[k] == v for k, v in branch.fixed.items())
            if branch.name == "staged":
                assert sched["wg"] == (sched["block_m"] // sched["tile_oc"]) * (sched["block_n"] // sched["tile_ow"])
            elif branch.name == "split":
                assert sched["wg"] == (sched["block_n"] // sched["tile_ow"]) * sched["threads_k"]
                assert sched["stage"] == 3 and sched["block_m"] == 64 and sched["split_k"] == 1
            else:
                assert sched["stage"] == 0 and sched["split_k"] == 1
    assert seen == {"direct", "packed", "staged", "split"}
    # a schedule that leaves out keys at their neutral value is the same schedule
    plain = gpu.sample(np.random.default_rng(1))
    assert plain is not None
    short = {k: v for k, v in plain.items() if NEUTRAL.get(k) != v}
    assert gpu.params(short) == gpu.params(plain)
    assert gpu.params({**plain, "tile_oc": 3}) is None  # a value the tree lacks


def test_random_legal_proposals_compile_and_match(conv_measurer: Measurer) -> None:
    space = conv_measurer.space()
    rng = np.random.default_rng(3)
    ok = 0
    while ok < 4:
        sched = space.sample(rng)
        assert sched is not None
        result = conv_measurer.measure(sched)
        assert result.ok, (sched, result.error)
        assert result.seconds > 0 and len(result.times) == 2
        ok += 1


def test_failures_are_recorded_not_fast(conv_measurer: Measurer) -> None:
    sched = dict(conv_measurer.default_schedule)
    bad_build = conv_measurer.measure({**sched, "tile_oc": 3})
    assert not bad_build.ok and bad_build.seconds is None and "build" in bad_build.error
    saved = conv_measurer.reference
    conv_measurer.reference = [r + 1.0 for r in saved]
    try:
        wrong = conv_measurer.measure(sched)
    finally:
        conv_measurer.reference = saved
    assert not wrong.ok and "wrong result" in wrong.error


def test_isolated_measurer(tasks) -> None:
    with IsolatedMeasurer(_conv_task(tasks, "pool").module_text, "opencl", repeat=1) as m:
        assert m.measure(m.default_schedule).ok
        assert not m.measure({**m.default_schedule, "vec": 5}).ok


# ------------------------------------------------------------------------------ search and records


def test_tpe_and_random_studies_resume(tmp_path, tasks, conv_measurer: Measurer) -> None:
    db = str(tmp_path / "t.db")
    task = _conv_task(tasks, "c2")
    device = device_identity("opencl")
    seen: list[int] = []
    r = tune_task(task, conv_measurer, db, device, trials=6, sampler="tpe", seed=1,
                  on_trial=lambda n, best: seen.append(n))
    assert r.measured == 6 and r.best_seconds is not None and r.default_seconds is not None
    assert seen[-1] == 6
    with pytest.raises(ViscError, match="--resume"):
        tune_task(task, conv_measurer, db, device, trials=6)
    again = tune_task(task, conv_measurer, db, device, trials=8, seed=2, resume=True)
    assert again.measured == 8 and again.best_seconds <= r.best_seconds
    rnd = tune_task(task, conv_measurer, db, device, trials=3, sampler="random", seed=1)
    assert rnd.measured == 3
    (best,) = best_records(db)
    assert best.key == task.key and best.seconds == min(again.best_seconds, rnd.best_seconds)
    assert conv_measurer.space().problems(best.schedule) == []


def test_records_apply_in_compile(tmp_path, model_path: str, tasks) -> None:
    db = str(tmp_path / "r.db")
    device = device_identity("opencl")
    for task in tasks:
        measurer = Measurer(task.module_text, "opencl", repeat=1)
        tune_task(task, measurer, db, device, trials=3, sampler="random", seed=0)
    exported = str(tmp_path / "r.json")
    assert export_records(db, exported) == len(tasks)
    db2 = str(tmp_path / "r2.db")
    assert import_records(db2, exported) == len(tasks)
    assert import_records(db2, exported) == 0  # idempotent
    assert {r.key: r.schedule for r in best_records(db2)} == {r.key: r.schedule for r in best_records(db)}

    x = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    book = RecordBook.load(db, "opencl")  # read once, applied by two compiles
    for records in (db, exported, book, book):
        model = compile_model(model_path, records=records)
        assert model.metadata["tuned_ops"] == 5  # c1+r1, c2, c3, c4, pool
        got = model.run([x])[0]
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_judge_compares_a_tasks_nodes_in_the_model() -> None:
    from types import SimpleNamespace

    from visc.tuner.validate import judge, node_seconds

    assert node_seconds(["a", "b", "a"], [("k1", 1.0), ("k2", 2.0), ("k3", 0.5)]) == {"a": 1.5, "b": 2.0}
    tasks = [SimpleNamespace(key="k", nodes=["a", "c"], weight=2, describe=lambda: "conv k"),
             SimpleNamespace(key="u", nodes=["b"], weight=1, describe=lambda: "conv u"),
             SimpleNamespace(key="none", nodes=["d"], weight=1, describe=lambda: "no record")]
    tuned = [{"a": 1e-6, "b": 5e-6, "c": 1e-6}, {"a": 3e-6, "b": 6e-6, "c": 1e-6}, {"a": 2e-6, "b": 4e-6, "c": 1e-6}]
    plain = [{"a": 2e-6, "b": 1e-6, "c": 2e-6}] * 3
    verdicts = {v.key: v for v in judge(tasks, {"k": {"wg": 8}, "u": {"wg": 16}}, tuned, plain)}
    assert set(verdicts) == {"k", "u"}
    assert verdicts["k"].record_us == pytest.approx(3.0) and verdicts["k"].default_us == pytest.approx(4.0)
    assert verdicts["k"].kept and not verdicts["u"].kept


def test_validate_marks_records_and_compiles_skip_the_rejected(tmp_path, model_path: str, tasks, capsys) -> None:
    """`visc records validate`: every launch names its ONNX node, each record gets a verdict
    from in-model profiles, the verdicts land in the database, and its best records are then
    exactly those not rejected; --out exports them."""
    from visc.tools.visc_cli import main as cli
    from visc.tuner.validate import IN_MODEL_ATTR, validate_records

    model = compile_model(model_path)
    assert all(launch.node for launch in model.plan.launches)
    db = str(tmp_path / "v.db")
    device = device_identity("opencl")
    for task in tasks:
        tune_task(task, Measurer(task.module_text, "opencl", repeat=1), db, device, trials=3, sampler="random",
                  seed=1)
    validation = validate_records(model_path, db, repeat=3)
    verdicts = validation.verdicts
    assert {v.key for v in verdicts} == {t.key for t in tasks}
    assert all(v.record_us > 0 and v.default_us > 0 for v in verdicts)
    assert validation.model_ms > 0 and validation.default_model_ms > 0
    assert validation.speedup == pytest.approx(validation.default_model_ms / validation.model_ms)
    out = str(tmp_path / "kept.json")
    assert cli(["records", "validate", model_path, "--records", db, "--repeat", "3", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "beat the heuristic" in printed and "verdicts written to" in printed
    assert "whole model, wall time (median of 3)" in printed
    import optuna

    marked = {s.user_attrs["key"]: s.user_attrs[IN_MODEL_ATTR] for s in optuna.get_all_study_summaries(open_storage(db))}
    rejected = {k for k, v in marked.items() if v["record_us"] >= v["default_us"]}
    assert set(marked) == {t.key for t in tasks}
    assert {r.key for r in best_records(db)} == {t.key for t in tasks} - rejected
    assert {r.key for r in best_records(out)} == {t.key for t in tasks} - rejected
    assert cli(["records", "validate", "--records", db]) != 0
    assert "give the ONNX model" in capsys.readouterr().err


def test_record_book_skips_illegal_records(model_path: str, tasks) -> None:
    imported = import_model(model_path)
    run_passes(imported.module, [*GRAPH_PIPELINE, "vision-bufferize"], imported.weights)
    key = _conv_task(tasks, "c2").key
    book = RecordBook("dev", {key: {"wg": 8, "tile_oc": 3}})  # 3 does not divide 8 channels
    assert book.apply(imported.module) == 0
    book = RecordBook("dev", {key: {"wg": 16, "tile_oc": 2, "tile_ow": 1, "unroll_k": 1, "unroll_win": 1}})
    assert book.apply(imported.module) == 2
    assert sum("schedule" in op.attributes for op in imported.module.walk() if isinstance(op, VisionOp)) == 2


def test_processes_open_a_new_records_file_at_once(tmp_path) -> None:
    """Processes that open one new SQLite file together race to create its schema; each
    retries instead of failing (this race made the SIGKILL test flaky)."""
    db = str(tmp_path / "race.db")
    code = ("import sys, time; from visc.tuner.search import open_storage; import optuna; "
            "time.sleep(max(0.0, float(sys.argv[3]) - time.time())); "  # all open at once, imports done
            "s = open_storage(sys.argv[1]); optuna.create_study(storage=s, study_name=sys.argv[2])")
    start = str(time.time() + 4)
    procs = [subprocess.Popen([sys.executable, "-c", code, db, f"s{i}", start], stderr=subprocess.PIPE)
             for i in range(6)]
    errors = [p.communicate()[1].decode()[-500:] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    import optuna

    assert len(optuna.get_all_study_summaries(open_storage(db))) == 6


def test_sigkill_keeps_finished_trials(tmp_path, model_path: str, tasks) -> None:
    import optuna
    from optuna.trial import TrialState

    db = str(tmp_path / "k.db")
    cmd = [sys.executable, "-m", "visc.tools.visc_cli", "tune", model_path, "--trials", "500", "--records", db,
           "--repeat", "1", "--no-isolation", "--ops", "conv2d"]
    log = open(tmp_path / "tune.log", "w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    storage = None
    done: list = []
    deadline = time.time() + 90
    try:
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if os.path.exists(db):
                try:
                    storage = storage or open_storage(db)
                    studies = optuna.get_all_study_summaries(storage)
                    if studies:
                        study = optuna.load_study(study_name=studies[0].study_name, storage=storage)
                        done = study.get_trials(states=(TrialState.COMPLETE,))
                except Exception:  # the schema may be half created
                    continue
                if len(done) >= 4:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    log.seek(0)
    assert len(done) >= 4, f"the tuning subprocess did not finish 4 trials in time:\n{log.read()[-3000:]}"
    storage = open_storage(db)
    name = optuna.get_all_study_summaries(storage)[0].study_name
    study = optuna.load_study(study_name=name, storage=storage)
    after = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert all(after[t.number] == t.value for t in done)
    task = next(t for t in tasks if study.user_attrs["key"] == t.key)
    in_flight = {t.number for t in study.get_trials(states=(TrialState.RUNNING,))}
    assert len(in_flight) <= 1  # at most the trial in flight is lost
    measured = sum(1 for t in study.get_trials() if is_measured(t))
    result = tune_task(task, Measurer(task.module_text, "opencl", repeat=1), storage,
                       study.user_attrs["device"], trials=measured + 2, resume=True)
    assert result.measured == measured + 2 and result.interrupted == len(in_flight)
    resumed_study = optuna.load_study(study_name=name, storage=storage)
    resumed = {t.number: t.value for t in resumed_study.get_trials(states=(TrialState.COMPLETE,))}
    assert all(resumed[n] == v for n, v in after.items())
    assert not resumed_study.get_trials(states=(TrialState.RUNNING,))  # the dead run's trial was reaped
    for t in resumed_study.get_trials():
        if t.number in in_flight:
            assert t.state == TrialState.FAIL and "interrupted" in t.user_attrs and not is_measured(t)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_running_trials_do_not_block_resume(tmp_path, tasks, conv_measurer: Measurer) -> None:
    """RUNNING trials of dead runs (this host: dead pid; another host: old heartbeat) are
    reaped FAIL/interrupted and cost nothing; a live run's trial is left alone; an
    interrupted default trial is measured again."""
    import optuna
    from optuna.trial import TrialState

    from visc.tuner.search import HEARTBEAT_GRACE

    db = str(tmp_path / "s.db")
    task = _conv_task(tasks, "c2")
    device = device_identity("opencl")
    tune_task(task, conv_measurer, db, device, trials=0, sampler="random", seed=0)  # queues the default
    storage = open_storage(db)
    study = optuna.load_study(study_name=f"{device}|{task.key}|random", storage=storage)
    dists = {k: optuna.distributions.IntDistribution(0, len(v) - 1) for k, v in conv_measurer.space().choices.items()}
    host = __import__("socket").gethostname()
    stale = []
    for owner, beat in (({"host": host, "pid": _dead_pid(), "start": ""}, time.time()),
                        ({"host": "elsewhere", "pid": 1, "start": ""}, time.time() - 2 * HEARTBEAT_GRACE),
                        ({"host": "elsewhere", "pid": 1, "start": ""}, time.time())):
        t = study.ask(dists)  # the first is the queued default trial, "in flight" when its run died
        t.set_user_attr("owner", owner)
        t.set_user_attr("alive_at", beat)
        stale.append(t.number)
    assert study.trials[stale[0]].user_attrs.get("default")
    r = tune_task(task, conv_measurer, storage, device, trials=3, sampler="random", seed=0, resume=True)
    assert r.measured == 3 and r.interrupted == 2
    states = {t.number: t for t in study.get_trials()}
    assert states[stale[0]].state == states[stale[1]].state == TrialState.FAIL
    assert "interrupted" in states[stale[0]].user_attrs and "interrupted" in states[stale[1]].user_attrs
    assert states[stale[2]].state == TrialState.RUNNING  # a live worker elsewhere: not touched
    again = [t for t in study.get_trials() if t.user_attrs.get("default") and is_measured(t)]
    default = conv_measurer.default_schedule
    assert len(again) == 1 and {k: trial_schedule(again[0])[k] for k in default} == default


def test_studies_without_the_default_first(tmp_path, tasks, conv_measurer: Measurer) -> None:
    """start_with_default=False: every trial is the sampler's own; the default is still
    measured as the study's baseline."""
    import optuna

    db = str(tmp_path / "n.db")
    task = _conv_task(tasks, "c2")
    device = device_identity("opencl")
    r = tune_task(task, conv_measurer, db, device, trials=3, sampler="tpe", seed=1, start_with_default=False)
    assert r.measured == 3 and r.default_seconds is not None and r.default_seconds > 0
    study = optuna.load_study(study_name=f"{device}|{task.key}|tpe", storage=open_storage(db))
    measured = [t for t in study.get_trials() if is_measured(t)]
    assert len(measured) == 3 and not any(t.user_attrs.get("default") for t in measured)
    assert all(t.user_attrs.get("startup") for t in measured)


class LuckyFirstMeasurer:
    """Each schedule's first measurement is a lucky draw (half its time); confirming runs
    give its time, or fail when `fail_again`."""

    def __init__(self, inner: Measurer, fail_again: bool = False):
        self.inner, self.fail_again = inner, fail_again
        self.default_schedule = inner.default_schedule
        self.calls: list[int] = []

    def space(self):
        return self.inner.space()

    @staticmethod
    def base(schedule) -> float:
        import zlib

        from visc.tuner.space import signature

        return 1e-3 * (1 + zlib.crc32(signature(schedule).encode()) % 50 / 10)

    def measure(self, schedule, again: int = 0):
        from visc.tuner.measure import Measurement

        self.calls.append(again)
        if again and self.fail_again:
            return Measurement(None, "wrong result: output 0 differs from the default schedule's")
        t = self.base(schedule) * (1.0 if again else 0.5)
        return Measurement(t, None, [t] * 3)


def test_confirm_retimes_trials_near_the_best(tmp_path, tasks, conv_measurer: Measurer) -> None:
    """confirm=2: a trial within 10% of the best so far is measured twice more and told the
    median of all its runs, so a lucky first draw does not become the best; trials far from
    the best are measured once."""
    import optuna
    from optuna.trial import TrialState

    from visc.tuner.search import CONFIRM_WITHIN

    db = str(tmp_path / "c.db")
    task = _conv_task(tasks, "c2")
    device = device_identity("opencl")
    lucky = LuckyFirstMeasurer(conv_measurer)
    r = tune_task(task, lucky, db, device, trials=12, sampler="random", seed=4, confirm=2)
    study = optuna.load_study(study_name=f"{device}|{task.key}|random", storage=open_storage(db))
    measured = [t for t in study.get_trials() if is_measured(t)]
    assert len(measured) == 12 and all(t.state == TrialState.COMPLETE for t in measured)
    best = None
    for t in measured:
        base = lucky.base(trial_schedule(t))
        if "confirmed" in t.user_attrs:
            assert t.value == pytest.approx(base) and len(t.user_attrs["times"]) == 9
            assert best is None or base / 2 <= best * (1 + CONFIRM_WITHIN)
        else:
            assert t.value == pytest.approx(base / 2) and base / 2 > best * (1 + CONFIRM_WITHIN)
        best = t.value if best is None else min(best, t.value)
    assert "confirmed" in measured[0].user_attrs and any("confirmed" not in t.user_attrs for t in measured)
    assert r.best_seconds == pytest.approx(best)
    assert lucky.calls.count(1) == lucky.calls.count(2) == sum("confirmed" in t.user_attrs for t in measured)

    failing = LuckyFirstMeasurer(conv_measurer, fail_again=True)
    r = tune_task(task, failing, str(tmp_path / "f.db"), device, trials=2, sampler="random", seed=4, confirm=2)
    study = optuna.load_study(study_name=f"{device}|{task.key}|random", storage=open_storage(str(tmp_path / "f.db")))
    first = next(t for t in study.get_trials() if is_measured(t))
    assert first.state == TrialState.FAIL and first.user_attrs["error"].startswith("confirming run 1: wrong result")
    assert r.failed == 2 and r.best_seconds is None  # with no best yet, every trial is confirmed


def test_tpe_startup_and_encoding(tmp_path, tasks, conv_measurer: Measurer) -> None:
    """Params are the tree's branch and indices into ordered candidates; TPE's random startup
    is legal schedules only (the default first); rejected proposals are pruned, infeasible and
    free."""
    import optuna
    from optuna.trial import TrialState

    assert ordered_choices("unroll_k", [1, 2, 4, 8, 0]) == [1, 2, 4, 8, 0]
    assert ordered_choices("unroll_win", [0, 1]) == [1, 0]
    assert ordered_choices("wg", [64, 8, 16]) == [8, 16, 64]
    assert startup_trials(16) == 4 and startup_trials(64) == 8
    db = str(tmp_path / "e.db")
    task = _conv_task(tasks, "c2")
    device = device_identity("opencl")
    r = tune_task(task, conv_measurer, db, device, trials=10, sampler="tpe", seed=3)
    assert r.measured == 10
    study = optuna.load_study(study_name=f"{device}|{task.key}|tpe", storage=open_storage(db))
    trials = study.get_trials()
    space = conv_measurer.space()
    measured = [t for t in trials if is_measured(t)]
    default = conv_measurer.default_schedule
    assert measured[0].user_attrs.get("default")
    assert {k: trial_schedule(measured[0])[k] for k in default} == default
    assert all(t.user_attrs.get("startup") for t in measured[1:startup_trials(10)])
    for t in trials:
        sched = trial_schedule(t)
        assert space.propose(lambda param, n: t.params[param]) == sched  # noqa: B023 - called here
        assert space.params(sched) == t.params
        if t.state == TrialState.PRUNED:
            assert space.problems(sched) and "invalid" in t.user_attrs
        else:
            assert not space.problems(sched)
    best = min((t for t in measured if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert r.best_schedule == trial_schedule(best)


def test_space_neighbors_move_one_key_one_step(conv_measurer: Measurer) -> None:
    space = conv_measurer.space()
    sched = conv_measurer.default_schedule
    near = space.neighbors(sched)
    assert near
    (branch,) = [b for b in space.branches if b.values_of(sched) is not None]
    here = branch.values_of(sched)
    for n in near:
        assert not space.problems(n)
        there = branch.values_of(n)
        moved = [k for k in here if here[k] != there[k]]
        assert len(moved) == 1
        vs = branch.choices[moved[0]]
        assert abs(vs.index(here[moved[0]]) - vs.index(there[moved[0]])) == 1


def test_refine_measures_neighbors_of_the_best(tmp_path, tasks, conv_measurer: Measurer) -> None:
    """refine=2: after TPE's random startup, every second measured trial is an unmeasured
    legal neighbor of one of the best trials so far (the best itself unless all of its
    neighbors were measured); TPE proposes the others."""
    import optuna
    from optuna.trial import TrialState

    task = _conv_task(tasks, "c2")
    device = device_identity("opencl")
    db = str(tmp_path / "r.db")
    synthetic = LuckyFirstMeasurer(conv_measurer)
    tune_task(task, synthetic, db, device, trials=14, sampler="tpe", seed=2, refine=2)
    study = optuna.load_study(study_name=f"{device}|{task.key}|tpe", storage=open_storage(db))
    space = conv_measurer.space()
    measured = [t for t in study.get_trials() if is_measured(t)]
    assert len(measured) == 14
    refined = [i for i, t in enumerate(measured) if t.user_attrs.get("refine")]
    start = startup_trials(14)
    assert refined == list(range(start + 1, 14, 2))
    for i in refined:
        earlier = sorted((t for t in measured[:i] if t.state == TrialState.COMPLETE), key=lambda t: t.value)
        near = [signature(n) for t in earlier[:5] for n in space.neighbors(trial_schedule(t))]
        assert signature(trial_schedule(measured[i])) in near
        assert signature(trial_schedule(measured[i])) not in {signature(trial_schedule(t)) for t in measured[:i]}
    best = min((t for t in measured[:refined[0]] if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert signature(trial_schedule(measured[refined[0]])) in [signature(n) for n in space.neighbors(trial_schedule(best))]


def test_transfer_seeds_come_from_the_nearest_other_workloads(tasks, conv_measurer: Measurer) -> None:
    """The seeds are the donors' schedules that are legal in the task's space, nearest
    workload first (c1, a 3x3 conv, before c4, a 1x1); the task's own key, another op kind
    and illegal schedules are never seeds."""
    from visc.tuner.transfer import Donor, Shape, transfer_seeds

    c1, c2, c4, pool = (_conv_task(tasks, n) for n in ("c1+r1", "c2", "c4", "pool"))
    space = conv_measurer.space()
    rng = np.random.default_rng(3)
    legal: list[dict[str, int]] = []
    while len(legal) < 5:
        sched = space.sample(rng, exclude={signature(s) for s in legal})
        assert sched is not None
        legal.append(sched)
    illegal = {**legal[0], "wg": 1 << 20}
    assert space.problems(illegal)
    donors = [Donor(pool.key, pool.describe(), [legal[0]]), Donor(c4.key, c4.describe(), [legal[1], legal[2]]),
              Donor(c2.key, c2.describe(), [legal[3]]), Donor(c1.key, c1.describe(), [illegal, legal[4]])]
    mine = Shape.parse(c2.describe())
    assert mine is not None
    assert mine.distance(Shape.parse(c1.describe())) < mine.distance(Shape.parse(c4.describe()))  # type: ignore[arg-type,operator]
    assert mine.distance(Shape.parse(pool.describe())) is None  # type: ignore[arg-type]
    assert transfer_seeds(c2, space, donors, limit=8) == [legal[4], legal[1], legal[2]]
    assert transfer_seeds(c2, space, donors, limit=2) == [legal[4], legal[1]]
    assert transfer_seeds(c2, space, donors, limit=0) == []


def test_tune_measures_transferred_seeds_first(tmp_path, tasks, conv_measurer: Measurer) -> None:
    """TPE's startup measures the seeds right after the default, tagged ``transfer``; a seed
    measured already is not measured again on resume; random search ignores seeds."""
    import optuna

    task = _conv_task(tasks, "c2")
    device = device_identity("opencl")
    db = str(tmp_path / "t.db")
    space = conv_measurer.space()
    rng = np.random.default_rng(5)
    first = space.sample(rng, exclude={signature(conv_measurer.default_schedule)})
    assert first is not None
    second = space.sample(rng, exclude={signature(first), signature(conv_measurer.default_schedule)})
    assert second is not None
    synthetic = LuckyFirstMeasurer(conv_measurer)
    tune_task(task, synthetic, db, device, trials=6, sampler="tpe", seed=1, seeds=[first, second])
    tune_task(task, synthetic, db, device, trials=9, sampler="tpe", seed=1, resume=True, seeds=[first, second])
    study = optuna.load_study(study_name=f"{device}|{task.key}|tpe", storage=open_storage(db))
    measured = [t for t in study.get_trials() if is_measured(t)]
    assert len(measured) == 9
    assert measured[0].user_attrs.get("default") and [trial_schedule(t) for t in measured[1:3]] == [first, second]
    assert [bool(t.user_attrs.get("transfer")) for t in measured] == [False, True, True] + [False] * 6
    tune_task(task, synthetic, db, device, trials=5, sampler="random", seed=1, seeds=[first, second])
    chance = optuna.load_study(study_name=f"{device}|{task.key}|random", storage=open_storage(db))
    assert not any(t.user_attrs.get("transfer") for t in chance.get_trials())


def test_tune_cli_transfers_from_tasks_tuned_before(tmp_path, model_path: str) -> None:
    """`visc tune` seeds each task's TPE startup with the best schedules of the similar tasks
    its records already hold (here: the model's other convs, tuned first)."""
    import optuna

    from visc.tools.visc_cli import main
    from visc.tuner.records import best_records
    from visc.tuner.transfer import Shape

    db = str(tmp_path / "x.db")
    common = [model_path, "--ops", "conv2d", "--trials", "4", "--repeat", "1", "--records", db, "--no-isolation"]
    assert main(["tune", *common]) == 0
    storage = open_storage(db)
    by_key = {r.key: r for r in best_records(db)}
    summaries = optuna.get_all_study_summaries(storage)
    order = sorted(summaries, key=lambda s: s.datetime_start)
    later = [s for s in order[1:] if s.user_attrs["sampler"] == "tpe"]
    assert later
    seeded = 0
    for summary in later:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        sent = [trial_schedule(t) for t in study.get_trials() if t.user_attrs.get("transfer")]
        mine = Shape.parse(summary.user_attrs["workload"])
        earlier = [by_key[s.user_attrs["key"]] for s in order if s.datetime_start < summary.datetime_start]
        for sched in sent:  # each seed was measured earlier for a workload of the same family
            assert any(r.schedule == sched or sched in [trial_schedule(t) for t in optuna.load_study(
                study_name=r.source, storage=storage).get_trials()] for r in earlier
                if mine is not None and mine.distance(Shape.parse(r.workload)) is not None)  # type: ignore[arg-type]
        seeded += len(sent)
    assert seeded > 0


# ------------------------------------------------------------------------------ plots


def test_tune_plot_png(tmp_path, model_path: str, capsys) -> None:
    pytest.importorskip("matplotlib")
    from visc.tools.visc_cli import main
    from visc.tuner.plot import read_curves

    db, png = str(tmp_path / "p.db"), tmp_path / "p.png"
    common = [model_path, "--ops", "pool2d", "--trials", "3", "--repeat", "1", "--records", db, "--no-isolation"]
    assert main(["tune", *common, "--sampler", "tpe"]) == 0
    assert main(["tune", *common, "--sampler", "random", "--plot", str(png)]) == 0
    assert "plot of 1 tasks" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    (task,) = read_curves(db)
    assert sorted(task.curves) == ["random", "tpe"] and task.default_seconds
    for curve in task.curves.values():
        assert len(curve.times) == 3
        best = curve.best_so_far()
        assert all(a is None or (b is not None and b <= a) for a, b in zip(best, best[1:], strict=False))
        assert curve.trials_to_reach(curve.best) <= 3


def test_plot_without_matplotlib_says_how_to_install(tmp_path, monkeypatch) -> None:
    from visc.tuner.plot import Curve, TaskCurves, plot_curves

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ViscError, match="pip install matplotlib"):
        plot_curves([TaskCurves("d", "k", "w", 1.0, {"tpe": Curve("tpe", [1.0])})], tmp_path / "x.png")


# ------------------------------------------------------------------------------ shipped records


def _ship(directory, device: str, key: str, schedule: dict[str, int], name: str = "dev.json") -> None:
    import json

    from visc.tuner.records import EXPORT_FORMAT

    record = {"device": device, "key": key, "schedule": schedule, "seconds": 1e-5, "workload": "conv",
              "default_seconds": 2e-5, "trials": 8, "source": "test"}
    (directory / name).write_text(json.dumps({"format": EXPORT_FORMAT, "records": [record]}))


_SHIPPED = {"wg": 16, "tile_oc": 2, "tile_ow": 1, "unroll_k": 2, "unroll_win": 1}


def _compile_ir(model_path: str, **kw):
    """The compiled model and its IR after the default schedules were filled."""
    texts: list[str] = []

    def keep(spec: str, module) -> None:
        if spec.startswith("vision-default-schedule"):
            texts.append(str(module))

    return compile_model(model_path, print_ir_after=keep, **kw), texts[0]


def test_shipped_records_apply_for_their_device(tmp_path, monkeypatch, model_path: str, tasks) -> None:
    from visc.dialects.vision import ScheduleAttr
    from visc.tuner.records import SHIPPED_ENV

    key = _conv_task(tasks, "c2").key
    _ship(tmp_path, device_identity("opencl"), key, _SHIPPED)
    monkeypatch.setenv(SHIPPED_ENV, str(tmp_path))
    x = np.random.default_rng(1).standard_normal((1, 4, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    printed = str(ScheduleAttr(_SHIPPED))
    model, ir = _compile_ir(model_path)
    assert model.metadata["tuned_ops"] == 2 and model.metadata["records"] == "shipped:dev.json"  # c2 and c3
    assert ir.count(printed) == 2
    got = model.run([x])[0]
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    off, ir_off = _compile_ir(model_path, records=False)  # turned off: the heuristic everywhere
    assert "tuned_ops" not in off.metadata and printed not in ir_off


def test_shipped_records_of_other_devices_are_ignored(tmp_path, monkeypatch, model_path: str, tasks) -> None:
    from visc.dialects.vision import ScheduleAttr
    from visc.tuner.records import SHIPPED_ENV, RecordBook

    _ship(tmp_path, "opencl:Some Platform:Some Other Device", _conv_task(tasks, "c2").key, _SHIPPED)
    monkeypatch.setenv(SHIPPED_ENV, str(tmp_path))
    assert RecordBook.shipped("opencl") is None
    model, ir = _compile_ir(model_path)
    assert "tuned_ops" not in model.metadata and str(ScheduleAttr(_SHIPPED)) not in ir
    monkeypatch.setenv(SHIPPED_ENV, str(tmp_path / "empty"))  # no shipped files at all
    assert RecordBook.shipped("opencl") is None


def test_corrupt_shipped_records_warn_and_compile(tmp_path, monkeypatch, model_path: str, tasks) -> None:
    from visc.tuner.records import SHIPPED_ENV, ShippedRecordsWarning

    key = _conv_task(tasks, "c2").key
    device = device_identity("opencl")
    _ship(tmp_path, device, key, _SHIPPED, "good.json")
    (tmp_path / "broken.json").write_text('{"format": "visc-tuning-records", "records": [')  # truncated
    (tmp_path / "odd.json").write_text('{"format": "visc-tuning-records", "records": [{"device": "d", "key": 3}]}')
    _ship(tmp_path, device, key, {"wg": 16, "tile_oc": "two"}, "typo.json")
    monkeypatch.setenv(SHIPPED_ENV, str(tmp_path))
    with pytest.warns(ShippedRecordsWarning) as caught:
        model = compile_model(model_path)
    text = " | ".join(str(w.message) for w in caught)
    assert "broken.json" in text and "odd.json" in text and "typo.json" in text and "good.json" not in text
    assert model.metadata["tuned_ops"] == 2  # the readable file still applies


def test_tell_gives_way_when_another_run_finishes_the_trial_first(monkeypatch) -> None:
    """Two runs that popped one queued trial: the one whose tell comes second, even when the
    other's lands between its look at the trial and its own tell, gives way with
    UpdateFinishedTrialError (which the search loop skips), not optuna's ValueError."""
    import optuna
    from optuna.trial import TrialState

    from visc.tuner.search import _tell

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    trial = study.ask()
    storage = study._storage
    real = storage.get_trial
    looks = {"n": 0}

    def racing_look(trial_id: int):
        looks["n"] += 1
        if looks["n"] == 1:  # the look sees it running; the other run tells it right after
            frozen = real(trial_id)
            storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0])
            return frozen
        return real(trial_id)

    monkeypatch.setattr(storage, "get_trial", racing_look)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        _tell(study, trial, 2.0)
    assert real(trial._trial_id).values == [1.0]  # the first run's result stands
