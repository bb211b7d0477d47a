"""The CPU backend's depthwise kernel (visc/passes/lowering/conv_depthwise.py) against
onnxruntime: strides, dilations, asymmetric and zero padding, rows and columns that do not
divide into blocks and vectors, bias and fused epilogues."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, run_onnxruntime
from onnx import helper

from visc.backends.cpu import host_vector_bits
from visc.compiler import compile_model
from visc.model import CompiledModel

CASES = [
    # channels, height, width, kernel, stride, pads (top, left, bottom, right), dilation
    (8, 9, 9, 3, 1, (1, 1, 1, 1), 1),
    (16, 17, 23, 5, 2, (2, 2, 2, 2), 1),
    (4, 12, 20, 3, 1, (2, 2, 2, 2), 2),
    (6, 11, 13, 3, 2, (0, 1, 1, 0), 1),
    (5, 7, 7, 5, 1, (2, 2, 2, 2), 1),
    (3, 3, 34, 3, 1, (0, 0, 0, 0), 1),
    (2, 40, 9, 3, 2, (1, 1, 1, 1), 1),
]
# stride 1, rows narrower than a vector (on AVX-512): each plane walked as one flat row
FLAT_CASES = [
    (6, 7, 7, 3, 1, (1, 1, 1, 1), 1),
    (3, 14, 14, 5, 1, (2, 2, 2, 2), 1),
    (4, 9, 5, 3, 1, (2, 1, 0, 1), 1),  # asymmetric padding: still as wide as the input
    (2, 6, 9, 3, 1, (0, 2, 2, 2), 2),  # dilated
    (3, 5, 11, 3, 1, (0, 1, 2, 1), 1),  # padded below only
]
CASES += FLAT_CASES


def _model(c: int, h: int, w: int, k: int, s: int, pads: tuple[int, ...], d: int, rng, silu: bool = True):
    weight = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c" if silu else "y"], group=c, strides=[s, s],
                            pads=[pads[0], pads[1], pads[2], pads[3]], dilations=[d, d])
    nodes = [conv]
    if silu:
        nodes += [helper.make_node("Sigmoid", ["c"], ["g"]), helper.make_node("Mul", ["c", "g"], ["y"])]
    return make_model(nodes, {"x": ((1, c, h, w), np.float32)}, ["y"], {"w": weight, "b": bias})


def _compile(model) -> tuple[CompiledModel, list[str]]:
    """The model on the CPU backend, and the schedules its convs got."""
    schedules: list[str] = []

    def after(name: str, module) -> None:
        if name.startswith("vision-default-schedule"):
            schedules.extend(str(op.attributes["schedule"]) for op in module.walk() if op.name == "vision.conv2d")

    return compile_model(model, target="cpu", cache=False, print_ir_after=after), schedules


@pytest.mark.parametrize("case", CASES, ids=lambda c: "c{}_{}x{}_k{}_s{}_p{}_d{}".format(*c[:5], "".join(map(str, c[5])), c[6]))
def test_depthwise_matches_onnxruntime(rng, case) -> None:
    c, h, w, k, s, pads, d = case
    model = _model(c, h, w, k, s, pads, d, rng)
    x = rng.standard_normal((1, c, h, w)).astype(np.float32)
    compiled, schedules = _compile(model)
    assert schedules and all("rows" in s for s in schedules), schedules  # the row-block kernel ran
    if case in FLAT_CASES and host_vector_bits() >= 512:  # rows narrower than 16 lanes: a flat plane
        assert all("flat" in s for s in schedules), schedules
    (y,) = compiled.run([x])
    (want,) = run_onnxruntime(model, {"x": x})
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("c, h, w, k, flat", [(16, 19, 21, 3, False), (8, 7, 7, 5, True)], ids=["rows", "flat"])
def test_depthwise_with_residual_matches_onnxruntime(rng, c: int, h: int, w: int, k: int, flat: bool) -> None:
    """A fused add of another tensor (read as vectors in the epilogue; through flat views of
    the output and the residual on a flat plane) and a relu."""
    weight = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"], group=c, pads=[k // 2] * 4),
         helper.make_node("Add", ["c", "x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
        {"x": ((2, c, h, w), np.float32)}, ["y"], {"w": weight})
    x = rng.standard_normal((2, c, h, w)).astype(np.float32)
    compiled, schedules = _compile(model)
    (y,) = compiled.run([x])
    (want,) = run_onnxruntime(model, {"x": x})
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    if host_vector_bits() >= 512:
        assert ("flat" in schedules[0]) == flat, schedules
