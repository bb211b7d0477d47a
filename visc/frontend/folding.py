"""Constant folding at import: nodes whose inputs are all known are evaluated in numpy.

Shape arithmetic (Shape -> Gather -> Concat -> Reshape ...) and weight preprocessing fold
away this way. A few frequent ops have direct numpy paths (ConstantOfShape in the model zoo
builds every weight); everything else runs through `onnx.reference`, one node at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import NodeProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from visc.frontend.context import Node, Unsupported

NONDETERMINISTIC = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
# Ops whose outputs depend only on input shapes, which are static.
SHAPE_ONLY = frozenset({"Shape", "Size"})


def has_subgraph(node: NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def is_foldable(node: NodeProto, const_names: set[str]) -> bool:
    """Whether a node's outputs are known at import time."""
    if node.domain not in ("", "ai.onnx") or node.op_type in NONDETERMINISTIC or has_subgraph(node):
        return False
    if node.op_type in SHAPE_ONLY:
        return True
    if node.op_type == "CastLike":  # only the second input's element type matters
        return node.input[0] in const_names
    return all(name in const_names for name in node.input if name)


def _shape_of(node: Node) -> np.ndarray:
    x = node.x(0)
    start, end = node.attr("start", 0), node.attr("end")
    return np.array(x.shape[slice(start, end)], dtype=np.int64)


def _constant(node: Node) -> np.ndarray:
    for key, value in node.attrs.items():
        if key == "value":
            return np.asarray(value)
        if key == "value_float":
            return np.array(value, dtype=np.float32)
        if key == "value_floats":
            return np.array(value, dtype=np.float32)
        if key == "value_int":
            return np.array(value, dtype=np.int64)
        if key == "value_ints":
            return np.array(value, dtype=np.int64)
        raise Unsupported(f"a Constant with {key} is not supported")
    raise Unsupported("the Constant has no value")


def _constant_of_shape(node: Node) -> np.ndarray:
    x = node.x(0)
    assert x.const is not None
    value = node.attr("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return np.full([int(d) for d in x.const.reshape(-1)], fill[0], dtype=fill.dtype)


def evaluate_node(proto: NodeProto, feeds: Mapping[str, np.ndarray],
                  opsets: Sequence[onnx.OperatorSetIdProto]) -> list[np.ndarray]:
    """``proto``'s outputs (those with a name) on the values ``feeds``, by `onnx.reference` on a
    one-node model; the evaluator's exception when it cannot."""
    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), None)
              for name, value in feeds.items()]
    outputs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in proto.output if o]
    graph = helper.make_graph([proto], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=list(opsets))
    return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, dict(feeds))]


def _reference(node: Node, opsets: dict[str, int]) -> list[np.ndarray]:
    proto = node.proto
    feeds: dict[str, np.ndarray] = {}
    for name, t in zip(proto.input, node.inputs, strict=False):
        if not name or name in feeds:
            continue
        assert t is not None and t.const is not None
        feeds[name] = t.const
    try:
        results = evaluate_node(proto, feeds, [helper.make_opsetid(d, v) for d, v in opsets.items()])
    except Exception as e:  # noqa: BLE001 - any evaluator failure is reported as one problem
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise Unsupported(f"cannot evaluate it on its constant inputs ({first})") from None
    it = iter(results)
    return [next(it) if o else np.zeros(0) for o in proto.output]


def fold(node: Node, opsets: dict[str, int]) -> Sequence[np.ndarray]:
    """The outputs of a node whose inputs are all constants (or that depends on shapes only)."""
    op = node.op_type
    if op == "Constant":
        return [_constant(node)]
    if op == "Shape":
        return [_shape_of(node)]
    if op == "Size":
        return [np.array(node.x(0).size, dtype=np.int64)]
    if op == "ConstantOfShape":
        return [_constant_of_shape(node)]
    if op == "CastLike":
        x = node.x(0)
        assert x.const is not None
        return [x.const.astype(node.x(1).dtype)]
    if op == "Identity":
        x = node.x(0)
        assert x.const is not None
        return [x.const]
    return _reference(node, opsets)


def initializer_array(tensor: onnx.TensorProto) -> np.ndarray:
    return numpy_helper.to_array(tensor)
