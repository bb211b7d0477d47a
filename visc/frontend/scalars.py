"""Typed scalar arithmetic for `vision.map` bodies.

The IR's integers are signless, so each helper takes the numpy dtype of its operands and
picks the float, signed or unsigned arith op (and `i1` logic for bool).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, IntegerType
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint

from visc.dialects import vision
from visc.frontend.context import ImportContext, Tensor, broadcast_shapes
from visc.frontend.dtypes import element_type, is_bool, is_float, is_unsigned

_FLOAT_CMP = {"eq": "oeq", "ne": "une", "lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge"}
_INT_CMP = {"eq": "eq", "ne": "ne", "lt": "slt", "le": "sle", "gt": "sgt", "ge": "sge"}
_UINT_CMP = {"eq": "eq", "ne": "ne", "lt": "ult", "le": "ule", "gt": "ugt", "ge": "uge"}


class Scalars:
    """Emits scalar ops at the end of a body block."""

    def __init__(self, block: Block):
        self.builder = Builder(InsertPoint.at_end(block))

    def emit(self, op: Operation) -> SSAValue:
        self.builder.insert(op)
        return op.results[0]

    def const(self, value: float | int | bool, dtype: np.dtype) -> SSAValue:
        dtype = np.dtype(dtype)
        elt = element_type(dtype)
        if is_float(dtype):
            return self.emit(arith.ConstantOp(FloatAttr(float(value), elt)))
        assert isinstance(elt, IntegerType)
        width = elt.width.data
        v = int(bool(value)) if width == 1 else int(value) & ((1 << width) - 1)
        if width > 1 and v >= 1 << (width - 1):
            v -= 1 << width
        return self.emit(arith.ConstantOp(IntegerAttr(v, elt)))

    # -- arithmetic --------------------------------------------------------------------

    def add(self, a: SSAValue, b: SSAValue, dt: np.dtype) -> SSAValue:
        if is_float(dt):
            return self.emit(arith.AddfOp(a, b))
        return self.emit(arith.XOrIOp(a, b) if is_bool(dt) else arith.AddiOp(a, b))

    def sub(self, a: SSAValue, b: SSAValue, dt: np.dtype) -> SSAValue:
        return self.emit(arith.SubfOp(a, b) if is_float(dt) else arith.SubiOp(a, b))

    def mul(self, a: SSAValue, b: SSAValue, dt: np.dtype) -> SSAValue:
        if is_float(dt):
            return self.emit(arith.MulfOp(a, b))
        return self.emit(arith.AndIOp(a, b) if is_bool(dt) else arith.MuliOp(a, b))

    def div(self, a: SSAValue, b: SSAValue, dt: np.dtype) -> SSAValue:
        if is_float(dt):
            return self.emit(arith.DivfOp(a, b))
        return self.emit(arith.DivUIOp(a, b) if is_unsigned(dt) else arith.DivSIOp(a, b))

    def rem(self, a: SSAValue, b: SSAValue, dt: np.dtype) -> SSAValue:
        """C-style remainder (sign of the dividend): C's fmod for floats, where a finite value
        modulo an infinity is the value itself (the quotient rounds to 0, and 0 * inf is nan)."""
        if is_float(dt):
            q = self.emit(math.TruncOp(self.emit(arith.DivfOp(a, b))))
            r = self.emit(arith.SubfOp(a, self.emit(arith.MulfOp(q, b))))
            inf = self.const(np.inf, dt)
            keep = self.min(self.cmp("eq", self.abs(b, dt), inf, dt), self.cmp("lt", self.abs(a, dt), inf, dt),
                            np.dtype(np.bool_))
            return self.select(keep, a, r)
        return self.emit(arith.RemUIOp(a, b) if is_unsigned(dt) else arith.RemSIOp(a, b))

    def neg(self, a: SSAValue, dt: np.dtype) -> SSAValue:
        if is_float(dt):
            return self.emit(arith.NegfOp(a))
        return self.emit(arith.SubiOp(self.const(0, dt), a))

    def abs(self, a: SSAValue, dt: np.dtype) -> SSAValue:
        if is_float(dt):
            return self.emit(math.AbsFOp(a))
        if is_unsigned(dt) or is_bool(dt):
            return a
        return self.emit(math.AbsIOp(a))

    def max(self, a: SSAValue, b: SSAValue, dt: np.dtype) -> SSAValue:
        if is_float(dt):
            return self.emit(arith.MaximumfOp(a, b))
        if is_bool(dt):
            return self.emit(arith.OrIOp(a, b))
        return self.emit(arith.MaxUIOp(a, b) if is_unsigned(dt) else arith.MaxSIOp(a, b))

    def min(self, a: SSAValue, b: SSAValue, dt: np.dtype) -> SSAValue:
        if is_float(dt):
            return self.emit(arith.MinimumfOp(a, b))
        if is_bool(dt):
            return self.emit(arith.AndIOp(a, b))
        return self.emit(arith.MinUIOp(a, b) if is_unsigned(dt) else arith.MinSIOp(a, b))

    def cmp(self, pred: str, a: SSAValue, b: SSAValue, dt: np.dtype) -> SSAValue:
        """`pred` is one of eq ne lt le gt ge; the result is i1."""
        if is_float(dt):
            return self.emit(arith.CmpfOp(a, b, _FLOAT_CMP[pred]))
        table = _UINT_CMP if is_unsigned(dt) or is_bool(dt) else _INT_CMP
        return self.emit(arith.CmpiOp(a, b, table[pred]))

    def select(self, cond: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(arith.SelectOp(cond, a, b))

    def unary(self, op_cls: Callable[[SSAValue], Operation], a: SSAValue) -> SSAValue:
        return self.emit(op_cls(a))

    def clamp01(self, a: SSAValue, dt: np.dtype) -> SSAValue:
        return self.max(self.min(a, self.const(1.0, dt), dt), self.const(0.0, dt), dt)

    # -- conversions -------------------------------------------------------------------

    def cast(self, x: SSAValue, src: np.dtype, dst: np.dtype) -> SSAValue:
        """ONNX Cast semantics between the IR's element types."""
        src, dst = np.dtype(src), np.dtype(dst)
        if src == dst:
            return x
        t = element_type(dst)
        if is_bool(dst):
            return self.cmp("ne", x, self.const(0, src), src)
        if is_float(src) and is_float(dst):
            if dst.itemsize > src.itemsize:
                return self.emit(arith.ExtFOp(x, t))
            return self.emit(arith.TruncFOp(x, t))
        if is_float(dst):
            unsigned = is_unsigned(src) or is_bool(src)
            return self.emit(arith.UIToFPOp(x, t) if unsigned else arith.SIToFPOp(x, t))
        if is_float(src):
            return self.emit(arith.FPToUIOp(x, t) if is_unsigned(dst) else arith.FPToSIOp(x, t))
        # integer -> integer (bool counts as a 1-bit unsigned integer)
        src_bits = 1 if is_bool(src) else 8 * src.itemsize
        if src_bits == 8 * dst.itemsize:
            return x
        if src_bits > 8 * dst.itemsize:
            return self.emit(arith.TruncIOp(x, t))
        unsigned = is_unsigned(src) or is_bool(src)
        return self.emit(arith.ExtUIOp(x, t) if unsigned else arith.ExtSIOp(x, t))


Build = Callable[[Scalars, list[SSAValue]], SSAValue]


def _inlinable(t: Tensor) -> bool:
    return t.const is not None and t.size == 1


def emit_map(
    ctx: ImportContext,
    operands: Sequence[Tensor],
    out_dtype: np.dtype,
    build: Build,
    out_shape: Sequence[int] | None = None,
) -> Tensor:
    """One `vision.map` over broadcast `operands`; single-element constants become
    `arith.constant`s in the body instead of inputs."""
    shapes = [t.shape for t in operands]
    if out_shape is not None:
        shapes.append(tuple(out_shape))
    shape = broadcast_shapes(*shapes) if shapes else ()
    ins = [t for t in operands if not _inlinable(t)]
    block = Block(arg_types=[element_type(t.dtype) for t in ins])
    s = Scalars(block)
    args: list[SSAValue] = []
    k = 0
    for t in operands:
        if _inlinable(t):
            assert t.const is not None
            args.append(s.const(t.const.reshape(()).item(), t.dtype))
        else:
            args.append(block.args[k])
            k += 1
    result = build(s, args)
    s.builder.insert(vision.YieldOp(result))
    return ctx.emit1(vision.MapOp, ins, shape, out_dtype, body=Region(block))
