"""Run-time checks: an index input out of range is an error naming the ONNX node, on every
target (the kernel sets a status word the runtime reads after the run), as onnxruntime
rejects it, never a clamped row. Also max pooling's NaN handling against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper
from test_pipeline import needs_cuda, needs_opencl
from test_ptx_backend import lower_for_host

import visc
from visc.errors import PipelineError, RuntimeCheckError
from visc.runtime.plan import Plan

ROWS = 5


def _gather_model(axis: int = 0) -> object:
    """Gather whose indices are a graph input, followed by an op so the gather is not the
    last step (its output feeds a kernel, as in a detector's post-processing)."""
    nodes = [helper.make_node("Gather", ["data", "idx"], ["g"], axis=axis, name="pick_rows"),
             helper.make_node("Relu", ["g"], ["y"], name="after")]
    shape = [ROWS, 3] if axis == 0 else [3, ROWS]
    return make_model(nodes, {"data": (shape, np.float32), "idx": ([2, 2], np.int64)}, ["y"])


def _data(axis: int = 0) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_normal((ROWS, 3) if axis == 0 else (3, ROWS)).astype(np.float32)


GOOD = np.array([[0, -1], [ROWS - 1, -ROWS]], np.int64)
BAD = np.array([[0, 99], [1, 2]], np.int64)


def _check_target(run, model) -> None:
    """Valid indices (negatives wrap) match onnxruntime; 99 raises naming the node and the
    value; the next valid run is clean again (the word was reset)."""
    data = _data()
    want = run_onnxruntime(model, {"data": data, "idx": GOOD})[0]
    np.testing.assert_allclose(run([data, GOOD])[0], want, rtol=1e-6)
    with pytest.raises(RuntimeCheckError) as err:
        run([data, BAD])
    text = str(err.value)
    assert "Gather node 'pick_rows'" in text and "got 99" in text and f"-{ROWS} to {ROWS - 1}" in text, text
    np.testing.assert_allclose(run([data, GOOD])[0], want, rtol=1e-6)


@pytest.mark.parametrize("target", ["cpu", pytest.param("opencl", marks=needs_opencl)])
def test_gather_index_out_of_range_is_an_error(target: str) -> None:
    model = _gather_model()
    compiled = visc.compile(model, target=target)
    assert [(c.node, c.op) for c in compiled.plan.checks] == [("pick_rows", "Gather")]
    _check_target(compiled.run, model)


def test_onnxruntime_rejects_the_same_index() -> None:
    """The behaviour the checks copy: onnxruntime fails the run rather than clamp."""
    sess = ort.InferenceSession(_gather_model().SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="out of data bounds, idx=99"):
        sess.run(None, {"data": _data(), "idx": BAD})


def test_gather_check_on_the_cuda_lowering_run_on_the_host() -> None:
    """The CUDA pipeline's kernels (NVVM lowering, run on the CPU) set the same word."""
    model = _gather_model()
    host = lower_for_host(model)
    _check_target(host.run, model)


@pytest.mark.cuda
@needs_cuda
def test_gather_index_out_of_range_on_cuda() -> None:
    model = _gather_model()
    _check_target(visc.compile(model, target="cuda").run, model)


def test_negative_index_below_range_is_an_error() -> None:
    model = _gather_model(axis=1)
    compiled = visc.compile(model, target="cpu")
    with pytest.raises(RuntimeCheckError, match=r"axis 1 has 5 entries.*got -6"):
        compiled.run([_data(axis=1), np.array([[0, -6], [1, 2]], np.int64)])


def test_constant_indices_need_no_check() -> None:
    """Constant indices were checked at import: no status word, no read after the run."""
    nodes = [helper.make_node("Gather", ["data", "idx"], ["y"], axis=0, name="const_pick")]
    model = make_model(nodes, {"data": ([ROWS, 3], np.float32)}, ["y"], {"idx": np.array([4, -5], np.int64)})
    compiled = visc.compile(model, target="cpu")
    assert compiled.plan.checks == []
    data = _data()
    np.testing.assert_allclose(compiled.run(data)[0], data[[4, -5]])


def test_checks_survive_the_artifact(tmp_path) -> None:
    compiled = visc.compile(_gather_model(), target="cpu")
    path = str(tmp_path / "g.visc")
    compiled.save(path)
    loaded = visc.load(path)
    assert Plan.from_json(compiled.plan.to_json()).checks == compiled.plan.checks
    with pytest.raises(RuntimeCheckError, match="pick_rows"):
        loaded.run([_data(), BAD])


@needs_opencl
def test_gather_on_the_cpu_fallback_of_an_opencl_plan() -> None:
    """A mixed plan: the gather placed on the CPU, its neighbours on OpenCL."""
    model = _gather_model()
    compiled = visc.compile(model, target="opencl", fallback=["Gather"])
    assert compiled.plan.on_cpu()
    _check_target(compiled.run, model)


def test_a_pipeline_stage_names_the_node() -> None:
    model = _gather_model()
    pipe = visc.pipeline(model, stages=[visc.Stage(target="cpu", until="pick_rows"), visc.Stage(target="cpu")])
    try:
        data = _data()
        np.testing.assert_allclose(pipe.run({"data": data, "idx": GOOD})[0],
                                   run_onnxruntime(model, {"data": data, "idx": GOOD})[0], rtol=1e-6)
        with pytest.raises(PipelineError) as err:
            pipe.run({"data": data, "idx": BAD})
        assert "pick_rows" in str(err.value) and "got 99" in str(err.value), str(err.value)
    finally:
        pipe.close()


@pytest.mark.parametrize("target", ["cpu", pytest.param("opencl", marks=needs_opencl), "cuda-host"])
def test_roi_align_batch_index_out_of_range(target: str) -> None:
    nodes = [helper.make_node("RoiAlign", ["x", "rois", "bi"], ["y"], output_height=2, output_width=2,
                              name="crop")]
    model = make_model(nodes, {"x": ([2, 3, 8, 8], np.float32), "rois": ([2, 4], np.float32),
                               "bi": ([2], np.int64)}, ["y"])
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    rois = np.array([[0, 0, 4, 4], [1, 2, 7, 6]], np.float32)
    run = lower_for_host(model).run if target == "cuda-host" else visc.compile(model, target=target).run
    good = np.array([1, 0], np.int64)
    np.testing.assert_allclose(run([x, rois, good])[0], run_onnxruntime(model, {"x": x, "rois": rois, "bi": good})[0],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeCheckError, match=r"RoiAlign node 'crop': batch index out of range.*got 2"):
        run([x, rois, np.array([0, 2], np.int64)])


def _indexed_model(op: str) -> tuple[object, dict[str, np.ndarray], np.ndarray, np.ndarray, str]:
    """(model, other feeds, good indices, bad indices, what the error must say) for each
    op that reads or writes at indices given as data."""
    rng = np.random.default_rng(11)
    data = rng.standard_normal((4, 3)).astype(np.float32)
    if op == "GatherElements":
        node = helper.make_node(op, ["data", "idx"], ["y"], axis=0, name="elements")
        shapes = {"data": ([4, 3], np.float32), "idx": ([2, 3], np.int64)}
        good, bad = np.array([[0, -1, 3], [2, 1, -4]]), np.array([[0, 1, 2], [3, 4, 0]])
        return make_model([node], shapes, ["y"]), {"data": data}, good, bad, "GatherElements node 'elements'.*got 4"
    if op == "GatherND":
        node = helper.make_node(op, ["data", "idx"], ["y"], name="tuples")
        shapes = {"data": ([4, 3], np.float32), "idx": ([2, 2], np.int64)}
        good, bad = np.array([[3, 2], [-1, -3]]), np.array([[0, 0], [1, 3]])
        return make_model([node], shapes, ["y"]), {"data": data}, good, bad, r"GatherND node 'tuples'.*axis 1: -3 to 2.*got 3"
    node = helper.make_node(op, ["data", "idx", "upd"], ["y"], reduction="add", name="scatter")
    shapes = {"data": ([4, 3], np.float32), "idx": ([3, 1], np.int64), "upd": ([3, 3], np.float32)}
    feeds = {"data": data, "upd": rng.standard_normal((3, 3)).astype(np.float32)}
    good, bad = np.array([[1], [-1], [1]]), np.array([[1], [-5], [0]])
    return make_model([node], shapes, ["y"], opset=18), feeds, good, bad, "ScatterND node 'scatter'.*got -5"


@pytest.mark.parametrize("op", ["GatherElements", "GatherND", "ScatterND"])
@pytest.mark.parametrize("target", ["cpu", pytest.param("opencl", marks=needs_opencl), "cuda-host"])
def test_indexed_ops_check_their_indices(op: str, target: str) -> None:
    model, feeds, good, bad, says = _indexed_model(op)
    names = [i.name for i in model.graph.input]
    run = lower_for_host(model).run if target == "cuda-host" else visc.compile(model, target=target).run

    def inputs(idx: np.ndarray) -> list[np.ndarray]:
        return [idx.astype(np.int64) if n == "idx" else feeds[n] for n in names]

    want = run_onnxruntime(model, {**feeds, "idx": good.astype(np.int64)})[0]
    np.testing.assert_allclose(run(inputs(good))[0], want, rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeCheckError, match=says):
        run(inputs(bad))
    np.testing.assert_allclose(run(inputs(good))[0], want, rtol=1e-6, atol=1e-6)


# -- max pooling skips NaN as onnxruntime does -------------------------------------------------

# IEEE maxNum per window: NaN taps are skipped, a window of NaN only stays NaN. onnxruntime's
# vector max keeps a NaN only when it is a window's last tap (an artifact of operand order),
# so no window here ends in NaN unless all its taps are NaN.
WINDOWS = np.array([[np.nan, 1, np.inf, -np.inf], [1, np.nan, 2, 3], [np.nan] * 4, [0.5, np.nan, -2, 7]],
                   np.float32).reshape(1, 4, 2, 2)


@pytest.mark.parametrize("op", ["MaxPool", "GlobalMaxPool"])
@pytest.mark.parametrize("target", ["cpu", pytest.param("opencl", marks=needs_opencl), "cuda-host"])
def test_max_pool_skips_nan_like_onnxruntime(op: str, target: str) -> None:
    attrs = {"kernel_shape": [2, 2]} if op == "MaxPool" else {}
    model = make_model([helper.make_node(op, ["x"], ["y"], name="pool", **attrs)], {"x": ([1, 4, 2, 2], np.float32)},
                       ["y"])
    want = run_onnxruntime(model, {"x": WINDOWS})[0]
    got = (lower_for_host(model).run([WINDOWS]) if target == "cuda-host"
           else visc.compile(model, target=target).run(WINDOWS))[0]
    assert want.ravel().tolist()[:2] == [np.inf, 3.0]  # the case the issue names
    np.testing.assert_array_equal(got, want)
