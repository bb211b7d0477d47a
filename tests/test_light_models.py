"""All nine model-zoo CNNs shipped with onnx, compiled for OpenCL and checked against
onnxruntime on seeded random inputs: max|visc - ort| / max|ort| <= 1e-4. The zoo files carry
constant placeholder weights, so the models get seeded random weights first (model_zoo)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import visc
from visc.tools.model_zoo import LIGHT_MODELS, load_light_model
from visc.tools.visc_cli import random_inputs, rel_error


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_matches_onnxruntime(name: str) -> None:
    onnx_model = load_light_model(name, seed=3)
    model = visc.compile(onnx_model, target="opencl")
    inputs = random_inputs(model.plan.inputs, seed=7)
    assert all(np.abs(x).max() > 0 for x in inputs)
    got = model.run(inputs)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(onnx_model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    want = sess.run(None, dict(zip(model.input_names, inputs, strict=True)))
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert np.abs(w).max() > 0
        assert rel_error(g, w) <= 1e-4, f"{name}: relative error {rel_error(g, w):.2e}"
