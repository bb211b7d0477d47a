"""ONNX backend node test cases for every supported op, compiled and run on OpenCL (and CUDA on the GPU machine).

Inputs and expected outputs come from the installed onnx package (`onnx.backend.test.case`);
tolerances are each case's own. Deliberate skips carry their reason (onnx_node_cases.SKIPS).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from onnx_node_cases import ORT_REFERENCE, SUPPORTED_OPS, skip_reason, supported_cases
from test_pipeline import needs_cuda

import visc.onnx_backend as backend

CASES = supported_cases()


def _compare(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> None:
    got = np.asarray(got)
    assert got.shape == want.shape, f"shape {got.shape} != expected {want.shape}"
    if want.dtype.kind in "fc":
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


def _array(value: object) -> np.ndarray:
    return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(value)


def check_node_case(case, **prepare_options) -> None:
    """Run one node case through the ONNX backend and compare every output of every data set."""
    reason = skip_reason(case.name)
    if reason:
        pytest.skip(reason)
    rep = backend.prepare(case.model, **prepare_options)
    for inputs, outputs in case.data_sets:
        arrays = [_array(v) for v in inputs]
        got = rep.run(arrays)
        want = [_array(v) for v in outputs]
        if case.name in ORT_REFERENCE:
            sess = ort.InferenceSession(case.model.SerializeToString(), providers=["CPUExecutionProvider"])
            want = sess.run(None, {vi.name: a for vi, a in zip(case.model.graph.input, arrays, strict=False)})
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _compare(g, np.asarray(w), rtol=max(case.rtol, 1e-5), atol=max(case.atol, 1e-6))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case(case) -> None:
    check_node_case(case)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node_case_on_cuda(case) -> None:
    check_node_case(case, visc_target="cuda")


def test_readme_lists_exactly_the_supported_ops() -> None:
    """README's "Supported ONNX operators" list is SUPPORTED_OPS, alphabetically."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = re.search(r"<!-- supported-ops[^>]*-->(.*?)<!-- /supported-ops -->", text, re.S)
    assert block is not None, "README.md has no <!-- supported-ops --> list"
    listed = [name.strip() for name in block.group(1).replace("\n", " ").split(",")]
    assert listed == sorted(listed, key=str.lower), "keep the list alphabetical"
    assert set(listed) == SUPPORTED_OPS, (sorted(SUPPORTED_OPS - set(listed)), sorted(set(listed) - SUPPORTED_OPS))
