"""Sorting, selection and detection ops (sort, topk, argmax/argmin, scan, nms, roi_align):
their lowerings run on OpenCL (PoCL) from hand-written stage-3 IR with explicit schedules
(local-memory and global-memory forms), compared with numpy / onnxruntime on seeded random
data; the importer, the runtime plan's row counts and the errors around them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper

import visc
from visc.backends.opencl import run_bufferized
from visc.errors import UnsupportedModelError
from visc.frontend import import_model
from visc.reference import evaluate
from visc.reference_detection import nms_select
from visc.runtime.plan import Plan

RNG = np.random.default_rng(7)
_ELT = {"float32": "f32", "float16": "f16", "int64": "i64", "int32": "i32"}


def mref(shape: Sequence[int], dtype: Any) -> str:
    return "memref<" + "".join(f"{d}x" for d in shape) + _ELT[np.dtype(dtype).name] + ">"


def one_op(op: str, inputs: dict[str, np.ndarray], outputs: dict[str, tuple[Sequence[int], Any]],
           attrs: str) -> list[np.ndarray]:
    """Run one bufferized vision op on OpenCL: inputs, then outputs, as function arguments
    (all returned untrimmed: the function declares no `vision.output_counts`)."""
    args = [f"%{n}: {mref(a.shape, a.dtype)}" for n, a in inputs.items()]
    args += [f"%{n}: {mref(s, d)}" for n, (s, d) in outputs.items()]
    ins = ", ".join(f"%{n}" for n in inputs) + " : " + ", ".join(mref(a.shape, a.dtype) for a in inputs.values())
    outs = ", ".join(f"%{n}" for n in outputs) + " : " + ", ".join(mref(s, d) for s, d in outputs.values())
    text = (f"func.func @main({', '.join(args)}) attributes {{vision.num_inputs = {len(inputs)} : i64, "
            "vision.arena_size = 0 : i64} {\n"
            f"  vision.{op} ins({ins}) outs({outs}) {{{attrs}, onnx_node = \"n\"}}\n  func.return\n}}\n")
    return run_bufferized(text, {}, list(inputs.values()))


def schedule(**keys: int) -> str:
    return "schedule = #vision.schedule<{" + ", ".join(f"{k} = {v} : i64" for k, v in keys.items()) + "}>"


def stable_order(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    key = -x if descending and x.dtype.kind == "f" else (~x if descending else x)
    return np.argsort(key, axis=axis, kind="stable")


# -------------------------------------------------------------------------- sort / topk


@pytest.mark.parametrize("shape,axis,descending,dtype,sched", [
    ((3, 37), 1, True, np.float32, dict(wg=8, local=1)),
    ((3, 37), 1, False, np.float32, dict(wg=8, local=0, block=8)),  # 5 blocks, 3 global stages
    ((64, 2), 0, True, np.int64, dict(wg=16, local=1)),
    ((2, 3, 19), 2, False, np.int32, dict(wg=4, local=0)),  # one block: all in local memory
    ((1, 300), 1, True, np.int64, dict(wg=16, local=0, block=32)),
    ((1, 512), 1, True, np.float32, dict(wg=64, local=1)),
    ((5,), 0, False, np.float16, dict(wg=2, local=1)),
])
def test_sort_is_stable_and_matches_numpy(shape, axis, descending, dtype, sched) -> None:
    # few distinct values: many ties, which must keep their index order
    x = RNG.integers(-6, 6, shape).astype(dtype)
    values, indices = one_op("sort", {"x": x}, {"v": (shape, dtype), "i": (shape, np.int64)},
                             f"axis = {axis} : i64, descending = {int(descending)} : i64, {schedule(**sched)}")
    order = stable_order(x, axis, descending)
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_array_equal(values, np.take_along_axis(x, order, axis))


@pytest.mark.parametrize("largest,sched", [(1, dict(wg=16, local=1)), (0, dict(wg=32, local=1)),
                                           (1, dict(wg=8, local=0, block=16))])
def test_topk_matches_onnxruntime(largest: int, sched: dict[str, int]) -> None:
    x = RNG.standard_normal((4, 50)).astype(np.float32)
    x[:, 10:20] = 0.5  # ties straddling the k-th position
    k = 13
    values, indices = one_op("topk", {"x": x}, {"v": ((4, k), np.float32), "i": ((4, k), np.int64)},
                             f"axis = 1 : i64, k = {k} : i64, largest = {largest} : i64, {schedule(**sched)}")
    model = make_model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1, largest=largest)],
                       {"x": ((4, 50), np.float32)}, ["v", "i"], {"k": np.array([k], np.int64)}, opset=11)
    want_v, want_i = run_onnxruntime(model, {"x": x})
    np.testing.assert_array_equal(indices, want_i)
    np.testing.assert_array_equal(values, want_v)


# -------------------------------------------------------------------------- argmax / scan


@pytest.mark.parametrize("op,last", [("argmax", 0), ("argmax", 1), ("argmin", 0), ("argmin", 1)])
def test_arg_extreme_picks_first_or_last_of_ties(op: str, last: int) -> None:
    x = RNG.integers(0, 4, (3, 9, 5)).astype(np.float32)
    (got,) = one_op(op, {"x": x}, {"y": ((3, 1, 5), np.int64)},
                    f"axis = 1 : i64, select_last_index = {last} : i64, {schedule(wg=8)}")
    pick = np.argmax if op == "argmax" else np.argmin
    want = x.shape[1] - 1 - pick(x[:, ::-1], axis=1) if last else pick(x, axis=1)
    np.testing.assert_array_equal(got, want[:, None, :])


@pytest.mark.parametrize("n,wg,exclusive,reverse,dtype", [
    (1000, 64, 0, 0, np.float32),
    (1000, 64, 1, 1, np.float32),
    (37, 8, 1, 0, np.int32),
    (5, 16, 0, 1, np.int64),
    (3, 1, 0, 0, np.float32),
])
def test_scan_matches_cumsum(n: int, wg: int, exclusive: int, reverse: int, dtype: Any) -> None:
    x = (RNG.standard_normal((3, n)) * 4).astype(dtype)
    (got,) = one_op("scan", {"x": x}, {"y": ((3, n), dtype)},
                    f"axis = 1 : i64, exclusive = {exclusive} : i64, reverse = {reverse} : i64, {schedule(wg=wg)}")
    work = x[:, ::-1] if reverse else x
    want = np.cumsum(work, axis=1, dtype=dtype) - (work if exclusive else 0)
    want = want[:, ::-1] if reverse else want
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


# -------------------------------------------------------------------------- nms


def random_boxes(batches: int, n: int, center: bool, rng: np.random.Generator) -> np.ndarray:
    """Boxes of 5-30% of a unit image, as corners (y1, x1, y2, x2; some flipped) or centers."""
    lo = rng.random((batches, n, 2)).astype(np.float32)
    size = (0.05 + 0.25 * rng.random((batches, n, 2))).astype(np.float32)
    if center:
        return np.concatenate([lo[..., ::-1] + size[..., ::-1] / 2, size[..., ::-1]], axis=-1)
    boxes = np.concatenate([lo, lo + size], axis=-1)
    flip = rng.random((batches, n)) < 0.3
    boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
    return boxes


@pytest.mark.parametrize("batches,n,classes,per_class,center,threshold,local", [
    (2, 60, 3, 10, 0, 0.3, 1),
    (1, 300, 2, 40, 1, None, 1),
    (1, 70, 2, 70, 0, 0.5, 0),  # global sort and flags
    (3, 9, 1, 4, 1, 0.95, 0),  # few or no candidates above the threshold
])
def test_nms_kernels_match_reference_and_onnxruntime(batches, n, classes, per_class, center, threshold, local) -> None:
    keys = dict(wg=16, local=local, block=16) if local == 0 else dict(wg=16, local=local)
    rng = np.random.default_rng(n)
    boxes = random_boxes(batches, n, bool(center), rng)
    scores = rng.random((batches, classes, n)).astype(np.float32)
    scores[:, :, :5] = 0.75  # equal scores: the lower box index comes first
    rows = batches * classes * per_class
    attrs = (f"center_point_box = {center} : i64, max_output_boxes_per_class = {per_class} : i64, "
             f"iou_threshold = 4.000000e-01 : f32, {schedule(**keys)}")
    if threshold is not None:
        attrs += f", score_threshold = {threshold} : f32"
    selected, count = one_op("nms", {"b": boxes, "s": scores}, {"sel": ((rows, 3), np.int64), "cnt": ((1,), np.int64)},
                             attrs)
    want = nms_select(boxes, scores, per_class, 0.4, threshold, center)
    assert count[0] == len(want)
    np.testing.assert_array_equal(selected[: len(want)], want)
    assert (selected[len(want):] == -1).all()
    inits = {"m": np.array([per_class], np.int64), "i": np.array([0.4], np.float32)}
    if threshold is not None:
        inits["t"] = np.array([threshold], np.float32)
    model = make_model([helper.make_node("NonMaxSuppression", ["b", "s", *inits], ["y"], center_point_box=center)],
                       {"b": (boxes.shape, np.float32), "s": (scores.shape, np.float32)}, ["y"], inits, opset=11)
    (ort,) = run_onnxruntime(model, {"b": boxes, "s": scores})
    np.testing.assert_array_equal(want, ort)


# -------------------------------------------------------------------------- roi_align


@pytest.mark.parametrize("mode,coord,ratio", [("avg", "half_pixel", 0), ("avg", "output_half_pixel", 2),
                                              ("max", "half_pixel", 2), ("max", "output_half_pixel", 0)])
def test_roi_align_matches_onnxruntime(mode: str, coord: str, ratio: int) -> None:
    x = RNG.standard_normal((2, 3, 11, 13)).astype(np.float32)
    rois = (RNG.random((6, 4)) * 12 - 1).astype(np.float32)
    rois[:, 2:] = rois[:, :2] + RNG.random((6, 2)).astype(np.float32) * 9
    rois[0] = [3.0, 3.0, 3.0, 3.0]  # an empty roi
    batch = RNG.integers(0, 2, 6).astype(np.int64)
    (got,) = one_op("roi_align", {"x": x, "r": rois, "bi": batch}, {"y": ((6, 3, 3, 4), np.float32)},
                    f'mode = "{mode}", coord_mode = "{coord}", sampling_ratio = {ratio} : i64, '
                    f"spatial_scale = 6.000000e-01 : f32, {schedule(wg=32)}")
    node = helper.make_node("RoiAlign", ["x", "r", "b"], ["y"], mode=mode, coordinate_transformation_mode=coord,
                            sampling_ratio=ratio, output_height=3, output_width=4, spatial_scale=0.6)
    model = make_model([node], {"x": (x.shape, np.float32), "r": (rois.shape, np.float32),
                                "b": (batch.shape, np.int64)}, ["y"], opset=16)
    (want,) = run_onnxruntime(model, {"x": x, "r": rois, "b": batch})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------------- importer and runtime


def _nms_model(extra_nodes: Sequence[Any] = (), outputs: Sequence[str] = ("sel",), per_class: int = 5):
    nodes = [helper.make_node("NonMaxSuppression", ["b", "s", "m", "i", "t"], ["sel"]), *extra_nodes]
    inits = {"m": np.array([per_class], np.int64), "i": np.array([0.5], np.float32),
             "t": np.array([0.2], np.float32)}
    return make_model(nodes, {"b": ((1, 40, 4), np.float32), "s": ((1, 2, 40), np.float32)}, list(outputs),
                      inits, opset=11)


def test_nms_output_is_trimmed_by_its_count_after_save_and_load(tmp_path) -> None:
    boxes = random_boxes(1, 40, False, RNG)
    scores = RNG.random((1, 2, 40)).astype(np.float32)
    model = _nms_model(per_class=15)
    imported = import_model(model)
    assert len(imported.output_names) == 1  # the count is hidden
    (ref,) = evaluate(imported.module, imported.weights, [boxes, scores])
    (want,) = run_onnxruntime(model, {"b": boxes, "s": scores})
    np.testing.assert_array_equal(ref, want)
    compiled = visc.compile(model)
    spec = compiled.plan.outputs[0]
    assert spec.shape == (30, 3) and compiled.plan.buffers[spec.count].kind == "count"
    assert len(compiled.plan.outputs) == 1
    np.testing.assert_array_equal(compiled.run([boxes, scores])[0], want)
    path = str(tmp_path / "nms.visc")
    compiled.save(path)
    loaded = visc.load(path)
    assert Plan.from_json(loaded.plan.to_json()).outputs[0].count == spec.count
    np.testing.assert_array_equal(loaded.run([boxes, scores])[0], want)


def test_reading_a_counted_output_is_a_clear_error() -> None:
    model = _nms_model([helper.make_node("Identity", ["sel"], ["y"], name="after_nms")], outputs=["y"])
    with pytest.raises(UnsupportedModelError, match="Identity node 'after_nms': input 'sel' has a data-dependent"):
        import_model(model)


def test_nms_without_max_output_boxes_selects_nothing() -> None:
    model = _nms_model(per_class=0)
    compiled = visc.compile(model)
    (got,) = compiled.run([random_boxes(1, 40, False, RNG), RNG.random((1, 2, 40)).astype(np.float32)])
    assert got.shape == (0, 3) and got.dtype == np.int64


@pytest.mark.parametrize("node,inputs,opset", [
    (helper.make_node("TopK", ["x"], ["v", "i"], k=3, axis=0), {"x": (5, 4)}, 9),  # k as an attribute
    (helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1), {"x": (2, 3, 6)}, 10),
    (helper.make_node("ArgMin", ["x"], ["y"], axis=-2, keepdims=0), {"x": (2, 3, 6)}, 11),
    (helper.make_node("CumSum", ["x", "a"], ["y"], exclusive=1), {"x": (4, 6)}, 11),
    (helper.make_node("RoiAlign", ["x", "r", "b"], ["y"], output_height=2, output_width=3, sampling_ratio=2),
     {"x": (1, 2, 9, 9), "r": (4, 4), "b": (4,)}, 10),  # opset 10: output_half_pixel coordinates
], ids=["topk9", "topk10", "argmin11", "cumsum11", "roialign10"])
def test_importer_opset_variants_match_onnxruntime(node, inputs: dict[str, tuple[int, ...]], opset: int) -> None:
    feeds = {n: (RNG.random(s) * 8).astype(np.float32) for n, s in inputs.items()}
    if "r" in feeds:
        feeds["r"][:, 2:] += feeds["r"][:, :2]
        feeds["b"] = np.zeros(4, np.int64)
    inits = {"k": np.array([2], np.int64), "a": np.array(1, np.int64)}
    inits = {n: v for n, v in inits.items() if n in node.input}
    model = make_model([node], {n: (a.shape, a.dtype) for n, a in feeds.items()}, list(node.output), inits,
                       opset=opset)
    imported = import_model(model)
    got = evaluate(imported.module, imported.weights, list(feeds.values()))
    for g, w in zip(got, run_onnxruntime(model, feeds), strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
