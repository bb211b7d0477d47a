"""Models whose shapes depend on data: the split into a static device part and a host part,
Ifs with known conditions folded at import, and Loop named in one clear error."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import make_model, run_onnxruntime
from onnx import TensorProto, helper

import visc
from visc.errors import UnsupportedModelError
from visc.frontend.dynamic_split import needs_split, split_dynamic
from visc.runtime.pipeline import Pipeline


def _threshold_model() -> onnx.ModelProto:
    """A conv head, then the scores above 0.5 (NonZero: a data-dependent count), gathered."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="head"),
        helper.make_node("Sigmoid", ["c"], ["s"], name="score"),
        helper.make_node("Reshape", ["s", "flat"], ["f"], name="flatten"),
        helper.make_node("Greater", ["f", "thresh"], ["mask"], name="above"),
        helper.make_node("NonZero", ["mask"], ["nz"], name="keep"),
        helper.make_node("Squeeze", ["nz", "zero"], ["idx"], name="idx"),
        helper.make_node("Gather", ["f", "idx"], ["kept"], axis=0, name="kept_scores"),
    ]
    inits = {"w": rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "flat": np.array([-1], np.int64),
             "thresh": np.array(0.5, np.float32), "zero": np.array([0], np.int64)}
    return make_model(nodes, {"x": ([1, 3, 6, 6], np.float32)}, ["kept", "s"], inits)


def test_split_cuts_at_the_first_data_dependent_node() -> None:
    model = _threshold_model()
    assert needs_split(model)
    split = split_dynamic(model)
    assert [n.op_type for n in split.static.graph.node] == ["Conv", "Sigmoid", "Reshape", "Greater"]
    assert split.host is not None and [n.op_type for n in split.host.graph.node] == ["NonZero", "Squeeze", "Gather"]
    # the host part reads the mask and the flat scores; its constant input travels with it
    assert [i.name for i in split.host.graph.input] == ["mask", "f"]
    assert "zero" in {t.name for t in split.host.graph.initializer}
    assert [o.name for o in split.static.graph.output] == ["s", "mask", "f"]


@pytest.mark.parametrize("target", ["cpu", "opencl"])
def test_a_data_dependent_model_runs_as_device_then_host(target: str) -> None:
    model = _threshold_model()
    compiled = visc.compile(model, target=target)
    assert isinstance(compiled, Pipeline)
    assert [i.target for i in compiled.infos] == [target, "host"]
    try:
        for seed in range(3):  # a different number of kept scores each time
            x = np.random.default_rng(seed).standard_normal((1, 3, 6, 6)).astype(np.float32)
            got = compiled.run({"x": x})
            want = run_onnxruntime(model, {"x": x})
            assert [g.shape for g in got] == [w.shape for w in want]
            for g, w in zip(got, want, strict=True):
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    finally:
        compiled.close()


def _if_model(cond_from_shape: bool) -> onnx.ModelProto:
    """An If whose condition is computed from the input's (static) shape, or from its values."""
    then_out = helper.make_tensor_value_info("t_out", TensorProto.FLOAT, None)
    else_out = helper.make_tensor_value_info("e_out", TensorProto.FLOAT, None)
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t_out"], name="then_relu")], "then", [], [then_out])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e_out"], name="else_neg")], "else", [], [else_out])
    if cond_from_shape:
        pre = [helper.make_node("Shape", ["x"], ["shape"], name="shape"),
               helper.make_node("ReduceSum", ["shape"], ["total"], keepdims=0, name="sum"),
               helper.make_node("Greater", ["total", "ten"], ["cond"], name="cond")]
    else:
        pre = [helper.make_node("ReduceSum", ["x"], ["xs"], keepdims=0, name="xsum"),
               helper.make_node("Greater", ["xs", "zerof"], ["cond"], name="cond")]
    nodes = [*pre, helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g, name="branch"),
             helper.make_node("Mul", ["y", "two"], ["z"], name="double")]
    inits = {"ten": np.array(10, np.int64), "two": np.array(2.0, np.float32), "zerof": np.array(0.0, np.float32)}
    return make_model(nodes, {"x": ([2, 3, 4], np.float32)}, ["z"], inits)


def test_if_with_a_known_condition_folds() -> None:
    model = _if_model(cond_from_shape=True)
    split = split_dynamic(model)
    assert split.host is None
    assert "If" not in {n.op_type for n in split.static.graph.node}
    compiled = visc.compile(model, target="cpu")
    assert not isinstance(compiled, Pipeline)
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(compiled.run(x)[0], run_onnxruntime(model, {"x": x})[0], rtol=1e-6)


def test_if_with_a_computed_condition_runs_on_the_host() -> None:
    model = _if_model(cond_from_shape=False)
    compiled = visc.compile(model, target="cpu")
    assert isinstance(compiled, Pipeline)
    try:
        for sign in (1.0, -1.0):  # both branches
            x = (sign * np.abs(np.random.default_rng(2).standard_normal((2, 3, 4)))).astype(np.float32)
            np.testing.assert_allclose(compiled.run({"x": x})[0], run_onnxruntime(model, {"x": x})[0], rtol=1e-6)
    finally:
        compiled.close()


def test_loop_is_one_clear_error() -> None:
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep_going"),
         helper.make_node("Add", ["acc_in", "one"], ["acc_out"], name="inc")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])])
    nodes = [helper.make_node("Loop", ["n", "cond", "x"], ["y"], body=body, name="the_loop")]
    model = make_model(nodes, {"x": ([1], np.float32)}, ["y"],
                       {"n": np.array(3, np.int64), "cond": np.array(True), "one": np.array([1.0], np.float32)})
    with pytest.raises(UnsupportedModelError, match="Loop node 'the_loop'"):
        visc.compile(model, target="cpu")


def test_scan_over_time_is_one_clear_error() -> None:
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "x_t"], ["s2"], name="accumulate"), helper.make_node("Identity", ["s2"], ["y_t"])],
        "body",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("x_t", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s2", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("y_t", TensorProto.FLOAT, [2])])
    nodes = [helper.make_node("Scan", ["s0", "x"], ["s_last", "y"], body=body, num_scan_inputs=1, name="over_time")]
    model = make_model(nodes, {"s0": ([2], np.float32), "x": ([5, 2], np.float32)}, ["s_last", "y"])
    with pytest.raises(UnsupportedModelError, match="Scan node 'over_time'.*not supported"):
        visc.compile(model, target="cpu")
