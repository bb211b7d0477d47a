"""A C-family printer of `gpu.func` kernel bodies (stage 5 of docs/ir.md).

`CEmitter` turns the ops a kernel may contain (arith, math, memref, scf, vector, gpu ids
and barriers) into structured C: one declared variable per SSA value (`v0, v1, ...`),
kernel arguments `a0, a1, ...`, constants inlined as literals, memref accesses linearized
with their static row-major shape, `scf.for` / `scf.if` as loops and branches. What
differs between C dialects (type names, address spaces, kernel signature, GPU built-ins,
vector syntax, math function spelling) sits in small overridable methods, so OpenCL C,
CUDA C or plain C reuse the same walk; `visc/backends/opencl.py` holds the OpenCL ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import gpu
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    StridedLayoutAttr,
    StringAttr,
    VectorType,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, SSAValue

from visc.errors import CompileError

CMPI = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]
CMPF = ["false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord",
        "ueq", "ugt", "uge", "ult", "ule", "une", "uno", "true"]

_INFIX = {
    "arith.addi": "+", "arith.subi": "-", "arith.muli": "*", "arith.divsi": "/", "arith.remsi": "%",
    "arith.andi": "&", "arith.ori": "|", "arith.xori": "^", "arith.shli": "<<", "arith.shrsi": ">>",
    "arith.addf": "+", "arith.subf": "-", "arith.mulf": "*", "arith.divf": "/",
}
# i1 arithmetic is modulo 2
_INFIX_I1 = {"arith.addi": "^", "arith.subi": "^", "arith.muli": "&"}
_UNSIGNED_INFIX = {"arith.divui": "/", "arith.remui": "%", "arith.shrui": ">>"}
_CMPI_OPS = {"eq": "==", "ne": "!=", "slt": "<", "sle": "<=", "sgt": ">", "sge": ">=",
             "ult": "<", "ule": "<=", "ugt": ">", "uge": ">="}

# math op -> the C99 name of the double-precision function (float versions add `f`)
MATH_FUNCTIONS = {
    "math.exp": "exp", "math.exp2": "exp2", "math.expm1": "expm1", "math.log": "log",
    "math.log2": "log2", "math.log10": "log10", "math.log1p": "log1p", "math.sqrt": "sqrt",
    "math.rsqrt": "rsqrt", "math.tanh": "tanh", "math.erf": "erf", "math.erfc": "erfc",
    "math.powf": "pow", "math.absf": "fabs", "math.floor": "floor", "math.ceil": "ceil",
    "math.round": "round", "math.roundeven": "rint", "math.trunc": "trunc", "math.fma": "fma",
    "math.sin": "sin", "math.cos": "cos", "math.tan": "tan", "math.asin": "asin",
    "math.acos": "acos", "math.atan": "atan", "math.atan2": "atan2", "math.sinh": "sinh",
    "math.cosh": "cosh", "math.asinh": "asinh", "math.acosh": "acosh", "math.atanh": "atanh",
    "math.copysign": "copysign", "math.cbrt": "cbrt", "math.fpowi": "pown",
    "arith.remf": "fmod", "arith.maxnumf": "fmax", "arith.minnumf": "fmin",
}

# ops whose results may be dropped when unused
_PURE_PREFIXES = ("arith.", "math.")
_PURE_OPS = {"memref.load", "vector.load", "vector.broadcast", "vector.extract", "vector.insert",
             "vector.fma", "vector.reduction", "vector.splat", "gpu.block_id", "gpu.thread_id",
             "gpu.block_dim", "gpu.grid_dim", "gpu.global_id"}


def constant_attr(value: SSAValue) -> Attribute | None:
    """The `value` attribute of an `arith.constant` result, else None."""
    owner = value.owner
    if isinstance(owner, Operation) and owner.name == "arith.constant":
        attr = owner.properties.get("value")
        return attr if attr is not None else owner.attributes.get("value")
    return None


def _const_int(value: SSAValue) -> int | None:
    attr = constant_attr(value)
    if attr is not None:
        if isinstance(attr, IntegerAttr):
            return int(attr.value.data)
    return None


def memref_strides(typ: MemRefType) -> tuple[tuple[int, ...], int]:
    """Element strides and offset of a static memref (row-major unless a strided layout)."""
    shape = typ.get_shape()
    if any(d < 0 for d in shape):
        raise CompileError(f"dynamic memref shapes are not supported: {typ}")
    layout = typ.layout
    if isinstance(layout, NoneAttr):
        strides, acc = [], 1
        for d in reversed(shape):
            strides.append(acc)
            acc *= d
        return tuple(reversed(strides)), 0
    if isinstance(layout, StridedLayoutAttr):
        values = [s.data if isinstance(s, IntAttr) else None for s in layout.strides.data]
        offset = layout.offset.data if isinstance(layout.offset, IntAttr) else None
        if None in values or offset is None:
            raise CompileError(f"dynamic strides are not supported: {typ}")
        return tuple(v for v in values if v is not None), offset
    raise CompileError(f"memref layout {layout} is not supported (only row-major and strided)")


def is_workgroup_memory(typ: Attribute) -> bool:
    """Memory space 3 (the gpu dialect's workgroup space) or a "workgroup"/"local" tag."""
    if not isinstance(typ, MemRefType):
        return False
    space = typ.memory_space
    if isinstance(space, IntegerAttr):
        return int(space.value.data) == 3
    return isinstance(space, StringAttr) and space.data in ("workgroup", "local", "shared")


@dataclass
class _KernelState:
    names: dict[SSAValue, str] = field(default_factory=dict)
    counter: int = 0
    lines: list[str] = field(default_factory=list)
    indent: int = 1
    hoisted: list[str] = field(default_factory=list)


class CEmitter:
    """Prints kernels as C. Subclasses override the hooks in the first section."""

    def __init__(self) -> None:
        self._features: set[str] = set()
        self._helpers: dict[str, str] = {}
        self._state = _KernelState()
        self._kernel = ""

    # -- target hooks -------------------------------------------------------------------

    INT_TYPES = {1: "bool", 8: "int8_t", 16: "int16_t", 32: "int32_t", 64: "int64_t"}
    UINT_TYPES = {1: "bool", 8: "uint8_t", 16: "uint16_t", 32: "uint32_t", 64: "uint64_t"}
    INDEX_BITS = 32
    FLOAT_TYPES = {16: "_Float16", 32: "float", 64: "double"}
    BOOL_STORAGE = "uint8_t"
    TRUE, FALSE = "true", "false"

    def preamble(self, features: set[str]) -> list[str]:
        """Lines before the first kernel (extensions, includes) given the features used."""
        return ["#include <math.h>", "#include <stdbool.h>", "#include <stdint.h>"]

    def kernel_signature(self, name: str, params: Sequence[str], block_size: Sequence[int] | None) -> str:
        return f"void {name}({', '.join(params)})"

    def pointer_param(self, name: str, element: Attribute, readonly: bool) -> str:
        const = "const " if readonly else ""
        return f"{const}{self.storage_type(element)}* restrict {name}"

    def local_array(self, element: Attribute, name: str, size: int) -> str:
        raise CompileError(f"{type(self).__name__} has no workgroup (shared) memory")

    def gpu_id(self, op: Operation, dim: int) -> str:
        raise CompileError(f"{type(self).__name__} does not support {op.name}")

    def barrier(self) -> str:
        raise CompileError(f"{type(self).__name__} does not support gpu.barrier")

    def math_function(self, base: str, typ: Attribute) -> str:
        elt = typ.element_type if isinstance(typ, VectorType) else typ
        if base == "rsqrt" or base == "pown":
            raise CompileError(f"{type(self).__name__} has no '{base}'")
        return base + "f" if isinstance(elt, Float32Type) else base

    def vector_type(self, typ: VectorType) -> str:
        raise CompileError(f"{type(self).__name__} does not support vector types ({typ})")

    def vector_literal(self, typ: VectorType, elements: Sequence[str]) -> str:
        raise CompileError(f"{type(self).__name__} does not support vector types ({typ})")

    def vector_lane(self, vec: str, lane: int) -> str:
        raise CompileError(f"{type(self).__name__} does not support vector types")

    def vector_load(self, typ: VectorType, pointer: str, aligned: bool = False) -> str:
        raise CompileError(f"{type(self).__name__} does not support vector types ({typ})")

    def vector_store(self, typ: VectorType, value: str, pointer: str, aligned: bool = False) -> str:
        raise CompileError(f"{type(self).__name__} does not support vector types ({typ})")

    def vector_convert(self, expr: str, to: VectorType) -> str:
        raise CompileError(f"{type(self).__name__} does not support vector types ({to})")

    def nan_propagating(self, fn: str, a: str, b: str, typ: Attribute) -> str:
        """IEEE maximum/minimum: NaN if either operand is NaN."""
        return f"(isnan({a}) || isnan({b}) ? {a} + {b} : {fn}({a}, {b}))"

    def emit_bitcast(self, op: Operation) -> None:
        raise self.fail(op, f"{type(self).__name__} has no bit casts")

    def emit_bit_count(self, op: Operation) -> None:
        raise self.fail(op, f"{type(self).__name__} has no bit-count built-ins")

    def load_element(self, mem: SSAValue, index: str) -> str:
        """The expression reading element ``index`` (linear) of ``mem``."""
        assert isinstance(mem.type, MemRefType)
        access = f"{self.ref(mem)}[{index}]"
        return f"{access} != 0" if self._is_i1(mem.type.element_type) else access

    def store_element(self, mem: SSAValue, index: str, value: SSAValue) -> str:
        """The statement (without `;`) writing ``value`` to element ``index`` of ``mem``."""
        assert isinstance(mem.type, MemRefType)
        x = self.ref(value)
        if self._is_i1(mem.type.element_type):
            x = f"({self.BOOL_STORAGE}){x}"
        return f"{self.ref(mem)}[{index}] = {x}"

    def array_type(self, element: Attribute) -> str:
        """The element type of a private or shared array."""
        return self.storage_type(element)

    def finish_value(self, value: SSAValue, expr: str) -> str:
        """Last word on the expression defining ``value`` (e.g. rounding to a narrower type)."""
        return expr

    def helper(self, name: str, code: str) -> str:
        """Register a helper function emitted before the kernels; returns its name."""
        self._helpers.setdefault(name, code)
        return name

    def unroll_pragma(self, factor: int) -> str:
        return "#pragma unroll" if factor == 0 else f"#pragma unroll {factor}"

    # -- types ----------------------------------------------------------------------------

    def scalar_type(self, typ: Attribute, unsigned: bool = False) -> str:
        if isinstance(typ, IndexType):
            return (self.UINT_TYPES if unsigned else self.INT_TYPES)[self.INDEX_BITS]
        if isinstance(typ, IntegerType) and typ.width.data in self.INT_TYPES:
            return (self.UINT_TYPES if unsigned else self.INT_TYPES)[typ.width.data]
        if isinstance(typ, Float16Type | Float32Type | Float64Type):
            self._features.add({16: "fp16", 32: "fp32", 64: "fp64"}[typ.bitwidth])
            return self.FLOAT_TYPES[typ.bitwidth]
        raise CompileError(f"type {typ} has no C equivalent")

    def value_type(self, typ: Attribute) -> str:
        """The C type of a value held in a variable."""
        if isinstance(typ, VectorType):
            self.scalar_type(typ.element_type)
            return self.vector_type(typ)
        return self.scalar_type(typ)

    def storage_type(self, typ: Attribute) -> str:
        """The C type of an element in memory (i1 is a byte)."""
        if isinstance(typ, IntegerType) and typ.width.data == 1:
            return self.BOOL_STORAGE
        return self.value_type(typ)

    # -- module ---------------------------------------------------------------------------

    def emit(self, module: Operation) -> str:
        """All kernels of every `gpu.module` in ``module`` (or of one `gpu.module`)."""
        self._features = set()
        self._helpers = {}
        kernels: list[gpu.FuncOp] = []
        modules = [module] if isinstance(module, gpu.ModuleOp) else [
            op for op in (module.ops if isinstance(module, ModuleOp) else module.walk())
            if isinstance(op, gpu.ModuleOp)]
        for mod in modules:
            kernels.extend(op for op in mod.body.block.ops if isinstance(op, gpu.FuncOp))
        bodies = []
        for kernel in kernels:
            try:
                bodies.append("\n".join(self.emit_kernel(kernel)))
            except CompileError as e:
                if str(e).startswith("kernel '"):
                    raise
                raise CompileError(f"kernel '{kernel.sym_name.data}': {e}") from e
        head = self.preamble(self._features)
        parts = (["\n".join(head)] if head else []) + list(self._helpers.values()) + bodies
        return "\n\n".join(parts) + "\n"

    def emit_kernel(self, kernel: gpu.FuncOp) -> list[str]:
        self._kernel = kernel.sym_name.data
        st = self._state = _KernelState()
        block = kernel.body.block
        stored = {op.operands[1] for op in kernel.walk() if op.name in ("memref.store", "vector.store")}
        params = []
        for i, arg in enumerate(block.args):
            name = f"a{i}"
            st.names[arg] = name
            if not isinstance(arg.type, MemRefType):
                params.append(f"{self.value_type(arg.type)} {name}")
                continue
            memref_strides(arg.type)
            params.append(self.pointer_param(name, arg.type.element_type, arg not in stored))
        sizes = kernel.known_block_size.get_values() if kernel.known_block_size else None
        self._block(block)
        head = [self.kernel_signature(self._kernel, params, [int(s) for s in sizes] if sizes else None) + " {"]
        return head + ["  " + h for h in st.hoisted] + st.lines + ["}"]

    # -- emission helpers -------------------------------------------------------------------

    def fail(self, op: Operation, why: str) -> CompileError:
        return CompileError(f"kernel '{self._kernel}': cannot emit {op.name}: {why}")

    def line(self, text: str) -> None:
        self._state.lines.append("  " * self._state.indent + text)

    def fresh(self, value: SSAValue) -> str:
        st = self._state
        name = f"v{st.counter}"
        st.counter += 1
        st.names[value] = name
        return name

    def define(self, value: SSAValue, expr: str) -> None:
        expr = self.finish_value(value, expr)
        name = self.fresh(value)
        self.line(f"{self.value_type(value.type)} {name} = {expr};")

    def ref(self, value: SSAValue) -> str:
        if value in self._state.names:
            return self._state.names[value]
        owner = value.owner
        attr = constant_attr(value)
        if attr is not None:
            return self.literal(attr, value.type)
        raise CompileError(f"kernel '{self._kernel}': value of type {value.type} is used before "
                           f"it is defined (by {owner.name if isinstance(owner, Operation) else 'a block'})")

    # -- literals -------------------------------------------------------------------------

    def literal(self, attr: Attribute, typ: Attribute) -> str:
        if isinstance(typ, VectorType):
            if not isinstance(attr, DenseIntOrFPElementsAttr):
                raise CompileError(f"kernel '{self._kernel}': unsupported vector constant {attr}")
            values = list(attr.get_values())
            n = math.prod(typ.get_shape())
            if len(values) == 1:
                values = values * n
            return self.vector_literal(typ, [self.scalar_literal(v, typ.element_type) for v in values])
        if isinstance(attr, IntegerAttr | FloatAttr):
            return self.scalar_literal(attr.value.data, typ)
        raise CompileError(f"kernel '{self._kernel}': unsupported constant {attr}")

    def scalar_literal(self, value: float | int, typ: Attribute) -> str:
        if isinstance(typ, IntegerType | IndexType):
            width = self.INDEX_BITS if isinstance(typ, IndexType) else typ.width.data
            v = int(value)
            if width == 1:
                return self.TRUE if v & 1 else self.FALSE
            v &= (1 << width) - 1
            if v >= 1 << (width - 1):
                v -= 1 << width
            suffix = "L" if width == 64 else ""
            if v == -(1 << (width - 1)):
                return f"(-{-(v + 1)}{suffix} - 1{suffix})"
            return f"({v}{suffix})" if v < 0 else f"{v}{suffix}"
        if isinstance(typ, Float16Type | Float32Type | Float64Type):
            ctype = self.scalar_type(typ)
            f = float(value)
            if math.isnan(f):
                text = "NAN"
            elif math.isinf(f):
                text = "INFINITY" if f > 0 else "(-INFINITY)"
            elif isinstance(typ, Float64Type):
                text = repr(f)
            else:
                text = str(np.float32(np.float16(f) if isinstance(typ, Float16Type) else f))
                if "." not in text and "e" not in text:
                    text += ".0"
                text += "f"
            if text.startswith("-"):
                text = f"({text})"
            if ctype == "float" or (isinstance(typ, Float64Type) and math.isfinite(f)):
                return text
            return f"(({ctype}){text})"
        raise CompileError(f"kernel '{self._kernel}': unsupported constant type {typ}")

    # -- walking --------------------------------------------------------------------------

    def _block(self, block: Block) -> None:
        for op in block.ops:
            self._op(op)

    def _op(self, op: Operation) -> None:
        name = op.name
        if name == "arith.constant":
            if isinstance(op.results[0].type, VectorType):
                self.define(op.results[0], self.ref(op.results[0]))
            return
        if op.results and all(not r.uses for r in op.results) and (
                name.startswith(_PURE_PREFIXES) or name in _PURE_OPS):
            return
        handler = self._handlers().get(name)
        if handler is not None:
            handler(self, op)
            return
        if name in _INFIX:
            self._infix(op)
        elif name in _UNSIGNED_INFIX:
            self._unsigned_infix(op)
        elif name in MATH_FUNCTIONS:
            self._math(op)
        else:
            raise self.fail(op, "no C lowering for this op")

    @classmethod
    def _handlers(cls) -> dict[str, Callable[[CEmitter, Operation], None]]:
        return _HANDLERS

    # -- arith ----------------------------------------------------------------------------

    def _scalar_only(self, op: Operation) -> None:
        if any(isinstance(v.type, VectorType) for v in (*op.operands, *op.results)):
            raise self.fail(op, "only scalar operands are supported for this op")

    def _is_i1(self, typ: Attribute) -> bool:
        return isinstance(typ, IntegerType) and typ.width.data == 1

    def _unsigned(self, value: SSAValue) -> str:
        """``value`` reinterpreted as the unsigned type of its width."""
        if self._is_i1(value.type):
            return self.ref(value)
        c = _const_int(value)
        if c is not None and 0 <= c < 2**31:
            return f"{c}u"
        return f"({self.scalar_type(value.type, unsigned=True)}){self.ref(value)}"

    def _infix(self, op: Operation) -> None:
        a, b = op.operands
        symbol = _INFIX[op.name]
        if self._is_i1(op.results[0].type):
            symbol = _INFIX_I1.get(op.name, symbol)
        rhs = self.ref(b)
        c = _const_int(b)
        if (c is not None and -(2**31) < c < 0 and op.name in ("arith.addi", "arith.subi")
                and not self._is_i1(b.type)):
            symbol, rhs = ("-" if symbol == "+" else "+"), str(-c) + ("L" if rhs.endswith("L)") else "")
        self.define(op.results[0], f"{self.ref(a)} {symbol} {rhs}")

    def _unsigned_infix(self, op: Operation) -> None:
        self._scalar_only(op)
        a, b = op.operands
        res = op.results[0]
        expr = f"{self._unsigned(a)} {_UNSIGNED_INFIX[op.name]} {self._unsigned(b)}"
        self.define(res, f"({self.scalar_type(res.type)})({expr})")

    def _math(self, op: Operation) -> None:
        res = op.results[0]
        fn = self.math_function(MATH_FUNCTIONS[op.name], res.type)
        args = [self.ref(v) for v in op.operands]
        if op.name == "math.fpowi" and not isinstance(op.operands[1].type, VectorType):
            args[1] = f"({self.scalar_type(IntegerType(32))}){args[1]}"  # pown takes an int exponent
        self.define(res, f"{fn}({', '.join(args)})")


def _negf(e: CEmitter, op: Operation) -> None:
    e.define(op.results[0], f"-{e.ref(op.operands[0])}")


def _minmax_float(e: CEmitter, op: Operation) -> None:
    x, y = op.operands
    a, b = e.ref(x), e.ref(y)
    typ = op.results[0].type
    fn = e.math_function("fmax" if op.name == "arith.maximumf" else "fmin", typ)
    known = [_is_number_constant(v) for v in (x, y)]
    if not isinstance(typ, VectorType) and any(known):
        # a constant that is not NaN cannot make the result NaN: only the other side can
        other = b if known[0] else a
        expr = f"{fn}({a}, {b})" if all(known) else f"isnan({other}) ? {other} : {fn}({a}, {b})"
    else:
        expr = e.nan_propagating(fn, a, b, typ)
    e.define(op.results[0], expr)


def _is_number_constant(value: SSAValue) -> bool:
    attr = constant_attr(value)
    return isinstance(attr, FloatAttr) and not math.isnan(attr.value.data)


def _minmax_int(e: CEmitter, op: Operation) -> None:
    e._scalar_only(op)
    a, b = op.operands
    greater = op.name in ("arith.maxsi", "arith.maxui")
    if op.name.endswith("ui"):
        x, y = e._unsigned(a), e._unsigned(b)
    else:
        x, y = e.ref(a), e.ref(b)
    cmp = ">" if greater else "<"
    e.define(op.results[0], f"{x} {cmp} {y} ? {e.ref(a)} : {e.ref(b)}")


def _div_round(e: CEmitter, op: Operation) -> None:
    e._scalar_only(op)
    a, b = (e.ref(v) for v in op.operands)
    res = op.results[0]
    if op.name == "arith.floordivsi":
        expr = f"{a} / {b} - ({a} % {b} != 0 && ({a} < 0) != ({b} < 0))"
    elif op.name == "arith.ceildivsi":
        expr = f"{a} / {b} + ({a} % {b} != 0 && ({a} < 0) == ({b} < 0))"
    else:
        ua, ub = e._unsigned(op.operands[0]), e._unsigned(op.operands[1])
        expr = f"({e.scalar_type(res.type)})({ua} / {ub} + ({ua} % {ub} != 0))"
    e.define(res, expr)


def _cmpi(e: CEmitter, op: Operation) -> None:
    e._scalar_only(op)
    pred = CMPI[int(op.properties["predicate"].value.data)]  # type: ignore[attr-defined]
    a, b = op.operands
    if pred.startswith("u"):
        x, y = e._unsigned(a), e._unsigned(b)
    else:
        x, y = e.ref(a), e.ref(b)
    e.define(op.results[0], f"{x} {_CMPI_OPS[pred]} {y}")


def _cmpf(e: CEmitter, op: Operation) -> None:
    e._scalar_only(op)
    pred = CMPF[int(op.properties["predicate"].value.data)]  # type: ignore[attr-defined]
    a, b = (e.ref(v) for v in op.operands)
    exprs = {
        "false": e.FALSE, "true": e.TRUE,
        "oeq": f"{a} == {b}", "ogt": f"{a} > {b}", "oge": f"{a} >= {b}", "olt": f"{a} < {b}",
        "ole": f"{a} <= {b}", "one": f"{a} < {b} || {a} > {b}",
        "ord": f"!isnan({a}) && !isnan({b})", "uno": f"isnan({a}) || isnan({b})",
        "ueq": f"!({a} < {b} || {a} > {b})", "ugt": f"!({a} <= {b})", "uge": f"!({a} < {b})",
        "ult": f"!({a} >= {b})", "ule": f"!({a} > {b})", "une": f"{a} != {b}",
    }
    e.define(op.results[0], exprs[pred])


def _select(e: CEmitter, op: Operation) -> None:
    cond, a, b = op.operands
    if isinstance(cond.type, VectorType):
        raise e.fail(op, "vector conditions are not supported")
    e.define(op.results[0], f"{e.ref(cond)} ? {e.ref(a)} : {e.ref(b)}")


def _cast(e: CEmitter, op: Operation) -> None:
    src, res = op.operands[0], op.results[0]
    if isinstance(res.type, VectorType):
        if op.name in ("arith.extf", "arith.truncf", "arith.sitofp", "arith.fptosi", "arith.extsi",
                       "arith.trunci"):
            e.define(res, e.vector_convert(e.ref(src), res.type))
            return
        raise e.fail(op, "this cast is only supported on scalars")
    to = e.scalar_type(res.type)
    x = e.ref(src)
    src_i1, res_i1 = e._is_i1(src.type), e._is_i1(res.type)
    name = op.name
    if res_i1 and name in ("arith.trunci", "arith.index_cast", "arith.index_castui"):
        expr = f"({to})({x} & 1)"
    elif src_i1 and name in ("arith.extsi", "arith.sitofp"):
        expr = f"({to})(-({e.scalar_type(IntegerType(32))}){x})"
    elif name in ("arith.extui", "arith.uitofp", "arith.index_castui"):
        expr = f"({to}){e._unsigned(src)}"
    elif name == "arith.fptoui":
        expr = f"({to})({e.scalar_type(res.type, unsigned=True)}){x}"
    else:
        expr = f"({to}){x}"
    e.define(res, expr)


def _absi(e: CEmitter, op: Operation) -> None:
    e._scalar_only(op)
    a = e.ref(op.operands[0])
    e.define(op.results[0], f"{a} < 0 ? -{a} : {a}")


def _ipowi(e: CEmitter, op: Operation) -> None:
    """Exponentiation by squaring; negative exponents follow MLIR (0 unless |base| == 1)."""
    e._scalar_only(op)
    base, exp = (e.ref(v) for v in op.operands)
    res = op.results[0]
    t = e.value_type(res.type)
    r = e.fresh(res)
    e.line(f"{t} {r} = 1;")
    e.line("{")
    e.line(f"  {t} b_ = {base}, n_ = {exp};")
    e.line(f"  if (n_ < 0) {{ {r} = b_ == 1 ? 1 : (b_ == -1 ? ((n_ & 1) ? -1 : 1) : 0); n_ = 0; }}")
    e.line(f"  while (n_ > 0) {{ if (n_ & 1) {r} *= b_; b_ *= b_; n_ >>= 1; }}")
    e.line("}")


# -- memref / vector ----------------------------------------------------------------------


def linear_index(e: CEmitter, typ: MemRefType, indices: Sequence[SSAValue]) -> str:
    """The flat element offset of ``indices`` into a static memref, constants folded."""
    strides, offset = memref_strides(typ)
    const = offset
    terms: list[str] = []
    for idx, stride in zip(indices, strides, strict=True):
        c = _const_int(idx)
        if c is not None:
            const += c * stride
        elif stride == 1:
            terms.append(e.ref(idx))
        elif stride != 0:
            terms.append(f"{e.ref(idx)} * {stride}")
    if const or not terms:
        terms.append(str(const))
    return " + ".join(terms)


def _load(e: CEmitter, op: Operation) -> None:
    mem, *idx = op.operands
    assert isinstance(mem.type, MemRefType)
    e.define(op.results[0], e.load_element(mem, linear_index(e, mem.type, idx)))


def _store(e: CEmitter, op: Operation) -> None:
    value, mem, *idx = op.operands
    assert isinstance(mem.type, MemRefType)
    e.line(e.store_element(mem, linear_index(e, mem.type, idx), value) + ";")


def _alloca(e: CEmitter, op: Operation) -> None:
    typ = op.results[0].type
    assert isinstance(typ, MemRefType)
    if op.operands:
        raise e.fail(op, "dynamic sizes are not supported")
    memref_strides(typ)
    size = max(1, math.prod(typ.get_shape()))
    st = e._state
    if is_workgroup_memory(typ):
        # shared arrays live at kernel scope (OpenCL C requires it), named l0, l1, ...
        name = f"l{len(st.hoisted)}"
        st.names[op.results[0]] = name
        st.hoisted.append(e.local_array(typ.element_type, name, size))
    else:
        name = e.fresh(op.results[0])
        e.line(f"{e.array_type(typ.element_type)} {name}[{size}];")


def _vector_access(e: CEmitter, op: Operation, mem: SSAValue, idx: Sequence[SSAValue]) -> str:
    assert isinstance(mem.type, MemRefType)
    return f"{e.ref(mem)} + ({linear_index(e, mem.type, idx)})"


def vector_aligned(mem: SSAValue, idx: Sequence[SSAValue], typ: VectorType) -> bool:
    """Whether a vector access of `typ` at `idx` is aligned to the vector's size: `mem` is a
    kernel argument (buffers start at least 128-byte aligned), every variable index steps by
    whole vectors and the constant part is a whole number of vectors. Only f32 vectors of 2,
    4, 8 or 16 lanes (the widths whose size is lanes x 4 bytes)."""
    lanes = typ.get_shape()[0]
    if (not isinstance(mem, BlockArgument) or not isinstance(mem.type, MemRefType) or is_workgroup_memory(mem.type)
            or not isinstance(typ.element_type, Float32Type) or lanes not in (2, 4, 8, 16)):
        return False
    strides, const = memref_strides(mem.type)
    for i, stride in zip(idx, strides, strict=True):
        c = _const_int(i)
        if c is not None:
            const += c * stride
        elif stride % lanes:
            return False
    return const % lanes == 0


def _vload(e: CEmitter, op: Operation) -> None:
    mem, *idx = op.operands
    typ = op.results[0].type
    assert isinstance(typ, VectorType)
    e.define(op.results[0], e.vector_load(typ, _vector_access(e, op, mem, idx), vector_aligned(mem, idx, typ)))


def _vstore(e: CEmitter, op: Operation) -> None:
    value, mem, *idx = op.operands
    assert isinstance(value.type, VectorType)
    aligned = vector_aligned(mem, idx, value.type)
    e.line(e.vector_store(value.type, e.ref(value), _vector_access(e, op, mem, idx), aligned) + ";")


def _vbroadcast(e: CEmitter, op: Operation) -> None:
    typ = op.results[0].type
    assert isinstance(typ, VectorType)
    src = op.operands[0]
    if isinstance(src.type, VectorType):
        raise e.fail(op, "only scalar-to-vector broadcasts are supported")
    n = math.prod(typ.get_shape())
    e.define(op.results[0], e.vector_literal(typ, [e.ref(src)] * n))


def _static_lane(e: CEmitter, op: Operation) -> int:
    if len(op.operands) > (1 if op.name == "vector.extract" else 2):
        raise e.fail(op, "dynamic positions are not supported")
    pos = [int(v) for v in op.properties["static_position"].get_values()]  # type: ignore[attr-defined]
    if len(pos) != 1:
        raise e.fail(op, "only 1-D vectors are supported")
    return pos[0]


def _vextract(e: CEmitter, op: Operation) -> None:
    lane = _static_lane(e, op)
    e.define(op.results[0], e.vector_lane(e.ref(op.operands[0]), lane))


def _vinsert(e: CEmitter, op: Operation) -> None:
    lane = _static_lane(e, op)
    src, dest = op.operands[0], op.operands[1]
    e.define(op.results[0], e.ref(dest))
    e.line(f"{e.vector_lane(e.ref(op.results[0]), lane)} = {e.ref(src)};")


def _fma(e: CEmitter, op: Operation) -> None:
    """math.fma / vector.fma as one contractable expression, not the fma() builtin: OpenCL C
    contracts ``a * b + c`` into the device's fused multiply-add where it has one, while PoCL
    implements fma() in software (about 5x slower in a convolution's inner loop)."""
    a, b, c = (e.ref(v) for v in op.operands)
    e.define(op.results[0], f"({a} * {b} + {c})")


def _vreduction(e: CEmitter, op: Operation) -> None:
    vec = op.operands[0]
    typ = vec.type
    assert isinstance(typ, VectorType)
    kind = str(op.properties["kind"].data)  # type: ignore[attr-defined]
    lanes = [e.vector_lane(e.ref(vec), i) for i in range(math.prod(typ.get_shape()))]
    if len(op.operands) > 1:
        lanes.append(e.ref(op.operands[1]))
    elt = typ.element_type
    infix = {"add": "+", "mul": "*", "and": "&", "or": "|", "xor": "^"}
    if kind in infix:
        expr = f" {infix[kind]} ".join(lanes)
    elif kind in ("maxnumf", "minnumf", "maximumf", "minimumf"):
        fn = e.math_function("fmax" if kind.startswith("max") else "fmin", elt)
        expr = lanes[0]
        for lane in lanes[1:]:
            expr = (e.nan_propagating(fn, expr, lane, elt) if kind.endswith("mumf")
                    else f"{fn}({expr}, {lane})")
    elif kind in ("maxsi", "minsi"):
        cmp = ">" if kind == "maxsi" else "<"
        expr = lanes[0]
        for lane in lanes[1:]:
            expr = f"(({expr}) {cmp} {lane} ? ({expr}) : {lane})"
    else:
        raise e.fail(op, f"reduction kind {kind} is not supported")
    e.define(op.results[0], expr)


# -- scf -----------------------------------------------------------------------------------


def _assign_yield(e: CEmitter, targets: Sequence[str], values: Sequence[SSAValue], carried: Sequence[SSAValue]) -> None:
    """Assign yielded values to the loop/if variables, through temporaries when a yielded
    value is another carried variable (a swap)."""
    refs = [e.ref(v) for v in values]
    clash = any(v in carried and carried.index(v) != i for i, v in enumerate(values))
    if clash:
        temps = []
        for i, (v, r) in enumerate(zip(values, refs, strict=True)):
            t = f"{targets[i]}_next"
            e.line(f"{e.value_type(v.type)} {t} = {r};")
            temps.append(t)
        refs = temps
    for target, r in zip(targets, refs, strict=True):
        if target != r:
            e.line(f"{target} = {r};")


def _for(e: CEmitter, op: Operation) -> None:
    lb, ub, step, *inits = op.operands
    body = op.regions[0].block
    iv, *carried = body.args
    targets = []
    for arg, init, res in zip(carried, inits, op.results, strict=True):
        name = e.fresh(res)
        e._state.names[arg] = name
        e.line(f"{e.value_type(res.type)} {name} = {e.ref(init)};")
        targets.append(name)
    unroll = op.attributes.get("vision.unroll")
    if isinstance(unroll, IntegerAttr):
        e.line(e.unroll_pragma(int(unroll.value.data)))
    i = e.fresh(iv)
    e.line(f"for ({e.value_type(iv.type)} {i} = {e.ref(lb)}; {i} < {e.ref(ub)}; {i} += {e.ref(step)}) {{")
    e._state.indent += 1
    for inner in body.ops:
        if inner is body.last_op and inner.name == "scf.yield":
            _assign_yield(e, targets, list(inner.operands), list(carried))
        else:
            e._op(inner)
    e._state.indent -= 1
    e.line("}")


def _if(e: CEmitter, op: Operation) -> None:
    cond = op.operands[0]
    targets = []
    for res in op.results:
        name = e.fresh(res)
        e.line(f"{e.value_type(res.type)} {name};")
        targets.append(name)

    def branch(region_index: int) -> None:
        e._state.indent += 1
        block = op.regions[region_index].block
        for inner in block.ops:
            if inner is block.last_op and inner.name == "scf.yield":
                _assign_yield(e, targets, list(inner.operands), [])
            else:
                e._op(inner)
        e._state.indent -= 1

    e.line(f"if ({e.ref(cond)}) {{")
    branch(0)
    else_region = op.regions[1]
    if else_region.blocks and (targets or any(o.name != "scf.yield" for o in else_region.block.ops)):
        e.line("} else {")
        branch(1)
    e.line("}")


def _yield(e: CEmitter, op: Operation) -> None:
    raise e.fail(op, "scf.yield outside scf.for / scf.if")


# -- gpu -----------------------------------------------------------------------------------


def _gpu_id(e: CEmitter, op: Operation) -> None:
    dim = {"x": 0, "y": 1, "z": 2}[str(op.properties["dimension"].data)]  # type: ignore[attr-defined]
    e.define(op.results[0], e.gpu_id(op, dim))


def _barrier(e: CEmitter, op: Operation) -> None:
    e.line(e.barrier() + ";")


def _return(e: CEmitter, op: Operation) -> None:
    parent = op.parent_block()
    if op.operands:
        raise e.fail(op, "kernels return nothing")
    if parent is None or parent.parent_op() is None or parent.parent_op().name != "gpu.func":  # type: ignore[union-attr]
        e.line("return;")


_HANDLERS: dict[str, Callable[[CEmitter, Operation], None]] = {
    "arith.negf": _negf,
    "arith.maximumf": _minmax_float, "arith.minimumf": _minmax_float,
    "arith.maxsi": _minmax_int, "arith.minsi": _minmax_int,
    "arith.maxui": _minmax_int, "arith.minui": _minmax_int,
    "arith.floordivsi": _div_round, "arith.ceildivsi": _div_round, "arith.ceildivui": _div_round,
    "arith.cmpi": _cmpi, "arith.cmpf": _cmpf, "arith.select": _select,
    **{f"arith.{n}": _cast for n in ("extf", "truncf", "extsi", "extui", "trunci", "sitofp", "uitofp",
                                     "fptosi", "fptoui", "index_cast", "index_castui")},
    "arith.bitcast": lambda e, op: e.emit_bitcast(op),
    "math.absi": _absi,
    "math.ctlz": lambda e, op: e.emit_bit_count(op),
    "math.cttz": lambda e, op: e.emit_bit_count(op),
    "math.ctpop": lambda e, op: e.emit_bit_count(op),
    "math.ipowi": _ipowi,
    "memref.load": _load, "memref.store": _store, "memref.alloca": _alloca,
    "vector.load": _vload, "vector.store": _vstore, "vector.broadcast": _vbroadcast,
    "vector.splat": _vbroadcast,
    "vector.extract": _vextract, "vector.insert": _vinsert, "vector.fma": _fma, "math.fma": _fma,
    "vector.reduction": _vreduction,
    "scf.for": _for, "scf.if": _if, "scf.yield": _yield,
    "gpu.block_id": _gpu_id, "gpu.thread_id": _gpu_id, "gpu.block_dim": _gpu_id,
    "gpu.grid_dim": _gpu_id, "gpu.global_id": _gpu_id,
    "gpu.barrier": _barrier, "gpu.return": _return,
}

__all__ = ["CEmitter", "MATH_FUNCTIONS", "linear_index", "memref_strides", "is_workgroup_memory"]
