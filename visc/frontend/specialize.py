"""Specialization on parameter inputs.

Some graphs take shapes, axes, pads or scales as graph inputs (ONNX's node tests do, and so
do exporters with dynamic shapes). visc compiles static shapes, so such inputs are bound to
the values of a given run and become initializers; a runtime (the ONNX backend) recompiles
when those values change, as TVM's frozen parameters or onnxruntime's shape specialization do.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from visc.frontend.folding import SHAPE_ONLY
from visc.frontend.registry import load_all


def parameter_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph values that must be known at import time (and every value they derive from)."""
    converters = load_all()
    roots: set[str] = set()
    for node in model.graph.node:
        conv = converters.get(node.op_type)
        if node.op_type in ("ConstantOfShape", "Range"):
            idx: range | tuple[int, ...] = range(len(node.input))
        else:
            idx = conv.const_inputs if conv else ()
        roots.update(node.input[i] for i in idx if i < len(node.input) and node.input[i])
    producers = {o: n for n in model.graph.node for o in n.output}
    stack = list(roots)
    while stack:
        producer = producers.get(stack.pop())
        if producer is None or producer.op_type in SHAPE_ONLY:
            continue
        for name in producer.input:
            if name and name not in roots:
                roots.add(name)
                stack.append(name)
    return roots


def graph_parameter_inputs(model: onnx.ModelProto) -> list[str]:
    """The graph inputs (not initializers) that are parameters, in graph order."""
    inits = {i.name for i in model.graph.initializer}
    params = parameter_inputs(model)
    return [vi.name for vi in model.graph.input if vi.name in params and vi.name not in inits]


def bind_inputs(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` where the named graph inputs are initializers holding `values`."""
    if not values:
        return model
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    bound.ir_version = max(bound.ir_version, 4)
    keep = [vi for vi in bound.graph.input if vi.name not in values]
    del bound.graph.input[:]
    bound.graph.input.extend(keep)
    bound.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), n) for n, v in values.items())
    return bound
