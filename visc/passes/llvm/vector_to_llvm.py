"""`convert-vector-to-llvm`: the register-level `vector` ops of stage 4 (broadcast, lane
extract/insert, fma, reduction) -> llvm vector instructions. `vector.load`/`vector.store`
are addressing and belong to `convert-memref-to-llvm`."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import llvm
from xdsl.dialects.builtin import AnyFloat, ModuleOp, VectorType
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass

from visc.passes.llvm.arith_to_llvm import check_converted
from visc.passes.llvm.conversion import (
    Handler,
    LLVMTypeConverter,
    Lowering,
    TableLowering,
    apply_lowering,
    intrinsic_suffix,
    unsupported,
)
from visc.passes.llvm.vector_lanes import extract_lane, insert_lane, splat


def _broadcast(c: Lowering) -> list[SSAValue]:
    typ = c.result_type()
    assert isinstance(typ, VectorType)
    x = c.operand(0)
    if isinstance(x.type, VectorType):
        raise unsupported(c.op, "only scalar-to-vector broadcasts are supported")
    if len(typ.get_shape()) != 1:
        raise unsupported(c.op, "only 1-D vectors are supported")
    return [splat(c, x, typ)]


def _static_lane(c: Lowering) -> int:
    op = c.op
    dynamic = op.operands[1:] if op.name == "vector.extract" else op.operands[2:]
    if dynamic:
        raise unsupported(op, "dynamic positions are not supported")
    pos = [int(v) for v in op.properties["static_position"].get_values()]  # type: ignore[attr-defined]
    if len(pos) != 1:
        raise unsupported(op, "only 1-D vectors are supported")
    return pos[0]


def _extract(c: Lowering) -> list[SSAValue]:
    return [extract_lane(c, c.operand(0), _static_lane(c))]


def _insert(c: Lowering) -> list[SSAValue]:
    lane = _static_lane(c)
    return [insert_lane(c, c.operand(1), c.operand(0), lane)]


def _fma(c: Lowering) -> list[SSAValue]:
    a, b, acc = c.operands()
    return [c.emit(llvm.FMAOp(a, b, acc))]


def _reduction(c: Lowering) -> list[SSAValue]:
    vec = c.operand(0)
    typ = vec.type
    assert isinstance(typ, VectorType)
    kind = str(c.op.properties["kind"].data)  # type: ignore[attr-defined]
    elt = typ.element_type
    values = [extract_lane(c, vec, lane) for lane in range(typ.element_count())]
    if len(c.op.operands) > 1:
        values.append(c.operand(1))
    is_float = isinstance(elt, AnyFloat)
    binary = {"add": llvm.FAddOp if is_float else llvm.AddOp, "mul": llvm.FMulOp if is_float else llvm.MulOp,
              "and": llvm.AndOp, "or": llvm.OrOp, "xor": llvm.XOrOp}
    intrinsic = {"maxnumf": "maxnum", "minnumf": "minnum", "maximumf": "maximum", "minimumf": "minimum",
                 "maxsi": "smax", "minsi": "smin", "maxui": "umax", "minui": "umin"}
    acc = values[0]
    for value in values[1:]:
        if kind in binary:
            acc = c.emit(binary[kind](acc, value))  # type: ignore[call-arg]
        elif kind in intrinsic:
            acc = c.intrinsic(f"llvm.{intrinsic[kind]}.{intrinsic_suffix(elt)}", [acc, value], elt)
        else:
            raise unsupported(c.op, f"reduction kind {kind} is not supported")
    return [acc]


VECTOR_HANDLERS: dict[str, Handler] = {
    "vector.broadcast": _broadcast, "vector.splat": _broadcast, "vector.extract": _extract,
    "vector.insert": _insert, "vector.fma": _fma, "vector.reduction": _reduction,
}


@dataclass(frozen=True)
class ConvertVectorToLLVMPass(ModulePass):
    """Lower register-level `vector` ops of every `gpu.module` to llvm vector instructions."""

    name = "convert-vector-to-llvm"

    index_bitwidth: int = 32

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_lowering(op, TableLowering(VECTOR_HANDLERS, LLVMTypeConverter(self.index_bitwidth)))
        check_converted(op, ("vector.",), lambda o: o.name not in ("vector.load", "vector.store"))


__all__ = ["ConvertVectorToLLVMPass", "VECTOR_HANDLERS"]

