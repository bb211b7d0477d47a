"""Builders for docs/ir.md "Stage 4" kernels, shared by every per-op lowering.

`KernelBuilder` appends the body of one top-level `scf.parallel`. Index arithmetic accepts
Python ints or SSA values and folds whatever is static while building (`add(x, 0)` is `x`,
`mul(3, 4)` is `12`, a comparison of two ints is a Python bool, a loop of one iteration is
inlined), and pure ops are value-numbered per block. Lowerings can therefore write the general
index formula once and the IR only gets the ops that are really needed -- no pattern-rewrite
fixpoint ever runs over the nests, which keeps lowering a whole network fast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects import arith, memref, scf, vector
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import (
    AnyFloat,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    VectorType,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

Idx = SSAValue | int
"""An index: static (Python int) or dynamic (SSA value of type `index`)."""
Cond = SSAValue | bool
"""A condition: static (Python bool) or dynamic (SSA value of type i1)."""

INDEX = IndexType()


def _fusable(t: Attribute) -> bool:
    """f32 and f64 multiply-adds are emitted as fma (see `KernelBuilder.fma`)."""
    return isinstance(t, Float32Type | Float64Type)


def is_float(t: Attribute) -> bool:
    """A float type, or a vector of floats."""
    if isinstance(t, VectorType):
        t = t.element_type
    return isinstance(t, AnyFloat)


def extreme(t: Attribute, lowest: bool) -> float | int:
    """The identity of max (lowest) or min (highest) for a float or signed integer type."""
    if is_float(t):
        return -math.inf if lowest else math.inf
    assert isinstance(t, IntegerType)
    w = t.width.data
    return -(1 << (w - 1)) if lowest else (1 << (w - 1)) - 1


def c_identifier(text: str, limit: int = 64) -> str:
    """A readable C identifier from arbitrary ONNX node text."""
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    ident = re.sub(r"_+", "_", ident)[:limit].rstrip("_")
    if not ident or not ident[0].isalpha():
        ident = "k_" + ident
    return ident


def broadcast_index(shape: Sequence[int], out_idx: Sequence[Idx]) -> list[Idx]:
    """The index of a numpy-broadcast operand of `shape` at output index `out_idx`."""
    lead = len(out_idx) - len(shape)
    return [0 if n == 1 else out_idx[lead + i] for i, n in enumerate(shape)]


def _Load(ref: SSAValue, *index: SSAValue) -> memref.LoadOp:  # noqa: N802 (op factories)
    return memref.LoadOp.get(ref, list(index))


def _VLoad(ref: SSAValue, typ: VectorType, *index: SSAValue) -> vector.LoadOp:  # noqa: N802
    return vector.LoadOp(ref, list(index), typ)


def _VExtract(v: SSAValue, lane: int) -> vector.ExtractOp:  # noqa: N802
    return vector.ExtractOp(v, [lane], v.type.element_type)  # type: ignore[attr-defined]


def _VInsert(s: SSAValue, v: SSAValue, lane: int) -> vector.InsertOp:  # noqa: N802
    return vector.InsertOp(s, v, [lane])


class KernelBuilder:
    """Appends ops to one kernel body; nested regions are built through `loop` and `if_`."""

    def __init__(self, root: Block):
        self.root = root
        self._blocks: list[Block] = [root]
        self._memo: list[dict[tuple[Any, ...], SSAValue]] = [{}]
        self._consts: dict[tuple[Attribute, Any], SSAValue] = {}
        self._const_ops: list[Operation] = []

    # -- emission ----------------------------------------------------------------------

    def emit(self, op: Operation) -> Operation:
        self._blocks[-1].add_op(op)
        return op

    def pure(self, cls: type[Operation], *args: SSAValue, key: Any = None, **kw: Any) -> SSAValue:
        """Create a pure single-result op, reusing an identical one already in scope."""
        k = (cls, key, *args, *sorted(kw.items()))
        for memo in reversed(self._memo):
            hit = memo.get(k)
            if hit is not None:
                return hit
        op = cls(*args, **kw)
        self.emit(op)
        self._memo[-1][k] = op.results[0]
        return op.results[0]

    def finish(self, terminator: Operation) -> None:
        """Hoist the kernel's constants to the top of its body and close it."""
        first = self.root.first_op
        if first is None:
            self.root.add_ops(self._const_ops)
        else:
            self.root.insert_ops_before(self._const_ops, first)
        self._const_ops = []
        self.root.add_op(terminator)

    # -- constants ---------------------------------------------------------------------

    def const(self, value: float | int | bool, typ: Attribute) -> SSAValue:
        """A constant of any scalar type, defined once at the top of the kernel."""
        if is_float(typ):
            value = float(value)
            if typ.bitwidth == 32:  # type: ignore[attr-defined]
                value = float(np.float32(value))  # the f32 the device will see
            key: Any = ("f", value.hex())  # -0.0 == 0.0 and nan != nan: key by the bits
            attr: Attribute = FloatAttr(value, typ)  # type: ignore[arg-type]
        else:
            value = int(value)
            if isinstance(typ, IntegerType) and typ.width.data == 1:
                value = -1 if value else 0
            key = ("i", value)
            attr = IntegerAttr(value, typ)  # type: ignore[arg-type]
        hit = self._consts.get((typ, key))
        if hit is not None:
            return hit
        op = arith.ConstantOp(attr, typ)
        self._const_ops.append(op)
        self._consts[(typ, key)] = op.result
        return op.result

    def idx(self, v: Idx) -> SSAValue:
        return self.const(v, INDEX) if isinstance(v, int) else v

    def cond(self, c: Cond) -> SSAValue:
        return self.const(bool(c), IntegerType(1)) if isinstance(c, bool) else c

    # -- index arithmetic (folds statics) ---------------------------------------------

    def add(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return a + b
        if isinstance(a, int) and a == 0:
            return b
        if isinstance(b, int) and b == 0:
            return a
        if isinstance(a, int):
            a, b = b, a
        return self.pure(arith.AddiOp, self.idx(a), self.idx(b))

    def sub(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return a - b
        if isinstance(b, int):
            return self.add(a, -b)
        return self.pure(arith.SubiOp, self.idx(a), self.idx(b))

    def mul(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return a * b
        if isinstance(a, int):
            a, b = b, a
        if isinstance(b, int):
            if b == 0:
                return 0
            if b == 1:
                return a
        return self.pure(arith.MuliOp, self.idx(a), self.idx(b))

    def div(self, a: Idx, b: int) -> Idx:
        """Division of a non-negative index, or an exact division, by a positive constant."""
        if isinstance(a, int):
            return a // b if a >= 0 else -(-a // b)
        if b == 1:
            return a
        return self.pure(arith.DivSIOp, a, self.idx(b))

    def rem(self, a: Idx, b: int) -> Idx:
        """Remainder of a non-negative index by a positive constant."""
        if isinstance(a, int):
            return a % b
        if b == 1:
            return 0
        return self.pure(arith.RemSIOp, a, self.idx(b))

    def min(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return min(a, b)
        return self.pure(arith.MinSIOp, self.idx(a), self.idx(b))

    def max(self, a: Idx, b: Idx) -> Idx:
        if isinstance(a, int) and isinstance(b, int):
            return max(a, b)
        return self.pure(arith.MaxSIOp, self.idx(a), self.idx(b))

    def clamp(self, a: Idx, lo: int, hi: int) -> Idx:
        return self.min(self.max(a, lo), hi)

    def cmp(self, pred: str, a: Idx, b: Idx) -> Cond:
        """Signed comparison of indices (or integers of one type): eq ne slt sle sgt sge."""
        if isinstance(a, int) and isinstance(b, int):
            return {
                "eq": a == b, "ne": a != b, "slt": a < b, "sle": a <= b, "sgt": a > b, "sge": a >= b,
            }[pred]
        typ = a.type if isinstance(a, SSAValue) else b.type  # type: ignore[union-attr]
        av = self.const(a, typ) if isinstance(a, int) else a
        bv = self.const(b, typ) if isinstance(b, int) else b
        return self.pure(arith.CmpiOp, av, bv, pred)

    def and_(self, a: Cond, b: Cond) -> Cond:
        if isinstance(a, bool):
            return b if a else False
        if isinstance(b, bool):
            return a if b else False
        return self.pure(arith.AndIOp, a, b)

    def or_(self, a: Cond, b: Cond) -> Cond:
        if isinstance(a, bool):
            return True if a else b
        if isinstance(b, bool):
            return True if b else a
        return self.pure(arith.OrIOp, a, b)

    def any_of(self, conds: Sequence[Cond]) -> Cond:
        out: Cond = False
        for c in conds:
            out = self.or_(out, c)
        return out

    def all_of(self, conds: Sequence[Cond]) -> Cond:
        out: Cond = True
        for c in conds:
            out = self.and_(out, c)
        return out

    def in_range(self, a: Idx, lo: int, hi: int, a_min: int, a_max: int) -> Cond:
        """lo <= a < hi, given that a lies in [a_min, a_max]; statically true parts vanish."""
        lower: Cond = True if a_min >= lo else self.cmp("sge", a, lo)
        upper: Cond = True if a_max < hi else self.cmp("slt", a, hi)
        if a_max < lo or a_min >= hi:
            return False
        return self.and_(lower, upper)

    def select(self, c: Cond, a: SSAValue, b: SSAValue) -> SSAValue:
        if isinstance(c, bool):
            return a if c else b
        if a is b:
            return a
        return self.pure(arith.SelectOp, c, a, b)

    def select_idx(self, c: Cond, a: Idx, b: Idx) -> Idx:
        if isinstance(c, bool):
            return a if c else b
        if isinstance(a, int) and isinstance(b, int) and a == b:
            return a
        return self.pure(arith.SelectOp, c, self.idx(a), self.idx(b))

    # -- scalar arithmetic on element values -------------------------------------------

    def op(self, cls: type[Operation], *args: SSAValue, **kw: Any) -> SSAValue:
        """Any pure arith/math op whose result type is its first operand's type."""
        return self.pure(cls, *args, **kw)

    def fadd(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.pure(arith.AddfOp, a, b) if is_float(a.type) else self.pure(arith.AddiOp, a, b)

    def fsub(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.pure(arith.SubfOp, a, b) if is_float(a.type) else self.pure(arith.SubiOp, a, b)

    def fmul(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.pure(arith.MulfOp, a, b) if is_float(a.type) else self.pure(arith.MuliOp, a, b)

    def fdiv(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.pure(arith.DivfOp, a, b) if is_float(a.type) else self.pure(arith.DivSIOp, a, b)

    def fmax(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.pure(arith.MaximumfOp, a, b) if is_float(a.type) else self.pure(arith.MaxSIOp, a, b)

    def fmax_num(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """max that ignores a NaN operand (``maxnumf``, C's fmax); signed max for integers."""
        return self.pure(arith.MaxnumfOp, a, b) if is_float(a.type) else self.pure(arith.MaxSIOp, a, b)

    def fmin(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.pure(arith.MinimumfOp, a, b) if is_float(a.type) else self.pure(arith.MinSIOp, a, b)

    def fma(self, a: SSAValue, b: SSAValue, acc: SSAValue) -> SSAValue:
        """acc + a * b, fused for f32/f64: LLVM CPU targets and OpenCL C compilers contract a
        multiply and an add only within one expression, so an unfused pair costs two
        instructions in every reduction. f16 stays mulf/addf (PoCL fails on half fma)."""
        if _fusable(a.type):
            return self.pure(mathd.FmaOp, a, b, acc)
        return self.fadd(acc, self.fmul(a, b))

    def exp(self, a: SSAValue) -> SSAValue:
        return self.pure(mathd.ExpOp, a)

    def log(self, a: SSAValue) -> SSAValue:
        return self.pure(mathd.LogOp, a)

    def sqrt(self, a: SSAValue) -> SSAValue:
        return self.pure(mathd.SqrtOp, a)

    def abs(self, a: SSAValue) -> SSAValue:
        return self.pure(mathd.AbsFOp, a) if is_float(a.type) else self.pure(mathd.AbsIOp, a)

    def pow(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.pure(mathd.PowFOp, a, b)

    def floor(self, a: SSAValue) -> SSAValue:
        return self.pure(mathd.FloorOp, a)

    def ceil(self, a: SSAValue) -> SSAValue:
        return self.pure(mathd.CeilOp, a)

    def fcmp(self, pred: str, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.pure(arith.CmpfOp, a, b, pred)

    # -- conversions -------------------------------------------------------------------

    def to_float(self, a: Idx, typ: Attribute) -> SSAValue:
        if isinstance(a, int):
            return self.const(float(a), typ)
        wide = self.pure(arith.IndexCastOp, a, i64, key="i64")
        return self.pure(arith.SIToFPOp, wide, typ, key=typ)

    def float_to_index(self, a: SSAValue) -> SSAValue:
        wide = self.pure(arith.FPToSIOp, a, i64, key="i64")
        return self.pure(arith.IndexCastOp, wide, INDEX, key="index")

    def fconvert(self, a: SSAValue, typ: Attribute) -> SSAValue:
        """Between float types (extf / truncf)."""
        if a.type == typ:
            return a
        wider = typ.bitwidth > a.type.bitwidth  # type: ignore[attr-defined]
        return self.pure(arith.ExtFOp if wider else arith.TruncFOp, a, typ)

    def int_to_index(self, a: SSAValue) -> SSAValue:
        if isinstance(a.type, IndexType):
            return a
        return self.pure(arith.IndexCastOp, a, INDEX, key="index")

    # -- memory ------------------------------------------------------------------------

    def load(self, ref: SSAValue, index: Sequence[Idx]) -> SSAValue:
        """memref.load, reusing an identical load in scope: kernels never write a buffer
        they read (bufferization keeps an op's outputs apart from its inputs)."""
        assert isinstance(ref.type, MemRefType) and ref.type.get_num_dims() == len(index), (ref.type, index)
        return self.pure(_Load, ref, *[self.idx(i) for i in index])

    def store(self, value: SSAValue, ref: SSAValue, index: Sequence[Idx]) -> None:
        assert isinstance(ref.type, MemRefType) and ref.type.get_num_dims() == len(index), (ref.type, index)
        self.emit(memref.StoreOp.get(value, ref, [self.idx(i) for i in index]))

    def flag(self, bad: Cond, status: SSAValue, value: SSAValue) -> None:
        """Record a failed run-time check in ``status`` (a `vision.status` word): ``[1, value]``.
        Racing threads may each store; any one offending value is enough to report."""

        def record() -> list[SSAValue]:
            self.store(self.const(1, i64), status, [0])
            wide = value
            if isinstance(value.type, IndexType):
                wide = self.pure(arith.IndexCastOp, value, i64, key="i64")
            elif isinstance(value.type, IntegerType) and value.type.width.data < 64:
                wide = self.pure(arith.ExtSIOp, value, i64)
            self.store(wide, status, [1])
            return []

        self.if_(bad, record)

    # -- vectors (1-D, for schedules with a `vec` key) ---------------------------------

    def vbroadcast(self, scalar: SSAValue, lanes: int) -> SSAValue:
        return self.pure(vector.BroadcastOp, scalar, VectorType(scalar.type, [lanes]))

    def vload(self, ref: SSAValue, index: Sequence[Idx], lanes: int) -> SSAValue:
        """`lanes` contiguous elements along the innermost dim (reused like `load`)."""
        assert isinstance(ref.type, MemRefType)
        typ = VectorType(ref.type.element_type, [lanes])
        return self.pure(_VLoad, ref, typ, *[self.idx(i) for i in index])

    def vstore(self, value: SSAValue, ref: SSAValue, index: Sequence[Idx]) -> None:
        self.emit(vector.StoreOp(value, ref, [self.idx(i) for i in index]))

    def vextract(self, v: SSAValue, lane: int) -> SSAValue:
        typ = v.type
        assert isinstance(typ, VectorType)
        return self.pure(_VExtract, v, lane)

    def vinsert(self, scalar: SSAValue, v: SSAValue, lane: int) -> SSAValue:
        return self.pure(_VInsert, scalar, v, lane)

    def vfrom(self, lanes: Sequence[SSAValue]) -> SSAValue:
        """A vector of the given scalars."""
        v = self.vbroadcast(lanes[0], len(lanes))
        for i, s in enumerate(lanes[1:], 1):
            v = self.vinsert(s, v, i)
        return v

    def vfma(self, a: SSAValue, b: SSAValue, acc: SSAValue) -> SSAValue:
        """acc + a * b on vectors, fused like `fma` (f16 stays mulf/addf)."""
        if isinstance(a.type, VectorType) and _fusable(a.type.element_type):
            return self.pure(vector.FMAOp, a, b, acc)
        return self.fadd(acc, self.fmul(a, b))

    # -- structured control flow -------------------------------------------------------

    def _open(self, block: Block) -> None:
        self._blocks.append(block)
        self._memo.append({})

    def _close(self) -> None:
        self._blocks.pop()
        self._memo.pop()

    def loop(
        self,
        lb: Idx,
        ub: Idx,
        inits: Sequence[SSAValue],
        body: Callable[[Idx, list[SSAValue]], Sequence[SSAValue]],
        unroll: int = 1,
        step: int = 1,
    ) -> list[SSAValue]:
        """scf.for lb..ub carrying `inits`; `unroll` != 1 becomes the `vision.unroll` hint
        (0 = fully). Trip counts known to be 0 or 1 emit no loop."""
        if isinstance(lb, int) and isinstance(ub, int):
            if ub - lb <= 0:
                return list(inits)
            if ub - lb <= step:
                return list(body(lb, list(inits)))
        block = Block(arg_types=[INDEX, *[v.type for v in inits]])
        self._open(block)
        outs = body(block.args[0], list(block.args[1:]))
        block.add_op(scf.YieldOp(*outs))
        self._close()
        op = scf.ForOp(self.idx(lb), self.idx(ub), self.idx(step), list(inits), Region(block))
        if unroll != 1:
            op.attributes["vision.unroll"] = IntegerAttr(unroll, i64)
        self.emit(op)
        return list(op.results)

    def if_(
        self,
        c: Cond,
        then: Callable[[], Sequence[SSAValue]],
        otherwise: Callable[[], Sequence[SSAValue]] | None = None,
        types: Sequence[Attribute] = (),
    ) -> list[SSAValue]:
        """scf.if; a static condition inlines the taken branch."""
        if isinstance(c, bool):
            if c:
                return list(then())
            return list(otherwise()) if otherwise is not None else []
        regions = []
        for fn in (then, otherwise):
            if fn is None:
                regions.append(Region())
                continue
            block = Block()
            self._open(block)
            outs = fn()
            block.add_op(scf.YieldOp(*outs))
            self._close()
            regions.append(Region(block))
        op = scf.IfOp(c, list(types), regions[0], regions[1])
        self.emit(op)
        return list(op.results)

    def inline_body(self, body: Region, args: Sequence[SSAValue]) -> list[SSAValue]:
        """Clone a `vision` body region (map/epilogue) here with its block arguments bound
        to `args`; returns the values its `vision.yield` gives. Constants are hoisted."""
        block = body.block
        mapping: dict[SSAValue, SSAValue] = dict(zip(block.args, args, strict=True))
        for op in block.ops:
            if op is block.last_op:
                return [mapping.get(v, v) for v in op.operands]
            if isinstance(op, arith.ConstantOp) and not isinstance(op.value, FloatAttr | IntegerAttr):
                raise ValueError(f"unsupported constant in body: {op.value}")
            if isinstance(op, arith.ConstantOp):
                attr = op.value
                mapping[op.result] = self.const(attr.value.data, op.result.type)  # type: ignore[union-attr]
                continue
            new = op.clone(value_mapper=mapping)
            self.emit(new)
            for old, nv in zip(op.results, new.results, strict=True):
                mapping[old] = nv
        raise ValueError("body has no terminator")

    def inline_body_vector(self, body: Region, args: Sequence[SSAValue], lanes: int) -> list[SSAValue]:
        """Like `inline_body`, with every scalar replaced by a vector of `lanes` (the body must
        pass `vectorizable_body`)."""
        block = body.block
        mapping: dict[SSAValue, SSAValue] = dict(zip(block.args, args, strict=True))
        for op in block.ops:
            if op is block.last_op:
                return [mapping.get(v, v) for v in op.operands]
            if isinstance(op, arith.ConstantOp):
                scalar = self.const(op.value.value.data, op.result.type)  # type: ignore[union-attr]
                mapping[op.result] = self.vbroadcast(scalar, lanes)
                continue
            new = type(op).create(
                operands=[mapping[v] for v in op.operands],
                result_types=[VectorType(r.type, [lanes]) for r in op.results],
                properties=dict(op.properties),
                attributes=dict(op.attributes),
            )
            self.emit(new)
            for old, nv in zip(op.results, new.results, strict=True):
                mapping[old] = nv
        raise ValueError("body has no terminator")


_VECTOR_SAFE = frozenset({
    "arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.maximumf", "arith.minimumf", "arith.maxnumf",
    "arith.negf", "math.exp", "math.log", "math.sqrt", "math.rsqrt", "math.tanh", "math.erf",
    "math.absf", "math.powf", "math.floor", "math.ceil", "math.fma", "math.exp2", "math.log2",
    "math.sin", "math.cos", "math.expm1", "math.log1p",
})


def vectorizable_body(body: Region) -> bool:
    """Whether every op of a scalar float body is elementwise arithmetic that is just as
    valid on vectors (no comparisons, selects, casts or nested regions)."""
    block = body.block
    for op in block.ops:
        if op is block.last_op:
            return True
        if isinstance(op, arith.ConstantOp):
            if not isinstance(op.value, FloatAttr):
                return False
        elif op.name not in _VECTOR_SAFE or op.regions:
            return False
    return False


def is_weight(value: SSAValue) -> bool:
    """Whether `value` is a `vision.weight`, seen through `vision.reshape` views."""
    from visc.dialects.vision import ReshapeOp, WeightOp

    while isinstance(value.owner, ReshapeOp):
        value = value.owner.ins[0]
    return isinstance(value.owner, WeightOp)


class FunctionLowering:
    """Per-function state: hoisted bound constants, the insertion anchor, and the kernel names
    taken so far (shared by all functions of a module: kernels end up in one gpu.module)."""

    def __init__(self, block: Block, names: set[str] | None = None):
        self.block = block
        self.anchor: Operation | None = None
        self._consts: dict[int, SSAValue] = {}
        self._names: set[str] = names if names is not None else set()
        self.hints: list[str] | None = None  # when a list, the name hints asked for are noted

    def index_const(self, value: int) -> SSAValue:
        hit = self._consts.get(value)
        if hit is None:
            op = arith.ConstantOp(IntegerAttr(value, INDEX), INDEX)
            assert self.anchor is not None
            self.block.insert_op_before(op, self.anchor)
            hit = self._consts[value] = op.result
        return hit

    def view(self, value: SSAValue, shape: Sequence[int], node: str) -> SSAValue:
        """A `vision.reshape` view of a host memref, defined before the anchor."""
        from visc.dialects.vision import ReshapeOp

        typ = value.type
        assert isinstance(typ, MemRefType) and self.anchor is not None
        if tuple(typ.get_shape()) == tuple(shape):
            return value
        op = ReshapeOp([value], [MemRefType(typ.element_type, list(shape))],
                       {"onnx_node": StringAttr(node), "onnx_op": StringAttr("Reshape")})
        self.block.insert_op_before(op, self.anchor)
        return op.res[0]

    def status(self, message: str, checked: SSAValue) -> SSAValue | None:
        """A status word (`vision.status`) for the op being lowered, tagged with its ONNX node,
        in which its kernels `KernelBuilder.flag` what ``message`` says went wrong with the
        values of ``checked``; None when ``checked`` is a weight (seen through reshapes): the
        importer checked those constants already."""
        from visc.dialects.vision import StatusOp

        if is_weight(checked):
            return None
        assert self.anchor is not None
        op = StatusOp(message)
        for key in ("onnx_node", "onnx_op"):
            if key in self.anchor.attributes:
                op.attributes[key] = self.anchor.attributes[key]
        self.block.insert_op_before(op, self.anchor)
        return op.result

    def constants(self) -> list[Operation]:
        """The hoisted index constants made so far (shared by every kernel after them)."""
        return [v.owner for v in self._consts.values() if isinstance(v.owner, Operation)]

    def unique_name(self, hint: str) -> str:
        if self.hints is not None:
            self.hints.append(hint)
        name = c_identifier(hint)
        if name in self._names:
            i = 2
            while f"{name}_{i}" in self._names:
                i += 1
            name = f"{name}_{i}"
        self._names.add(name)
        return name

    def kernel(
        self,
        name_hint: str,
        bounds: Sequence[int],
        workgroup_size: int,
        body: Callable[[KernelBuilder, list[Idx]], None],
    ) -> scf.ParallelOp | None:
        """Build one top-level scf.parallel over `bounds` before the anchor op.

        Dimensions of extent 1 are dropped (their index is the static 0 for the body); an
        empty space (some extent 0) builds nothing."""
        assert self.anchor is not None
        if any(b == 0 for b in bounds):
            return None
        kept = [i for i, b in enumerate(bounds) if b != 1] or [len(bounds) - 1] if bounds else []
        block = Block(arg_types=[INDEX] * max(len(kept), 1))
        ivs: list[Idx] = [0] * len(bounds)
        for arg, i in zip(block.args, kept, strict=False):
            ivs[i] = arg
        kb = KernelBuilder(block)
        body(kb, ivs)
        kb.finish(scf.ReduceOp())
        ubs = [self.index_const(bounds[i]) for i in kept] or [self.index_const(1)]
        zero, one = self.index_const(0), self.index_const(1)
        op = scf.ParallelOp([zero] * len(ubs), ubs, [one] * len(ubs), Region(block))
        self.place_kernel(op, name_hint, workgroup_size)
        return op

    def place_kernel(self, op: scf.ParallelOp, name_hint: str, workgroup_size: int) -> None:
        """Name a kernel's top-level loop, tag it with the ONNX node of the op being lowered
        (the launch keeps it: profiles and errors name the model's node) and put it before
        that op."""
        assert self.anchor is not None
        op.attributes["kernel_name"] = StringAttr(self.unique_name(name_hint))
        op.attributes["workgroup_size"] = IntegerAttr(workgroup_size, i64)
        node = self.anchor.attributes.get("onnx_node")
        if isinstance(node, StringAttr):
            op.attributes["onnx_node"] = node
        self.block.insert_op_before(op, self.anchor)
