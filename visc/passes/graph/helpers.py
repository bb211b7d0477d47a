"""Small IR utilities shared by the graph passes: op names, use queries and scalar bodies."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects.builtin import (
    AnyFloat,
    ArrayAttr,
    FloatAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint

from visc.dialects.vision import MapOp, ReshapeOp, VisionOp, WeightOp, YieldOp, element_type_of
from visc.errors import CompileError

BodyFn = Callable[[Builder, Sequence[SSAValue]], SSAValue]


def string_list(op: Operation, key: str) -> list[str]:
    """The strings of an array attribute such as an entry function's `vision.input_names`
    (empty when it is absent)."""
    attr = op.attributes.get(key)
    return [a.data for a in attr.data if isinstance(a, StringAttr)] if isinstance(attr, ArrayAttr) else []


def node_name(op: Operation) -> str:
    """The ONNX node an op came from (its `onnx_node`), or the op name when it has none."""
    attr = op.attributes.get("onnx_node")
    return attr.data if isinstance(attr, StringAttr) else op.name


def merged_names(ops: Sequence[Operation], key: str = "onnx_node") -> StringAttr | None:
    """`key` of several ops joined with '+' (each name once), as passes that merge ops record."""
    parts: list[str] = []
    for op in ops:
        attr = op.attributes.get(key)
        if isinstance(attr, StringAttr):
            for part in attr.data.split("+"):
                if part not in parts:
                    parts.append(part)
    return StringAttr("+".join(parts)) if parts else None


def merged_attributes(base: Operation, ops: Sequence[Operation]) -> dict[str, Attribute]:
    """`base`'s attributes with `onnx_node`/`onnx_op` naming every op in `ops`."""
    attrs = dict(base.attributes)
    for key in ("onnx_node", "onnx_op"):
        merged = merged_names(ops, key)
        if merged is not None:
            attrs[key] = merged
    return attrs


def is_tensor_op(op: Operation) -> bool:
    """A vision compute op still on tensors (so it is pure and its results are values)."""
    return isinstance(op, VisionOp) and bool(op.res) and isinstance(op.res[0].type, TensorType)


def weight_of(value: SSAValue) -> WeightOp | None:
    owner = value.owner
    return owner if isinstance(owner, WeightOp) else None


def is_constant(value: SSAValue) -> bool:
    """Whether `value` is computed from weights only (so const-eval can fold it)."""
    pending, seen = [value], set()
    while pending:
        v = pending.pop()
        if v in seen:
            continue
        seen.add(v)
        owner = v.owner
        if isinstance(owner, WeightOp):
            continue
        if not is_tensor_op(owner):
            return False
        assert isinstance(owner, VisionOp)
        pending.extend([*owner.ins, *owner.fuse])
    return True


def sole_user(value: SSAValue) -> Operation | None:
    """The one operation using `value` (possibly through several operands), else None."""
    users = {id(use.operation): use.operation for use in value.uses}
    if len(users) != 1:
        return None
    return next(iter(users.values()))


def clone_body(block: Block, args: Sequence[SSAValue], builder: Builder) -> tuple[SSAValue, ...]:
    """Clones a body's ops (without its yield) at `builder`, block args mapped to `args`;
    returns the values the body yields, mapped."""
    mapping: dict[SSAValue, SSAValue] = dict(zip(block.args, args, strict=True))
    for op in block.ops:
        if isinstance(op, YieldOp):
            return tuple(mapping.get(v, v) for v in op.values)
        builder.insert(op.clone(mapping))
    raise CompileError("a vision body does not end with vision.yield")


def scalar_body(arg_types: Sequence[Attribute], fn: BodyFn) -> Region:
    """A one-block region with one argument per type whose yield is `fn(builder, args)`."""
    block = Block(arg_types=list(arg_types))
    builder = Builder(InsertPoint.at_end(block))
    result = fn(builder, block.args)
    builder.insert(YieldOp(result))
    return Region(block)


def make_map(
    ins: Sequence[SSAValue],
    result_type: Attribute,
    fn: BodyFn,
    attributes: dict[str, Attribute] | None = None,
) -> MapOp:
    """A `vision.map` over `ins` whose body is built by `fn` from one scalar per input."""
    body = scalar_body([element_type_of(v) for v in ins], fn)
    return MapOp(list(ins), [result_type], attributes or {}, body=body)


def make_reshape(value: SSAValue, shape: Sequence[int], attributes: dict[str, Attribute]) -> ReshapeOp:
    typ = value.type
    assert isinstance(typ, TensorType)
    return ReshapeOp([value], [TensorType(typ.element_type, list(shape))], dict(attributes))


def float_const(builder: Builder, value: float, typ: Attribute) -> SSAValue:
    if not isinstance(typ, AnyFloat):
        raise CompileError(f"expected a float element type, got {typ}")
    return builder.insert(arith.ConstantOp(FloatAttr(value, typ))).result


def convert_float(builder: Builder, value: SSAValue, to: Attribute) -> SSAValue:
    """`value` as float type `to` (extf/truncf); unchanged when the types already agree."""
    src = value.type
    if src == to:
        return value
    if not isinstance(src, AnyFloat) or not isinstance(to, AnyFloat):
        raise CompileError(f"cannot convert {src} to {to} in a weight computation")
    if src.bitwidth < to.bitwidth:
        return builder.insert(arith.ExtFOp(value, to)).result
    return builder.insert(arith.TruncFOp(value, to)).result


def is_float(typ: Attribute) -> bool:
    return isinstance(typ, AnyFloat)


def numpy_dtype(typ: Attribute, like: np.dtype | None = None) -> np.dtype:
    """The numpy dtype of a tensor/memref type's elements (i1 -> bool). Integer types are
    signless in IR: `like` (e.g. the stored array's dtype) supplies unsignedness."""
    elt = typ.element_type if isinstance(typ, TensorType | MemRefType) else typ
    if isinstance(elt, AnyFloat):
        return np.dtype({16: np.float16, 32: np.float32, 64: np.float64}[elt.bitwidth])
    if isinstance(elt, IntegerType):
        width = elt.width.data
        if width == 1:
            return np.dtype(np.bool_)
        unsigned = like is not None and like.kind == "u"
        return np.dtype(f"{'u' if unsigned else ''}int{width}")
    raise CompileError(f"no numpy dtype for element type {elt}")


def byte_size(typ: Attribute) -> int:
    """Bytes a static tensor/memref type occupies (i1 takes one byte per element)."""
    assert isinstance(typ, TensorType | MemRefType)
    count = 1
    for d in typ.get_shape():
        count *= d
    return count * numpy_dtype(typ).itemsize
