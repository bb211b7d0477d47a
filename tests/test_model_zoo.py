"""Built model-zoo CNNs (MobileNetV2): the architecture torchvision defines, compiled for
OpenCL and checked against onnxruntime on seeded random inputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import visc
from visc.tools.model_zoo import (
    BUILT_MODELS,
    LIGHT_MODELS,
    build_mobilenet_v2,
    light_model_path,
    load_model,
)
from visc.tools.visc_cli import random_inputs, rel_error


def _ort(model: onnx.ModelProto, names: list[str], inputs: list[np.ndarray]) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, inputs, strict=True)))


def test_mobilenet_v2_architecture() -> None:
    model = build_mobilenet_v2(seed=0)
    ops = Counter(n.op_type for n in model.graph.node)
    # stem + 16 expanding blocks x 3 convs + 1 block without expansion x 2 + final 1x1
    assert ops["Conv"] == 52 and ops["BatchNormalization"] == 52
    assert ops["Clip"] == 35 and ops["Add"] == 10  # ReLU6 after every conv but the 17 projections
    assert ops["GlobalAveragePool"] == 1 and ops["Gemm"] == 1
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    groups = [next((a.i for a in c.attribute if a.name == "group"), 1) for c in convs]
    assert sum(g > 1 for g in groups) == 17  # one depthwise conv per block
    params = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    assert 3_400_000 < params < 3_600_000  # torchvision: 3.5M (BN statistics included here)
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 1000]


def test_mobilenet_v2_is_seeded() -> None:
    a, b, c = (load_model("mobilenet_v2", seed=s) for s in (1, 1, 2))
    assert a.SerializeToString() == b.SerializeToString() != c.SerializeToString()
    assert "mobilenet_v2" in BUILT_MODELS and "mobilenet_v2" not in LIGHT_MODELS
    with pytest.raises(FileNotFoundError, match="load_model"):
        light_model_path("mobilenet_v2")


def test_mobilenet_v2_matches_onnxruntime() -> None:
    onnx_model = load_model("mobilenet_v2", seed=3)
    model = visc.compile(onnx_model, target="opencl")
    names = list(model.input_names)
    for seed in (7, 8):
        inputs = random_inputs(model.plan.inputs, seed=seed)
        (got,) = model.run(inputs)
        (want,) = _ort(onnx_model, names, inputs)
        assert got.shape == want.shape == (1, 1000)
        assert np.std(want) > 0.05  # the random weights keep the logits apart (no saturated ReLU6s)
        assert rel_error(got, want) <= 1e-4, f"relative error {rel_error(got, want):.2e}"
