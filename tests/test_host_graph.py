"""`visc.runtime.host_graph.HostGraph`: the host part of a model with data-dependent shapes,
run node by node on onnx's reference evaluator with visc's vectorized kernels for the slow
ops. Each fast kernel against onnxruntime on the ONNX node test cases and on larger random
inputs (ties, thresholds, out-of-map rois), the four torchvision detectors' host parts
against onnxruntime, the errors (Loop/Scan, a bad index naming its node, inputs), the
declared input/output specs, and that importing the runtime imports no onnx."""

from __future__ import annotations

import functools
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
from host_graph_cases import DETECTORS, host_part, outputs_match
from onnx import TensorProto, helper, numpy_helper

from visc.errors import (
    InputShapeError,
    InputTypeError,
    RuntimeCheckError,
    UnsupportedModelError,
    UsageError,
)
from visc.runtime.bench import ort_session
from visc.runtime.host_graph import FAST_OPSETS, HostGraph, HostTensorSpec

OPSET = 18
FAST_OPS = tuple(sorted(FAST_OPSETS))


# -- helpers -----------------------------------------------------------------------------------


def _model(nodes: list[onnx.NodeProto], inputs: list[tuple[str, int, list | None]], outputs: list[str],
           inits: list[onnx.TensorProto] = (), opset: int = OPSET) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "host", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_empty_tensor_value_info(o) for o in outputs], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _node_model(op: str, arrays: dict[str, np.ndarray | None], outputs: int = 1, **attrs: object) -> onnx.ModelProto:
    """A one-node model whose inputs are ``arrays`` (None: an omitted optional input)."""
    names = [n if a is not None else "" for n, a in arrays.items()]
    node = helper.make_node(op, names, [f"y{i}" for i in range(outputs)], name=f"the_{op.lower()}", **attrs)
    inputs = [(n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)) for n, a in arrays.items() if a is not None]
    return _model([node], inputs, [f"y{i}" for i in range(outputs)])


def _both(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(HostGraph's outputs, onnxruntime's) for one model."""
    data = model.SerializeToString()
    graph = HostGraph(data)
    ours = graph.run([feeds[n] for n in graph.input_names])
    theirs = ort_session(data, threads=2).run(None, feeds)
    return ours, theirs


def _assert_same(ours: list[np.ndarray], theirs: list[np.ndarray], rtol: float = 1e-5, atol: float = 1e-6) -> None:
    assert len(ours) == len(theirs)
    for got, want in zip(ours, theirs, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(got, want)


def _check_op(op: str, arrays: dict[str, np.ndarray | None], outputs: int = 1, **attrs: object) -> list[np.ndarray]:
    ours, theirs = _both(_node_model(op, arrays, outputs, **attrs), {k: v for k, v in arrays.items() if v is not None})
    _assert_same(ours, theirs)
    return ours


# -- the ONNX node test cases ------------------------------------------------------------------


@functools.cache
def _node_cases() -> dict[str, onnx.backend.test.case.node.TestCase]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases("")
    return {c.name: c for c in cases if c.model is not None and len(c.model.graph.node) == 1
            and c.model.graph.node[0].op_type in FAST_OPS}


def _case_names() -> list[str]:
    return sorted(_node_cases())


@pytest.mark.parametrize("name", _case_names())
def test_node_case_matches_onnxruntime(name: str) -> None:
    case = _node_cases()[name]
    model = case.model
    graph = HostGraph(model.SerializeToString())
    assert graph.fast_ops, "the case's op should run on a visc kernel"
    try:
        session = ort_session(model.SerializeToString(), threads=2)
    except Exception as e:  # onnxruntime has no kernel for some types (TopK of uint64)
        assert "NOT_IMPLEMENTED" in str(e), e
        session = None
    for inputs, expected in case.data_sets:
        arrays = [numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x) for x in inputs]
        ours = graph.run(arrays)
        if session is not None:
            _assert_same(ours, session.run(None, dict(zip([i.name for i in model.graph.input], arrays, strict=True))))
        for got, want in zip(ours, expected, strict=True):  # the stored outputs (RoiAlign's: 4 digits)
            want = numpy_helper.to_array(want) if isinstance(want, onnx.TensorProto) else np.asarray(want)
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_node_cases_cover_every_fast_op() -> None:
    covered = {c.model.graph.node[0].op_type for c in _node_cases().values()}
    assert covered == set(FAST_OPS)


# -- NonMaxSuppression -------------------------------------------------------------------------


def _boxes(rng: np.random.Generator, batches: int, n: int, center: int, grid: bool = False) -> np.ndarray:
    """Random boxes in a 200x200 image, many overlapping; ``grid`` snaps them to whole pixels
    (ties in IoU and identical boxes)."""
    xy = rng.uniform(0, 200, (batches, n, 2))
    wh = rng.uniform(2, 60, (batches, n, 2))
    if grid:
        xy, wh = np.round(xy / 8) * 8, np.round(wh / 8) * 8
    if center:
        return np.concatenate([xy, wh], axis=2).astype(np.float32)
    corners = np.concatenate([xy, xy + wh], axis=2)[..., [1, 0, 3, 2]]  # y1, x1, y2, x2
    flip = rng.random((batches, n)) < 0.3  # the other diagonal pair of corners
    corners[flip] = corners[flip][:, [2, 3, 0, 1]]
    return corners.astype(np.float32)


NMS_CASES = {
    "2000 boxes, 3 classes, 2 batches": dict(batches=2, n=2000, classes=3, iou=0.5, score=0.2, limit=10**9),
    "center boxes": dict(batches=1, n=2000, classes=2, iou=0.4, score=None, limit=10**9, center=1),
    "limit per class": dict(batches=2, n=1500, classes=4, iou=0.6, score=0.05, limit=25),
    "iou 0": dict(batches=1, n=800, classes=2, iou=0.0, score=0.5, limit=10**9),
    "iou 1": dict(batches=1, n=800, classes=1, iou=1.0, score=None, limit=10**9),
    "tied scores and boxes": dict(batches=1, n=2000, classes=3, iou=0.5, score=0.3, limit=10**9, ties=True),
    "one class of 40 dense clusters (batched-NMS offsets)": dict(batches=1, n=6000, classes=1, iou=0.55,
                                                                 score=None, limit=10**9, offsets=True),
}


@pytest.mark.parametrize("case", list(NMS_CASES))
def test_nms_random_matches_onnxruntime(case: str) -> None:
    c = dict(NMS_CASES[case])
    rng = np.random.default_rng(len(case))
    center = int(c.get("center", 0))
    boxes = _boxes(rng, c["batches"], c["n"], center, grid=bool(c.get("ties")))
    if c.get("offsets"):  # torchvision's batched NMS: 40 classes moved apart, boxes nearly as large as the image
        corners = np.concatenate([rng.uniform(0, 40, (1, c["n"], 2)), rng.uniform(160, 200, (1, c["n"], 2))], axis=2)
        boxes = (corners + (rng.integers(0, 40, c["n"]) * 400)[None, :, None]).astype(np.float32)
    scores = rng.random((c["batches"], c["classes"], c["n"]), dtype=np.float32)
    if c.get("ties"):
        scores = np.round(scores * 8) / 8
    arrays = {"boxes": boxes, "scores": scores, "max_out": np.array([c["limit"]], np.int64),
              "iou": np.array([c["iou"]], np.float32),
              "score": None if c["score"] is None else np.array([c["score"]], np.float32)}
    (selected,) = _check_op("NonMaxSuppression", arrays, center_point_box=center)
    assert selected.shape[0] > 10


def test_nms_chain_of_sliding_boxes_matches_onnxruntime() -> None:
    """Each box overlaps the next few, scores falling along the chain: the greedy's decisions
    depend on each other all the way down (the fixed-point iteration gives up and finishes
    in order)."""
    n = 600
    left = np.arange(n, dtype=np.float32)
    boxes = np.stack([np.zeros(n), left, np.full(n, 10), left + 10], axis=1).astype(np.float32)[None]
    scores = np.linspace(1, 0.1, n, dtype=np.float32)[None, None]
    arrays = {"boxes": boxes, "scores": scores, "max_out": np.array([1000], np.int64),
              "iou": np.array([0.5], np.float32), "score": None}
    (selected,) = _check_op("NonMaxSuppression", arrays)
    np.testing.assert_array_equal(selected[:, 2], np.arange(0, n, 4))


def test_nms_without_optional_inputs_selects_nothing() -> None:
    rng = np.random.default_rng(3)
    arrays = {"boxes": _boxes(rng, 1, 50, 0), "scores": rng.random((1, 2, 50), dtype=np.float32)}
    (selected,) = _check_op("NonMaxSuppression", arrays)
    assert selected.shape == (0, 3)


# -- TopK, GatherND, Gather, ScatterElements, Expand --------------------------------------------


@pytest.mark.parametrize("k", [5, 1000, 60000])
@pytest.mark.parametrize("largest", [1, 0])
def test_topk_100k_with_ties_matches_onnxruntime(k: int, largest: int) -> None:
    rng = np.random.default_rng(k + largest)
    x = np.round(rng.standard_normal((1, 100_000)) * 20).astype(np.float32)  # ~200 distinct values
    _check_op("TopK", {"x": x, "k": np.array([k], np.int64)}, 2, largest=largest)


def test_topk_sample_missing_the_top_matches_onnxruntime() -> None:
    """Large values only where a strided sample looks: the sample's threshold lets fewer than
    k values pass, and the whole row is searched."""
    x = np.zeros((1, 100_000), np.float32)
    x[0, ::12] = np.arange(8334, 0, -1, dtype=np.float32)
    _check_op("TopK", {"x": x, "k": np.array([1000], np.int64)}, 2)
    _check_op("TopK", {"x": -x, "k": np.array([1000], np.int64)}, 2, largest=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_topk_rows_and_axis_match_onnxruntime(dtype: type) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 50, (6, 3000, 4)).astype(dtype)
    for axis, k, largest in ((1, 17, 1), (1, 2500, 0), (-1, 2, 1), (0, 3, 0)):
        _check_op("TopK", {"x": x, "k": np.array([k], np.int64)}, 2, axis=axis, largest=largest)


def test_gathernd_batch_dims_and_negative_indices_match_onnxruntime() -> None:
    rng = np.random.default_rng(8)
    data = rng.standard_normal((3, 5, 40, 6)).astype(np.float32)
    _check_op("GatherND", {"d": data, "i": rng.integers(-3, 3, (1000, 2)).astype(np.int64)})
    _check_op("GatherND", {"d": data, "i": rng.integers(-5, 5, (3, 700, 2)).astype(np.int64)}, batch_dims=1)
    _check_op("GatherND", {"d": data, "i": rng.integers(-40, 40, (3, 5, 9, 1)).astype(np.int64)}, batch_dims=2)
    _check_op("GatherND", {"d": data, "i": rng.integers(0, 3, (20, 4)).astype(np.int64)})


def test_gather_large_matches_onnxruntime() -> None:
    rng = np.random.default_rng(9)
    data = rng.standard_normal((200_000, 4)).astype(np.float32)
    _check_op("Gather", {"d": data, "i": rng.integers(-200_000, 200_000, (5000,)).astype(np.int64)})
    _check_op("Gather", {"d": data, "i": rng.integers(-4, 4, (7, 3)).astype(np.int32)}, axis=1)
    _check_op("Gather", {"d": data, "i": np.array(5, np.int64)})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_matches_onnxruntime(reduction: str) -> None:
    rng = np.random.default_rng(10)
    data = rng.standard_normal((40, 30, 5)).astype(np.float32)
    indices = rng.integers(-30, 30, (40, 20, 5)).astype(np.int64)
    if reduction == "none":  # unique per line: duplicates are unordered in onnxruntime's kernel
        indices = np.argsort(rng.random((40, 30, 5)), axis=1)[:, :20] - 15
    updates = rng.standard_normal(indices.shape).astype(np.float32)
    _check_op("ScatterElements", {"d": data, "i": indices, "u": updates}, axis=1, reduction=reduction)


def test_scatter_elements_of_whole_slices_matches_onnxruntime() -> None:
    """torchvision's RoI pooling: a row index expanded over channels and pixels (a broadcast
    view in HostGraph), rows scattered into a zero tensor."""
    rng = np.random.default_rng(11)
    rows = rng.permutation(150)[:90].astype(np.int64)
    expand = helper.make_node("Expand", ["r", "shape"], ["idx"], name="expand")
    scatter = helper.make_node("ScatterElements", ["d", "idx", "u"], ["y"], name="scatter", axis=0)
    model = _model([expand, scatter], [("d", TensorProto.FLOAT, [150, 16, 7, 7]), ("r", TensorProto.INT64, [90, 1, 1, 1]),
                                       ("u", TensorProto.FLOAT, [90, 16, 7, 7])], ["y"],
                   [numpy_helper.from_array(np.array([90, 16, 7, 7], np.int64), "shape")])
    feeds = {"d": np.zeros((150, 16, 7, 7), np.float32), "r": rows.reshape(90, 1, 1, 1),
             "u": rng.standard_normal((90, 16, 7, 7)).astype(np.float32)}
    _assert_same(*_both(model, feeds))


def test_large_gemm_matches_onnxruntime_and_restores_blas_threads() -> None:
    """A product large enough to run as column blocks on single-threaded BLAS calls."""
    from visc.runtime import host_ops

    rng = np.random.default_rng(15)
    a = rng.standard_normal((300, 2000)).astype(np.float32)
    b = rng.standard_normal((700, 2000)).astype(np.float32)
    c = rng.standard_normal(700).astype(np.float32)
    blas = host_ops._split_setup()[0]
    before = blas.threads() if blas.available else None
    for arrays, attrs in (({"a": a, "b": b, "c": c}, dict(transB=1, alpha=0.5, beta=2.0)),
                          ({"a": np.ascontiguousarray(a.T), "b": np.ascontiguousarray(b.T)}, dict(transA=1))):
        ours, theirs = _both(_node_model("Gemm", arrays, **attrs), arrays)
        _assert_same(ours, theirs, rtol=1e-4, atol=1e-3)
    assert (blas.threads() if blas.available else None) == before


@pytest.mark.parametrize("shapes", [((400, 900), (900, 300)), ((6, 70, 500), (500, 200)),
                                    ((8, 1, 60, 300), (5, 300, 90)), ((3, 4), (4,))])
def test_matmul_matches_onnxruntime(shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    rng = np.random.default_rng(16)
    arrays = {"a": rng.standard_normal(shapes[0]).astype(np.float32),
              "b": rng.standard_normal(shapes[1]).astype(np.float32)}
    ours, theirs = _both(_node_model("MatMul", arrays), arrays)
    _assert_same(ours, theirs, rtol=1e-4, atol=1e-3)


def test_expand_matches_onnxruntime() -> None:
    x = np.arange(6, dtype=np.int64).reshape(3, 1, 2)
    _check_op("Expand", {"x": x, "s": np.array([2, 1, 4, 1], np.int64)})
    _check_op("Expand", {"x": x, "s": np.array([3, 1, 1], np.int64)})


# -- RoiAlign ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("transform", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align_matches_onnxruntime(mode: str, transform: str, sampling_ratio: int) -> None:
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 8, 24, 30)).astype(np.float32)
    corner = rng.uniform(-40, 230, (60, 2))
    size = rng.uniform(0, 120, (60, 2))
    rois = np.concatenate([corner, corner + size], axis=1).astype(np.float32)  # x1, y1, x2, y2; some off the map
    rois[:3, 2:] = rois[:3, :2]  # empty rois: no samples where the grid follows the roi's size
    batch = rng.integers(0, 2, 60).astype(np.int64)
    _check_op("RoiAlign", {"x": x, "rois": rois, "b": batch}, mode=mode, coordinate_transformation_mode=transform,
              output_height=5, output_width=4, sampling_ratio=sampling_ratio, spatial_scale=0.125)


def test_roi_align_large_map_gathers_and_matches_onnxruntime() -> None:
    """A map too large for the per-image matrix products: the channel-vector gathers run."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 16, 150, 180)).astype(np.float32)
    corner = rng.uniform(0, 600, (40, 2))
    rois = np.concatenate([corner, corner + rng.uniform(4, 200, (40, 2))], axis=1).astype(np.float32)
    _check_op("RoiAlign", {"x": x, "rois": rois, "b": np.zeros(40, np.int64)}, output_height=7, output_width=7,
              sampling_ratio=2, spatial_scale=0.25)


# -- the detectors -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_host_part_matches_onnxruntime(name: str) -> None:
    part = host_part(name)
    graph = HostGraph(part.model.SerializeToString())
    assert graph.input_names == list(part.feeds)
    assert graph.output_names == ["boxes", "scores", "labels"]
    got = graph.run(part.inputs)
    assert outputs_match(got, part.expected), [(g.shape, w.shape) for g, w in zip(got, part.expected, strict=True)]
    assert got[0].shape[0] > 0


# -- errors, specs, layering -------------------------------------------------------------------


def _loop_body() -> onnx.GraphProto:
    return helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", ["v"], ["v_out"])],
                             "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                      helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                                      helper.make_tensor_value_info("v", TensorProto.FLOAT, [2])],
                             [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [2])])


def test_loop_is_unsupported_naming_the_node() -> None:
    loop = helper.make_node("Loop", ["n", "", "x"], ["y"], name="decode_loop", body=_loop_body())
    model = _model([loop], [("n", TensorProto.INT64, []), ("x", TensorProto.FLOAT, [2])], ["y"])
    with pytest.raises(UnsupportedModelError, match="Loop node 'decode_loop'.*not supported"):
        HostGraph(model.SerializeToString())


def test_loop_inside_if_is_unsupported_naming_both() -> None:
    loop = helper.make_node("Loop", ["n", "", "x"], ["y"], name="inner_loop", body=_loop_body())
    branch = helper.make_graph([loop], "b", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["z"])], "o", [],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])])
    node = helper.make_node("If", ["c"], ["out"], name="branchy", then_branch=branch, else_branch=other)
    model = _model([node], [("c", TensorProto.BOOL, []), ("n", TensorProto.INT64, []), ("x", TensorProto.FLOAT, [2])],
                   ["out"])
    with pytest.raises(UnsupportedModelError, match="Loop node 'inner_loop' \\(inside If node 'branchy'\\)"):
        HostGraph(model.SerializeToString())


def test_unknown_domain_is_unsupported_naming_the_node() -> None:
    node = helper.make_node("Decode", ["x"], ["y"], name="custom_decode", domain="com.example")
    model = _model([node], [("x", TensorProto.FLOAT, [2])], ["y"])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedModelError, match="Decode node 'custom_decode' of domain 'com.example' has no"):
        HostGraph(model.SerializeToString())


def test_outputs_are_the_callers_and_inputs_may_be_named() -> None:
    """An output that is an initializer or a view of an input comes back as a copy."""
    nodes = [helper.make_node("Identity", ["w"], ["w_out"]), helper.make_node("Reshape", ["x", "s"], ["x_out"])]
    w = np.arange(4, dtype=np.float32)
    model = _model(nodes, [("x", TensorProto.FLOAT, [2, 2])], ["w_out", "x_out"],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([4], np.int64), "s")])
    graph = HostGraph(model.SerializeToString())
    x = np.ones((2, 2), np.float32)
    w_out, x_out = graph.run({"x": x})
    w_out[:] = -1
    x_out[:] = -1
    assert (x == 1).all() and (graph.run([x])[0] == w).all()
    with pytest.raises(InputShapeError, match=r"missing \['x'\], unexpected \['y'\]"):
        graph.run({"y": x})


def test_gather_index_out_of_range_names_the_node() -> None:
    nodes = [helper.make_node("NonZero", ["mask"], ["nz"], name="find"),
             helper.make_node("Gather", ["x", "nz"], ["y"], name="pick_rows", axis=0)]
    model = _model(nodes, [("mask", TensorProto.BOOL, [12]), ("x", TensorProto.FLOAT, [5, 3])], ["y"])
    graph = HostGraph(model.SerializeToString())
    mask = np.zeros(12, bool)
    mask[[1, 9]] = True
    with pytest.raises(RuntimeCheckError, match="Gather node 'pick_rows'.*index 9 .*out of range.*size 5") as info:
        graph.run([mask, np.ones((5, 3), np.float32)])
    assert info.value.node == "pick_rows" and info.value.op_type == "Gather"
    mask[9] = False  # the same graph runs on valid data afterwards
    assert graph.run([mask, np.ones((5, 3), np.float32)])[0].shape == (1, 1, 3)


def test_topk_k_too_large_names_the_node() -> None:
    model = _node_model("TopK", {"x": np.zeros((1, 10), np.float32), "k": np.array([3], np.int64)}, 2)
    graph = HostGraph(model.SerializeToString())
    with pytest.raises(RuntimeCheckError, match="TopK node 'the_topk'.*k=11 is outside 0..10"):
        graph.run([np.zeros((1, 10), np.float32), np.array([11], np.int64)])


def test_error_inside_if_names_the_inner_and_outer_node() -> None:
    gather = helper.make_node("Gather", ["x", "i"], ["g"], name="inner_gather")
    branch = helper.make_graph([gather], "b", [], [helper.make_tensor_value_info("g", TensorProto.FLOAT, None)])
    node = helper.make_node("If", ["c"], ["out"], name="outer_if", then_branch=branch, else_branch=branch)
    model = _model([node], [("c", TensorProto.BOOL, []), ("x", TensorProto.FLOAT, [4]), ("i", TensorProto.INT64, [1])],
                   ["out"])
    graph = HostGraph(model.SerializeToString())
    with pytest.raises(RuntimeCheckError, match="If node 'outer_if' failed in its subgraph: Gather node 'inner_gather' "
                                                "failed on this data: index 7"):
        graph.run([np.array(True), np.zeros(4, np.float32), np.array([7], np.int64)])


def test_inputs_are_checked() -> None:
    model = _model([helper.make_node("NonZero", ["x"], ["y"], name="nz")], [("x", TensorProto.FLOAT, ["n", 4])], ["y"])
    graph = HostGraph(model.SerializeToString())
    assert graph.inputs == [HostTensorSpec("x", (-1, 4), "float32")]
    assert graph.outputs == [HostTensorSpec("y", (2, -1), "int64")]  # from shape inference
    assert graph.run([np.ones((7, 4), np.float32)])[0].shape == (2, 28)  # a dim unknown before the run
    with pytest.raises(InputShapeError, match="takes 1 inputs"):
        graph.run([])
    with pytest.raises(InputTypeError, match="input 'x' has dtype float64"):
        graph.run([np.ones((7, 4))])
    with pytest.raises(InputShapeError, match=r"input 'x' has shape \[7, 5\], the host part takes \['\?', 4\]"):
        graph.run([np.ones((7, 5), np.float32)])


def test_fast_ops_can_be_narrowed_to_the_reference() -> None:
    rng = np.random.default_rng(17)
    arrays = {"boxes": _boxes(rng, 1, 300, 0), "scores": rng.random((1, 2, 300), dtype=np.float32),
              "max_out": np.array([50], np.int64), "iou": np.array([0.5], np.float32)}
    model = _node_model("NonMaxSuppression", arrays).SerializeToString()
    reference = HostGraph(model, fast_ops=())
    assert reference.fast_ops == []
    np.testing.assert_array_equal(reference.run(list(arrays.values()))[0], HostGraph(model).run(list(arrays.values()))[0])
    with pytest.raises(UsageError, match=r"no fast kernel for \['Conv'\]"):
        HostGraph(model, fast_ops=["Conv"])


def test_profile_times_nodes_inside_if_branches() -> None:
    part = host_part("retinanet_resnet50_fpn")
    graph = HostGraph(part.model.SerializeToString())
    times = graph.profile(part.inputs)
    top = [t for t in times if not t.inside]
    assert len(top) == len(part.model.graph.node)
    (nms,) = [t for t in times if t.op_type == "NonMaxSuppression"]
    (branchy,) = [t for t in top if t.op_type == "If"]
    assert nms.inside == branchy.node and 0 < nms.seconds <= branchy.seconds
    assert graph.profile(part.inputs)[0].node == top[0].node  # a profile leaves no state behind


def test_output_specs_keep_declared_dims() -> None:
    part = host_part(DETECTORS[0])
    graph = HostGraph(part.model.SerializeToString())
    assert [s.dtype for s in graph.outputs] == ["float32", "float32", "int64"]
    assert graph.outputs[0].shape == (-1, 4) and not graph.outputs[0].static
    assert all(s.static for s in graph.inputs)


def test_older_opset_keeps_its_roi_align_sampling() -> None:
    """RoiAlign-10 has no coordinate_transformation_mode: it samples as output_half_pixel."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 2, 10, 10)).astype(np.float32)
    rois = np.array([[1.5, 2.0, 7.0, 8.5]], np.float32)
    node = helper.make_node("RoiAlign", ["x", "r", "b"], ["y"], output_height=3, output_width=3)
    model = _model([node], [("x", TensorProto.FLOAT, [1, 2, 10, 10]), ("r", TensorProto.FLOAT, [1, 4]),
                            ("b", TensorProto.INT64, [1])], ["y"], opset=11)
    _assert_same(*_both(model, {"x": x, "r": rois, "b": np.zeros(1, np.int64)}))


def test_importing_the_runtime_imports_no_onnx() -> None:
    code = ("import sys, visc.runtime.host_graph, visc.runtime.host_ops; "
            "print([m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime', 'xdsl')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
