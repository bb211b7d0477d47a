"""The CPU backend (llvmlite): whole models and ONNX node cases on `--target cpu` match
onnxruntime / the cases' own outputs, and the artifact reloads (LLVM IR rebuilt at load)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx_node_cases import supported_cases
from test_onnx_node_cases import check_node_case

import visc
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.visc_cli import random_inputs, rel_error

SLOW_MODELS = {"vgg19", "zfnet512", "bvlc_alexnet", "densenet121", "inception_v2"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_MODELS else n
                                  for n in LIGHT_MODELS])
def test_light_model_on_cpu(name: str) -> None:
    onnx_model = load_light_model(name, seed=3)
    model = visc.compile(onnx_model, target="cpu")
    inputs = random_inputs(model.plan.inputs, seed=7)
    got = model.run(inputs)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(onnx_model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    want = sess.run(None, dict(zip(model.input_names, inputs, strict=True)))
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and np.abs(w).max() > 0
        assert rel_error(g, w) <= 1e-4, f"{name}: relative error {rel_error(g, w):.2e}"


VISION_OPS = ("nonmaxsuppression", "top_k", "argmax", "roialign")
BROAD = ("conv", "relu", "maxpool", "averagepool", "gemm", "matmul", "softmax", "concat", "transpose", "resize",
         "reduce_mean", "sigmoid", "add", "mul", "pad", "slice", "gather", "batchnorm", "argmin", "cumsum",
         "scatternd")
# one or two prefixes per family of the ops issue 19 added
MODERN = ("layer_normalization_3d", "instancenorm", "group_normalization", "gelu", "einsum", "depthtospace",
          "spacetodepth_crd", "tile", "mod_mixed_sign", "mod_float", "floor", "ceil", "round", "reciprocal", "not",
          "and2d", "or2d", "xor2d", "less_bcast", "less_equal_bcast", "greater_bcast", "greater_equal_bcast",
          "reduce_prod_do_not", "reduce_l1_do_not", "reduce_l2_do_not", "reduce_log_sum_exp_do_not",
          "reduce_log_sum_asc", "reduce_sum_square_do_not", "sin", "acos", "celu", "mish", "swish",
          "softsign_example", "shrink_hard", "sign", "thresholdedrelu_example", "isinf_negative", "isnan",
          "castlike_DOUBLE_to_FLOAT", "lppool_2d_default")
MODERN_OPS = ("LayerNormalization", "InstanceNormalization", "GroupNormalization", "Gelu", "Einsum", "DepthToSpace",
              "SpaceToDepth", "Tile", "Mod", "Floor", "Ceil", "Round", "Reciprocal", "Not", "And", "Or", "Less",
              "LessOrEqual", "Greater", "GreaterOrEqual", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSumExp")
CASES = [c for c in supported_cases() if any(c.name.startswith(f"test_{p}") for p in VISION_OPS + BROAD + MODERN)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case_on_cpu(case) -> None:
    check_node_case(case, visc_target="cpu")


def test_vision_node_cases_are_covered() -> None:
    names = {c.name for c in CASES}
    for op in VISION_OPS:
        assert any(n.startswith(f"test_{op}") for n in names), op


def test_issue_19_ops_run_on_cpu() -> None:
    """Every op issue 19 names (but the indexing ops) is in some node case run here."""
    used = {node.op_type for c in CASES for node in c.model.graph.node}
    assert not set(MODERN_OPS) - used


def test_cpu_artifact_round_trip(tmp_path) -> None:
    onnx_model = load_light_model("squeezenet", seed=1)
    model = visc.compile(onnx_model, target="cpu")
    inputs = random_inputs(model.plan.inputs, seed=2)
    want = model.run(inputs)
    path = str(tmp_path / "m.visc")
    model.save(path)
    loaded = visc.load(path)
    assert loaded.target == "cpu"
    for g, w in zip(loaded.run(inputs), want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_runner_and_benchmark_run_the_model() -> None:
    """`runner` (what the benchmarks time) computes what `run` does; `benchmark` reports
    positive latencies over the runs asked for."""
    model = visc.compile(load_light_model("squeezenet", seed=4), target="cpu")
    inputs = random_inputs(model.plan.inputs, seed=5)
    want = model.run(inputs)
    got = model.runner(inputs)()
    assert np.abs(want[0]).max() > 0
    np.testing.assert_array_equal(got[0], want[0])
    stats = model.benchmark(inputs, warmup=1, repeat=3)
    assert stats["repeat"] == 3 and 0 < stats["min"] <= stats["median"]


@pytest.fixture(scope="module")
def squeezenet_cpu():
    onnx_model = load_light_model("squeezenet", seed=6)
    return onnx_model, visc.compile(onnx_model, target="cpu")


def _executors(model, *threads: int):
    from visc.runtime.cpu import CPUExecutor

    return [CPUExecutor(model.plan, model.sources["cpu"], model.weights, threads=t) for t in threads]


def test_spinning_workers_match_one_thread_and_wake_from_sleep(squeezenet_cpu) -> None:
    """Chunks on 1, 2 and 4 workers compute what one thread does; a worker idle past its
    spin budget sleeps (its state word says so) and the next launch wakes it."""
    import time

    from visc.runtime.cpu_workers import STATE

    _, model = squeezenet_cpu
    inputs = random_inputs(model.plan.inputs, seed=8)
    one, two, five = _executors(model, 1, 2, 5)
    want = one.run(inputs)[0]
    assert np.abs(want).max() > 0 and one.pool is None
    for ex in (two, five):
        np.testing.assert_array_equal(ex.run(inputs)[0], want)
    time.sleep(0.2)  # far past SPINS polls
    assert all(five.pool.ctxs[:, STATE] == 1)
    for ex in (two, five):
        np.testing.assert_array_equal(ex.run(inputs)[0], want)


def test_napping_workers_without_futexes(squeezenet_cpu, monkeypatch) -> None:
    """Where there is no futex (VISC_CPU_FUTEX=0 stands in for a non-Linux host) idle workers
    nap in native code and still pick up the next launch; on Linux x86-64/aarch64 the
    default build sleeps on futexes."""
    import platform
    import sys
    import time

    from visc.runtime.cpu_workers import STATE, futex_syscall

    _, model = squeezenet_cpu
    inputs = random_inputs(model.plan.inputs, seed=9)
    (one,) = _executors(model, 1)
    want = one.run(inputs)[0]
    if sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "aarch64"):
        assert futex_syscall() is not None and "@syscall" in one.compiled.runtime_ir
    monkeypatch.setenv("VISC_CPU_FUTEX", "0")
    assert futex_syscall() is None
    (three,) = _executors(model, 3)
    assert "@syscall" not in three.compiled.runtime_ir and "@usleep" in three.compiled.runtime_ir
    np.testing.assert_array_equal(three.run(inputs)[0], want)
    time.sleep(0.2)
    assert all(three.pool.ctxs[:, STATE] == 1)
    for _ in range(3):
        np.testing.assert_array_equal(three.run(inputs)[0], want)
    three.close()
    assert not any(t.is_alive() for t in three.pool.threads)


def test_frames_on_two_slots_at_once_share_the_pool(squeezenet_cpu) -> None:
    """Two threads running frames on two slots of one executor: a launch that finds the
    pool taken runs alone in its caller, and both frames still match one thread's."""
    import threading

    _, model = squeezenet_cpu
    inputs = [random_inputs(model.plan.inputs, seed=s) for s in (10, 11)]
    (one,) = _executors(model, 1)
    want = [one.run(x)[0] for x in inputs]
    from visc.runtime.cpu import CPUExecutor

    ex = CPUExecutor(model.plan, model.sources["cpu"], model.weights, threads=2, slots=2)
    got: dict[int, list[np.ndarray]] = {0: [], 1: []}

    def frames(slot: int) -> None:
        for _ in range(20):
            got[slot].append(ex.run(inputs[slot], slot)[0])

    threads = [threading.Thread(target=frames, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for slot in (0, 1):
        assert len(got[slot]) == 20
        for g in got[slot]:
            np.testing.assert_array_equal(g, want[slot])
    ex.close()


def test_frames_without_the_pool_when_it_was_slower(squeezenet_cpu) -> None:
    """A run of launches whose pooled frames were slower than the calling thread alone (a
    worker's core taken) runs without waking the workers, and still matches one thread."""
    from visc.runtime.cpu_workers import EPOCH

    _, model = squeezenet_cpu
    inputs = random_inputs(model.plan.inputs, seed=12)
    one, three = _executors(model, 1, 3)
    want = one.run(inputs)[0]
    np.testing.assert_array_equal(three.run(inputs)[0], want)
    (choice,) = three._slots[0].choices.values()
    choice.alone, choice.since = True, 0
    choice.single.extend([0.0] * 3)
    epochs = three.pool.ctxs[:, EPOCH].copy()
    for _ in range(3):
        np.testing.assert_array_equal(three.run(inputs)[0], want)
    np.testing.assert_array_equal(three.pool.ctxs[:, EPOCH], epochs)
    choice.since = choice.gap  # the pool's turn for a trial
    np.testing.assert_array_equal(three.run(inputs)[0], want)
    assert (three.pool.ctxs[:, EPOCH] > epochs).all()
    three.close()


def test_collected_executor_stops_its_workers(squeezenet_cpu) -> None:
    import gc

    _, model = squeezenet_cpu
    (ex,) = _executors(model, 3)
    ex.run(random_inputs(model.plan.inputs, seed=1))
    threads = list(ex.pool.threads)
    assert len(threads) == 2 and all(t.is_alive() for t in threads)
    del ex
    gc.collect()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)


def test_onnxruntime_peer_in_its_own_process(squeezenet_cpu) -> None:
    """The benchmarks' peer: onnxruntime in a child process gives the outputs of an
    in-process session and times its own runs."""
    from visc.runtime.bench import OrtProcess, interleaved_medians

    onnx_model, model = squeezenet_cpu
    inputs = random_inputs(model.plan.inputs, seed=3)
    feeds = dict(zip(model.input_names, inputs, strict=True))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    want = ort.InferenceSession(onnx_model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"]).run(None, feeds)
    with OrtProcess(onnx_model.SerializeToString(), feeds, threads=1) as peer:
        got = peer.outputs()
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
        times = peer.timed(3)
        assert len(times) == 3 and min(times) > 0
        visc_s, ort_s = interleaved_medians([model.runner(inputs), peer], 1, 4, block=2, settle=0.0)
        assert visc_s > 0 and ort_s > 0
