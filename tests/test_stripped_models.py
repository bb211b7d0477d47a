"""Stripped graphs (tests/models, benchmarks/export_models.py): parameters leave the file with
their statistics, everything else stays exact, and refilling is seeded and deterministic."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_onnxruntime
from onnx import TensorProto, helper, numpy_helper

from visc.tools.model_zoo import load_light_model
from visc.tools.stripped_models import is_stripped, refill_weights, strip_weights


def _inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_strip_keeps_non_parameters_and_refill_restores_shapes() -> None:
    model = load_light_model("squeezenet", seed=4)
    before = _inits(model)
    stripped = strip_weights(model)
    assert is_stripped(stripped)
    assert len(stripped.SerializeToString()) < len(model.SerializeToString()) / 20
    left = _inits(stripped)
    for name, value in left.items():  # what stays, stays exact
        np.testing.assert_array_equal(value, before[name])
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    assert conv_weights and not conv_weights & set(left)
    refilled = _inits(refill_weights(stripped, seed=2))
    assert set(refilled) == set(before)
    for name in conv_weights:
        got, was = refilled[name], before[name]
        assert got.shape == was.shape and got.dtype == was.dtype
        assert was.min() <= got.min() and got.max() <= was.max()
        assert abs(float(got.std()) - float(was.std())) <= 0.25 * float(was.std()) + 1e-6


def test_refill_is_seeded_and_runs() -> None:
    stripped = strip_weights(load_light_model("squeezenet", seed=4))
    a, b, c = (_inits(refill_weights(stripped, seed=s)) for s in (1, 1, 2))
    name = next(iter(set(a) - set(_inits(stripped))))
    np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a[name], c[name])
    model = refill_weights(stripped, seed=1)
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    (probs,) = run_onnxruntime(model, {model.graph.input[0].name: x})
    assert np.isfinite(probs).all() and probs.std() > 0


def test_refill_needs_a_stripped_model() -> None:
    with pytest.raises(ValueError, match="no stripped weights"):
        refill_weights(load_light_model("squeezenet", seed=4))


def _fan_in_model() -> onnx.ModelProto:
    """Conv -> Relu -> Conv -> Flatten -> Gemm (transB) -> MatMul, every weight a parameter."""
    rng = np.random.default_rng(0)
    weights = {"w1": (16, 8, 3, 3), "b1": (16,), "w2": (32, 16, 1, 1), "w3": (10, 512), "w4": (10, 20)}
    inits = [numpy_helper.from_array(rng.normal(0.0, 0.3, s).astype(np.float32), n) for n, s in weights.items()]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"]),
             helper.make_node("Flatten", ["c2"], ["f"]),
             helper.make_node("Gemm", ["f", "w3"], ["g"], transB=1),
             helper.make_node("MatMul", ["g", "w4"], ["y"])]
    graph = helper.make_graph(nodes, "fan_in", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 20])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_fan_in_scheme_scales_weights_by_fan_in_and_gain() -> None:
    """Scheme "fan_in": variance 2 / fan-in for a layer a rectifier reads, 1 / fan-in for the
    others (the Gemm's fan-in follows transB, the MatMul's is its rows); biases as recorded."""
    stripped = strip_weights(_fan_in_model())
    refilled = _inits(refill_weights(stripped, seed=3, scheme="fan_in"))
    for name, var in {"w1": 2 / 72, "w2": 1 / 16, "w3": 1 / 512, "w4": 1 / 10}.items():
        assert abs(float(refilled[name].std()) / np.sqrt(var) - 1) < 0.15, name
    np.testing.assert_array_equal(refilled["b1"], _inits(refill_weights(stripped, seed=3))["b1"])
    with pytest.raises(ValueError, match="unknown refill scheme 'xavier'"):
        refill_weights(stripped, scheme="xavier")
