"""Ops alike but for their node and buffers are lowered once and copied
(`visc.passes.lowering.vision_to_loops._lowering_key`): the copies compute what their own
lowering would, over their own buffers."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from graph_builder import GraphBuilder
from onnx import TensorProto, helper

import visc
import visc.passes.lowering.vision_to_loops as v2l
from visc.dialects.vision import Conv2dOp
from visc.tools.visc_cli import random_inputs, rel_error


def _blocks() -> onnx.ModelProto:
    """Three conv + relu blocks alike but for their weights (a ResNet stage's repeated
    blocks), then a squeeze-and-excitation-like scale twice."""
    rng = np.random.default_rng(13)
    gb = GraphBuilder(rng)
    x = "x"
    for _ in range(3):
        w = gb.const(rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2, "w")
        b = gb.const(rng.standard_normal(8).astype(np.float32), "b")
        x = gb.op("Relu", [gb.op("Conv", [x, w, b], pads=[1, 1, 1, 1])])
    for _ in range(2):
        s = gb.op("Sigmoid", [gb.op("GlobalAveragePool", [x])])
        x = gb.op("Mul", [x, s])
    graph = helper.make_graph(gb.nodes, "blocks", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 8, 10, 10])], gb.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_repeated_blocks_lower_once_and_match_onnxruntime(monkeypatch) -> None:
    """The first conv is lowered, the others copied; a wrong copy (the first block's weights
    or output read again) would not match onnxruntime."""
    onnx_model = _blocks()
    lowered: list[str] = []
    conv = v2l.LOWERINGS[Conv2dOp]

    def counted(op, sched, fl) -> None:
        lowered.append(op.attributes["onnx_node"].data)
        conv.lower(op, sched, fl)

    monkeypatch.setitem(v2l.LOWERINGS, Conv2dOp, dataclasses.replace(conv, lower=counted))
    model = visc.compile(onnx_model, target="cpu", cache=False)
    assert len(lowered) == 1
    assert sum("conv" in launch.node.lower() for launch in model.plan.launches) == 3
    inputs = random_inputs(model.plan.inputs, seed=14)
    want = ort.InferenceSession(onnx_model.SerializeToString()).run(None, {"x": inputs[0]})[0]
    got = model.run(inputs)[0]
    assert np.abs(want).max() > 0 and rel_error(got, want) < 1e-5


@pytest.mark.parametrize("target", ["cpu", "opencl", "cuda"])
def test_copies_emit_what_lowering_each_op_does(target: str, monkeypatch) -> None:
    """The same launches (kernel, grid, arguments, node) and the same kernel source, byte for
    byte, as when every op is lowered on its own (checked on ResNet-50 and others too)."""
    onnx_model = _blocks()
    copied = visc.compile(onnx_model, target=target, cache=False)
    monkeypatch.setattr(v2l, "_lowering_key", lambda op: None)
    each = visc.compile(onnx_model, target=target, cache=False)

    def launches(model) -> list[tuple[object, ...]]:
        return [(la.kernel, la.grid, la.block, tuple(la.args), la.node) for la in model.plan.launches]

    assert launches(copied) == launches(each) and len(launches(each)) >= 7
    assert copied.sources == each.sources and copied.sources
