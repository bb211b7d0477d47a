"""Stripped graphs (tests/models, benchmarks/export_models.py): parameters leave the file with
their statistics, everything else stays exact, and refilling is seeded and deterministic."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_onnxruntime
from onnx import numpy_helper

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
