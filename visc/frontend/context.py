"""State shared by the node converters: values by ONNX name, the IR being built, weights.

An ONNX value is a `Tensor`: either known at import time (`const`, a numpy array that is
folded further or becomes a `vision.weight` when a runtime op reads it) or computed at run
time (`value`, an SSA value of @main). Converters compute every result shape themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import NodeProto, numpy_helper
from xdsl.builder import Builder
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute, Block, Region, SSAValue
from xdsl.rewriter import InsertPoint

from visc.dialects import vision
from visc.frontend.dtypes import is_supported_dtype, tensor_type
from visc.weights import WeightStore


class NodeError(Exception):
    """A converter cannot handle its node; the driver turns it into a user-facing error."""


class ShapeFault(NodeError):
    """The node's input shapes do not fit its semantics (often a wrong user input shape)."""


class Unsupported(NodeError):
    """The node uses a feature the vision dialect cannot express."""


@dataclass(eq=False)
class Tensor:
    """An ONNX value during import: a constant array or a run-time SSA value."""

    shape: tuple[int, ...]
    dtype: np.dtype
    value: SSAValue | None = None
    const: np.ndarray | None = None
    hint: str = ""
    # A data-dependent row count (NonMaxSuppression): an i64 [1] tensor saying how many rows of
    # dim 0 are valid; the rest is padding that no consumer may read.
    count: Tensor | None = None

    @staticmethod
    def constant(array: np.ndarray, hint: str = "") -> Tensor:
        array = np.asarray(array)
        return Tensor(tuple(int(d) for d in array.shape), array.dtype, const=array, hint=hint)

    @property
    def is_const(self) -> bool:
        return self.const is not None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _attr_value(attr: onnx.AttributeProto) -> Any:
    if attr.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(attr.t)
    if attr.type == onnx.AttributeProto.FLOAT:
        return float(np.float32(attr.f))
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if attr.type == onnx.AttributeProto.FLOATS:
        return [float(np.float32(v)) for v in value]
    if attr.type == onnx.AttributeProto.INTS:
        return [int(v) for v in value]
    return value


def node_display_name(node: NodeProto, index: int) -> str:
    """The name errors and the `onnx_node` attribute use: the node's name or `op_type#index`."""
    return node.name or f"{node.op_type}#{index}"


@dataclass
class Node:
    """A node being converted, with its inputs resolved and attributes decoded."""

    proto: NodeProto
    index: int
    opset: int
    inputs: list[Tensor | None]
    used_outputs: list[bool]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attrs = {a.name: _attr_value(a) for a in self.proto.attribute}

    @property
    def name(self) -> str:
        return node_display_name(self.proto, self.index)

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def input(self, i: int) -> Tensor | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def x(self, i: int = 0) -> Tensor:
        """A required input."""
        t = self.input(i)
        if t is None:
            raise ShapeFault(f"input {i + 1} is required")
        return t

    def const_input(self, i: int) -> np.ndarray | None:
        """An optional input that must be known at import time (checked before import)."""
        t = self.input(i)
        if t is None:
            return None
        if t.const is None:
            raise Unsupported(f"input {i + 1} must be a constant known at import time")
        return t.const

    def required_const(self, i: int) -> np.ndarray:
        """A required input that must be known at import time."""
        arr = self.const_input(i)
        if arr is None:
            raise ShapeFault(f"input {i + 1} is required")
        return arr

    @property
    def num_outputs(self) -> int:
        return len(self.proto.output)


def sanitize(name: str) -> str:
    """An SSA name hint from an ONNX value name."""
    s = re.sub(r"[^A-Za-z0-9_.$]", "_", name)
    if not s or not (s[0].isalpha() or s[0] == "_"):
        s = "v" + s
    return s


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ShapeFault(
            "input shapes " + ", ".join(str(tuple(s)) for s in shapes) + " do not broadcast"
        ) from None


class ImportContext:
    """Builds @main's body node by node."""

    def __init__(self, block: Block, weights: WeightStore, opset: int):
        self.builder = Builder(InsertPoint.at_end(block))
        self.weights = weights
        self.opset = opset
        self.node: Node | None = None
        self._weight_values: dict[int, SSAValue] = {}

    # -- values -----------------------------------------------------------------------

    def materialize(self, t: Tensor) -> SSAValue:
        """The SSA value of a tensor; constants become (cached) `vision.weight` ops."""
        if t.value is not None:
            return t.value
        assert t.const is not None
        cached = self._weight_values.get(id(t))
        if cached is not None:
            return cached
        if not is_supported_dtype(t.dtype):
            raise Unsupported(f"constant of element type {t.dtype} cannot be a weight")
        name = self.weights.add(t.hint or "const", t.const)
        op = vision.WeightOp(name, tensor_type(t.shape, t.dtype))
        self.builder.insert(op)
        op.result.name_hint = sanitize(name)
        self._weight_values[id(t)] = op.result
        return op.result

    # -- ops --------------------------------------------------------------------------

    def stamp(self, attrs: dict[str, Attribute]) -> dict[str, Attribute]:
        assert self.node is not None
        attrs = dict(attrs)
        attrs["onnx_node"] = StringAttr(self.node.name)
        attrs["onnx_op"] = StringAttr(self.node.op_type)
        return attrs

    def emit(
        self,
        op_cls: type[vision.VisionOp],
        ins: Sequence[Tensor],
        results: Sequence[tuple[Sequence[int], np.dtype]],
        attrs: dict[str, Attribute] | None = None,
        *,
        fuse: Sequence[Tensor] = (),
        body: Region | None = None,
    ) -> list[Tensor]:
        """Insert one vision op reading `ins` and return its results as Tensors."""
        operands = [self.materialize(t) for t in ins]
        fuse_operands = [self.materialize(t) for t in fuse]
        types = [tensor_type(tuple(s), d) for s, d in results]
        op = op_cls(operands, types, self.stamp(attrs or {}), fuse=fuse_operands, body=body)
        self.builder.insert(op)
        outs = []
        for r, (s, d) in zip(op.res, results, strict=True):
            outs.append(Tensor(tuple(int(v) for v in s), np.dtype(d), value=r))
        return outs

    def emit1(
        self,
        op_cls: type[vision.VisionOp],
        ins: Sequence[Tensor],
        shape: Sequence[int],
        dtype: np.dtype,
        attrs: dict[str, Attribute] | None = None,
        *,
        body: Region | None = None,
    ) -> Tensor:
        return self.emit(op_cls, ins, [(shape, dtype)], attrs, body=body)[0]

    def reshape(self, t: Tensor, shape: Sequence[int]) -> Tensor:
        """`t` with a new shape: numpy for constants, `vision.reshape` at run time."""
        shape = tuple(int(d) for d in shape)
        if shape == t.shape:
            return t
        if int(np.prod(shape, dtype=np.int64)) != t.size:
            raise ShapeFault(f"cannot reshape {t.shape} to {shape}")
        if t.const is not None:
            return Tensor.constant(t.const.reshape(shape), t.hint)
        return self.emit1(vision.ReshapeOp, [t], shape, t.dtype)
