"""Detection models end to end on OpenCL: a YOLO-style and an SSD-style detector (built in
tests/detection_models.py) with NonMaxSuppression -- and for SSD TopK -- inside the graph
give the same selected boxes, scores and classes as onnxruntime, and their box decoding
fuses into few elementwise kernels."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_onnxruntime
from detection_models import MODELS, image

import visc
from visc.compiler import GRAPH_PIPELINE, run_passes
from visc.dialects import vision
from visc.frontend import import_model

SCORE_THRESHOLD = {"yolo": 0.3, "ssd": 0.25}
ELEMENTWISE = {"Sigmoid", "Mul", "Add", "Sub", "Exp", "Relu"}


@pytest.fixture(scope="module", params=sorted(MODELS))
def detector(request: pytest.FixtureRequest):
    name = request.param
    model = MODELS[name]()
    x = image()
    return name, model, x, run_onnxruntime(model, {"image": x})


def test_detector_matches_onnxruntime_on_opencl(detector) -> None:
    name, model, x, (want_boxes, want_scores, want_sel) = detector
    # a realistic workload: hundreds of candidates above the score threshold, tens kept
    assert (want_scores > SCORE_THRESHOLD[name]).sum() >= 200
    assert len(want_sel) >= 40
    boxes, scores, sel = visc.compile(model).run({"image": x})
    np.testing.assert_allclose(boxes, want_boxes, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-5)
    assert sel.dtype == np.int64
    np.testing.assert_array_equal(sel, want_sel)  # same boxes, in the same order
    b, c, i = sel.T
    np.testing.assert_allclose(boxes[b, i], want_boxes[b, i], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores[b, c, i], want_scores[b, c, i], rtol=1e-4, atol=1e-5)
    assert (scores[b, c, i] > SCORE_THRESHOLD[name]).all()


def test_box_decoding_fuses(detector) -> None:
    name, model, _, _ = detector
    elementwise = sum(n.op_type in ELEMENTWISE for n in model.graph.node)
    imported = import_model(model)
    run_passes(imported.module, GRAPH_PIPELINE, imported.weights)
    maps = [op for op in imported.module.walk() if isinstance(op, vision.MapOp)]
    fused_into_convs = [op for op in imported.module.walk() if isinstance(op, vision.Conv2dOp) and op.body.blocks]
    widest = max(len(vision.get_str(op, "onnx_node").split("+")) for op in maps)
    # every activation fuses into its conv, each decode chain into one map
    assert len(fused_into_convs) >= 5
    assert widest >= (5 if name == "yolo" else 4)
    assert len(maps) + len(fused_into_convs) <= elementwise * 2 // 3
