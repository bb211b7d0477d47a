"""`convert-arith-to-llvm`: `arith` ops -> `llvm` ops and intrinsics.

Target-neutral (the CPU backend reuses `ARITH_HANDLERS` for host code). Semantics follow
the OpenCL emitter's so both GPU targets compute the same numbers:

* ``maximumf``/``minimumf`` propagate NaN (`llvm.maximum`), ``maxnumf``/``minnumf`` do not;
* float -> int conversions saturate (`llvm.fptosi.sat`), which is what the hardware's
  ``cvt.rzi`` does, so out-of-range values give the same answer as OpenCL on NVIDIA;
* ``uitofp`` is exact for every width (LLVM's dialect here has no `uitofp`: narrow values
  go through a wider signed conversion, 64-bit ones through the usual halving trick);
* ``index`` is ``i<index-bitwidth>`` (32 by default), like the OpenCL backend's ``int``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    VectorType,
    i1,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass

from visc.passes.llvm.conversion import (
    Handler,
    LLVMTypeConverter,
    Lowering,
    TableLowering,
    apply_lowering,
    gpu_modules,
    intrinsic_suffix,
    unsupported,
)

CMPI = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]
CMPF = ["false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord",
        "ueq", "ugt", "uge", "ult", "ule", "une", "uno", "true"]


def _element(typ: Attribute) -> Attribute:
    return typ.element_type if isinstance(typ, VectorType) else typ


def _width(typ: Attribute) -> int:
    elt = _element(typ)
    assert isinstance(elt, IntegerType)
    return elt.width.data


def _with_element(typ: Attribute, elt: Attribute) -> Attribute:
    return VectorType(elt, typ.get_shape()) if isinstance(typ, VectorType) else elt


# -- handlers -------------------------------------------------------------------------------


def _binary(cls: type[Operation]) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        a, b = c.operands()
        return [c.emit(cls(a, b))]  # type: ignore[call-arg]

    return handle


def _intrinsic(base: str, extra_false: bool = False) -> Handler:
    """``llvm.<base>.<type>`` on the operands (plus an `i1 false` flag for ctlz/cttz/abs)."""

    def handle(c: Lowering) -> list[SSAValue]:
        args = c.operands()
        typ = c.result_type()
        if extra_false:
            args.append(c.const(0, i1))
        return [c.intrinsic(f"llvm.{base}.{intrinsic_suffix(typ)}", args, typ)]

    return handle


def _constant(c: Lowering) -> list[SSAValue]:
    op = c.op
    typ = c.result_type()
    attr = op.properties.get("value")
    if isinstance(attr, IntegerAttr):
        value: Attribute = IntegerAttr(int(attr.value.data), _element(typ), truncate_bits=True)  # type: ignore[arg-type]
    elif isinstance(attr, FloatAttr):
        value = attr
    elif isinstance(attr, DenseIntOrFPElementsAttr):
        value = attr if attr.get_type() == typ else DenseIntOrFPElementsAttr.from_list(
            typ, list(attr.get_values()))  # type: ignore[arg-type]
    else:
        raise unsupported(op, f"constant {attr} has no llvm equivalent")
    return [c.emit(llvm.ConstantOp(value, typ))]


def _negf(c: Lowering) -> list[SSAValue]:
    return [c.emit(llvm.FNegOp(c.operand(0)))]


def _icmp(c: Lowering) -> list[SSAValue]:
    a, b = c.operands()
    if isinstance(a.type, VectorType):
        raise unsupported(c.op, "vector comparisons are not supported")
    pred = CMPI[int(c.op.properties["predicate"].value.data)]  # type: ignore[attr-defined]
    flag = IntegerAttr(llvm.ICmpPredicateFlag(pred).to_int(), i64)
    return [c.emit(llvm.ICmpOp(a, b, flag))]


def _fcmp(c: Lowering) -> list[SSAValue]:
    a, b = c.operands()
    if isinstance(a.type, VectorType):
        raise unsupported(c.op, "vector comparisons are not supported")
    pred = CMPF[int(c.op.properties["predicate"].value.data)]  # type: ignore[attr-defined]
    if pred in ("false", "true"):
        return [c.const(1 if pred == "true" else 0, i1)]
    return [c.emit(llvm.FCmpOp(a, b, pred))]


def _select(c: Lowering) -> list[SSAValue]:
    cond, a, b = c.operands()
    if isinstance(cond.type, VectorType):
        raise unsupported(c.op, "vector conditions are not supported")
    return [c.emit(llvm.SelectOp(cond, a, b))]


def _zext_or_trunc(c: Lowering, x: SSAValue, to: Attribute, signed: bool) -> SSAValue:
    src, dst = _width(x.type), _width(to)
    if src == dst:
        return x
    if src > dst:
        return c.emit(llvm.TruncOp(x, to))
    return c.emit((llvm.SExtOp if signed else llvm.ZExtOp)(x, to))


def _cast(cls: type[Operation]) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        return [c.emit(cls(c.operand(0), c.result_type()))]  # type: ignore[call-arg]

    return handle


def _index_cast(signed: bool) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        return [_zext_or_trunc(c, c.operand(0), c.result_type(), signed)]

    return handle


def _fp_to_int(signed: bool) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        x = c.operand(0)
        typ = c.result_type()
        kind = "fptosi" if signed else "fptoui"
        return [c.intrinsic(f"llvm.{kind}.sat.{intrinsic_suffix(typ)}.{intrinsic_suffix(x.type)}", [x], typ)]

    return handle


def _uitofp(c: Lowering) -> list[SSAValue]:
    x = c.operand(0)
    typ = c.result_type()
    width = _width(x.type)
    if width < 64:
        wide = _with_element(x.type, IntegerType(64 if width > 16 else 32))
        return [c.emit(llvm.SIToFPOp(c.emit(llvm.ZExtOp(x, wide)), typ))]
    # 64 bits: values with the top bit set are halved (keeping the lost bit sticky so the
    # rounding is unchanged), converted, and doubled
    one = c.const(1, x.type)
    zero = c.const(0, x.type)
    half = c.emit(llvm.OrOp(c.emit(llvm.LShrOp(x, one)), c.emit(llvm.AndOp(x, one))))
    big = c.emit(llvm.ICmpOp(x, zero, IntegerAttr(llvm.ICmpPredicateFlag("slt").to_int(), i64)))
    small_value = c.emit(llvm.SIToFPOp(x, typ))
    halved = c.emit(llvm.SIToFPOp(half, typ))
    doubled = c.emit(llvm.FAddOp(halved, halved))
    return [c.emit(llvm.SelectOp(big, doubled, small_value))]


def _div_rounded(kind: str) -> Handler:
    """floordivsi / ceildivsi / ceildivui: truncating division plus a correction of one."""

    def handle(c: Lowering) -> list[SSAValue]:
        a, b = c.operands()
        if isinstance(a.type, VectorType):
            raise unsupported(c.op, "only scalars are supported")
        typ = a.type
        zero = c.const(0, typ)

        def cmp(x: SSAValue, y: SSAValue, pred: str) -> SSAValue:
            return c.emit(llvm.ICmpOp(x, y, IntegerAttr(llvm.ICmpPredicateFlag(pred).to_int(), i64)))

        if kind == "ceildivui":
            q = c.emit(llvm.UDivOp(a, b))
            r = c.emit(llvm.URemOp(a, b))
            adjust = cmp(r, zero, "ne")
            return [c.emit(llvm.AddOp(q, c.emit(llvm.ZExtOp(adjust, typ))))]
        q = c.emit(llvm.SDivOp(a, b))
        r = c.emit(llvm.SRemOp(a, b))
        inexact = cmp(r, zero, "ne")
        signs_differ = c.emit(llvm.XOrOp(cmp(r, zero, "slt"), cmp(b, zero, "slt")))
        if kind == "floordivsi":
            adjust = c.emit(llvm.AndOp(inexact, signs_differ))
            return [c.emit(llvm.SubOp(q, c.emit(llvm.ZExtOp(adjust, typ))))]
        same_sign = c.emit(llvm.XOrOp(signs_differ, c.const(1, i1)))
        adjust = c.emit(llvm.AndOp(inexact, same_sign))
        return [c.emit(llvm.AddOp(q, c.emit(llvm.ZExtOp(adjust, typ))))]

    return handle


ARITH_HANDLERS: dict[str, Handler] = {
    "arith.constant": _constant,
    "arith.addi": _binary(llvm.AddOp), "arith.subi": _binary(llvm.SubOp), "arith.muli": _binary(llvm.MulOp),
    "arith.divsi": _binary(llvm.SDivOp), "arith.divui": _binary(llvm.UDivOp),
    "arith.remsi": _binary(llvm.SRemOp), "arith.remui": _binary(llvm.URemOp),
    "arith.andi": _binary(llvm.AndOp), "arith.ori": _binary(llvm.OrOp), "arith.xori": _binary(llvm.XOrOp),
    "arith.shli": _binary(llvm.ShlOp), "arith.shrsi": _binary(llvm.AShrOp), "arith.shrui": _binary(llvm.LShrOp),
    "arith.addf": _binary(llvm.FAddOp), "arith.subf": _binary(llvm.FSubOp), "arith.mulf": _binary(llvm.FMulOp),
    "arith.divf": _binary(llvm.FDivOp), "arith.negf": _negf,
    "arith.maximumf": _intrinsic("maximum"), "arith.minimumf": _intrinsic("minimum"),
    "arith.maxnumf": _intrinsic("maxnum"), "arith.minnumf": _intrinsic("minnum"),
    "arith.maxsi": _intrinsic("smax"), "arith.minsi": _intrinsic("smin"),
    "arith.maxui": _intrinsic("umax"), "arith.minui": _intrinsic("umin"),
    "arith.floordivsi": _div_rounded("floordivsi"), "arith.ceildivsi": _div_rounded("ceildivsi"),
    "arith.ceildivui": _div_rounded("ceildivui"),
    "arith.cmpi": _icmp, "arith.cmpf": _fcmp, "arith.select": _select,
    "arith.extf": _cast(llvm.FPExtOp), "arith.truncf": _cast(llvm.FPTruncOp),
    "arith.extsi": _cast(llvm.SExtOp), "arith.extui": _cast(llvm.ZExtOp), "arith.trunci": _cast(llvm.TruncOp),
    "arith.sitofp": _cast(llvm.SIToFPOp), "arith.uitofp": _uitofp,
    "arith.fptosi": _fp_to_int(True), "arith.fptoui": _fp_to_int(False),
    "arith.index_cast": _index_cast(True), "arith.index_castui": _index_cast(False),
    "arith.bitcast": _cast(llvm.BitcastOp),
}


def check_converted(module: Operation, prefixes: tuple[str, ...], where: Callable[[Operation], bool] | None = None) -> None:
    """Raise for the first op of the given dialects that a pass left behind in a kernel."""
    for kernels in gpu_modules(module):
        for op in kernels.walk():
            if op.name.startswith(prefixes) and (where is None or where(op)):
                raise unsupported(op, "no lowering is implemented for it")


@dataclass(frozen=True)
class ConvertArithToLLVMPass(ModulePass):
    """Lower the `arith` ops of every `gpu.module` to the llvm dialect."""

    name = "convert-arith-to-llvm"

    index_bitwidth: int = 32

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_lowering(op, TableLowering(ARITH_HANDLERS, LLVMTypeConverter(self.index_bitwidth)))
        check_converted(op, ("arith.",))


__all__ = ["ConvertArithToLLVMPass", "ARITH_HANDLERS", "CMPI", "CMPF", "check_converted"]
