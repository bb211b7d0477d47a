"""`convert-math-to-llvm{library=libdevice|libm}`: `math` ops -> LLVM intrinsics or calls
of a math library.

Ops every LLVM target lowers well (fabs, sqrt, floor, fma, ...) become intrinsics. The
others (exp, log, tanh, erf, pow, trig) become calls: ``libdevice`` gives NVIDIA's
``__nv_expf``-style functions (the PTX backend links libdevice.10.bc and LLVM inlines
them), ``libm`` the C library's ``expf`` for host code. f16 math runs in f32 and rounds back, as the OpenCL backend does; vector operands are
split into lanes for library calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    VectorType,
    f32,
    i1,
    i64,
)
from xdsl.ir import Attribute, Block, Region, SSAValue
from xdsl.passes import ModulePass

from visc.errors import CompileError
from visc.passes.llvm.arith_to_llvm import check_converted
from visc.passes.llvm.conversion import (
    Handler,
    LLVMTypeConverter,
    Lowering,
    TableLowering,
    apply_lowering,
    intrinsic_suffix,
    symbol_table_of,
    symbols,
    unsupported,
)
from visc.passes.llvm.vector_lanes import extract_lane, insert_lane

# math op -> LLVM intrinsic base name (same operands, overloaded on the type)
INTRINSICS = {
    "math.absf": "fabs", "math.sqrt": "sqrt", "math.floor": "floor", "math.ceil": "ceil",
    "math.trunc": "trunc", "math.round": "round", "math.roundeven": "roundeven", "math.fma": "fma",
    "math.copysign": "copysign",
}

# math op -> C99 name of the double-precision library function (single precision adds `f`)
LIBRARY_FUNCTIONS = {
    "math.exp": "exp", "math.exp2": "exp2", "math.expm1": "expm1", "math.log": "log",
    "math.log2": "log2", "math.log10": "log10", "math.log1p": "log1p", "math.rsqrt": "rsqrt",
    "math.tanh": "tanh", "math.erf": "erf", "math.erfc": "erfc", "math.powf": "pow",
    "math.sin": "sin", "math.cos": "cos", "math.tan": "tan", "math.asin": "asin",
    "math.acos": "acos", "math.atan": "atan", "math.atan2": "atan2", "math.sinh": "sinh",
    "math.cosh": "cosh", "math.asinh": "asinh", "math.acosh": "acosh", "math.atanh": "atanh",
    "math.cbrt": "cbrt",
}

LIBRARIES = ("libdevice", "libm")

# integer ops with an LLVM intrinsic; True: it takes a trailing `i1 false` (poison flag)
INT_INTRINSICS = {"math.absi": ("abs", True), "math.ctlz": ("ctlz", True), "math.cttz": ("cttz", True),
                  "math.ctpop": ("ctpop", False)}


def library_name(library: str, base: str, typ: Attribute) -> str:
    """The symbol of ``base`` (a C99 double function name) for a float type."""
    suffix = "f" if isinstance(typ, Float32Type) else ""
    if library == "libdevice":
        return f"__nv_{base}{suffix}"
    if base == "rsqrt":
        raise CompileError("libm has no rsqrt")
    return f"{base}{suffix}"


def declare_function(anchor_block: Block, name: str, inputs: list[Attribute], output: Attribute) -> None:
    """An external `llvm.func` declaration in the symbol table ``anchor_block``, once."""
    if name in set(symbols(anchor_block)):
        return
    decl = llvm.FuncOp(name, llvm.LLVMFunctionType(inputs, output), linkage=llvm.LinkageAttr("external"))
    first = anchor_block.first_op
    if first is None:
        anchor_block.add_op(decl)
    else:
        anchor_block.insert_op_before(decl, first)


def _lanes(typ: Attribute) -> int:
    return typ.element_count() if isinstance(typ, VectorType) else 0


def _call_per_lane(c: Lowering, name: str, args: list[SSAValue], result: Attribute,
                   scalar_types: list[Attribute], scalar_result: Attribute) -> SSAValue:
    """Call ``name`` on scalars, or once per lane when the operands are vectors."""
    declare_function(symbol_table_of(c.op), name, scalar_types, scalar_result)
    lanes = _lanes(result)
    if not lanes:
        return c.emit(llvm.CallOp(name, *args, return_type=scalar_result))
    out = c.emit(llvm.UndefOp(result))
    for lane in range(lanes):
        scalars = [extract_lane(c, a, lane) for a in args]
        value = c.emit(llvm.CallOp(name, *scalars, return_type=scalar_result))
        out = insert_lane(c, out, value, lane)
    return out


def _float_element(c: Lowering, typ: Attribute) -> Attribute:
    elt = typ.element_type if isinstance(typ, VectorType) else typ
    if not isinstance(elt, Float16Type | Float32Type | Float64Type):
        raise unsupported(c.op, f"element type {elt} is not f16, f32 or f64")
    return elt


def _in_f32(c: Lowering, values: list[SSAValue], typ: Attribute) -> tuple[list[SSAValue], Attribute]:
    """f16 operands widened to f32 (the library has no half functions)."""
    if not isinstance(_float_element(c, typ), Float16Type):
        return values, typ
    wide = VectorType(f32, typ.get_shape()) if isinstance(typ, VectorType) else f32
    return [c.emit(llvm.FPExtOp(v, wide)) if isinstance(_float_element(c, v.type), Float16Type) else v
            for v in values], wide


def _library_call(library: str, base: str) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        typ = c.result_type()
        args, work = _in_f32(c, c.operands(), typ)
        elt = _float_element(c, work)
        name = library_name(library, base, elt)
        value = _call_per_lane(c, name, args, work, [elt] * len(args), elt)
        if work != typ:
            value = c.emit(llvm.FPTruncOp(value, typ))
        return [value]

    return handle


def _rsqrt_libm(c: Lowering) -> list[SSAValue]:
    x = c.operand(0)
    root = c.intrinsic(f"llvm.sqrt.{intrinsic_suffix(x.type)}", [x], x.type)
    return [c.emit(llvm.FDivOp(c.const(1.0, x.type), root))]


def _intrinsic(base: str) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        typ = c.result_type()
        _float_element(c, typ)
        return [c.intrinsic(f"llvm.{base}.{intrinsic_suffix(typ)}", c.operands(), typ)]

    return handle


def _int_intrinsic(base: str, flag: bool) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        typ = c.result_type()
        args = c.operands()
        if flag:
            args.append(c.const(0, i1))
        return [c.intrinsic(f"llvm.{base}.{intrinsic_suffix(typ)}", args, typ)]

    return handle


def _fpowi(library: str) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        base, exp = c.operands()
        typ = c.result_type()
        if isinstance(typ, VectorType):
            raise unsupported(c.op, "vector operands are not supported")
        if library == "libm":
            return [c.intrinsic(f"llvm.powi.{intrinsic_suffix(typ)}.{intrinsic_suffix(exp.type)}", [base, exp], typ)]
        (x,), work = _in_f32(c, [base], typ)
        if exp.type != IntegerType(32):
            width = exp.type.width.data  # type: ignore[attr-defined]
            exp = c.emit(llvm.SExtOp(exp, IntegerType(32)) if width < 32 else llvm.TruncOp(exp, IntegerType(32)))
        name = "__nv_powif" if isinstance(work, Float32Type) else "__nv_powi"
        value = _call_per_lane(c, name, [x, exp], work, [work, IntegerType(32)], work)
        return [c.emit(llvm.FPTruncOp(value, typ)) if work != typ else value]

    return handle


def _ipowi_helper(anchor_block: Block, typ: IntegerType) -> str:
    """An internal function computing ``base ** exp`` by squaring (negative exponents as in
    MLIR: 0 unless |base| is 1), built once per integer type."""
    name = f"__visc_ipowi_i{typ.width.data}"
    if name in set(symbols(anchor_block)):
        return name

    def icmp(block: Block, a: SSAValue, b: SSAValue, pred: str) -> SSAValue:
        op = llvm.ICmpOp(a, b, IntegerAttr(llvm.ICmpPredicateFlag(pred).to_int(), i64))
        block.add_op(op)
        return op.res

    def const(block: Block, v: int) -> SSAValue:
        op = llvm.ConstantOp(IntegerAttr(v, typ, truncate_bits=True), typ)
        block.add_op(op)
        return op.result

    entry, negative, loop, body, done = Block(arg_types=[typ, typ]), Block(), Block(arg_types=[typ, typ, typ]), \
        Block(), Block(arg_types=[typ])
    base, exp = entry.args
    zero, one = const(entry, 0), const(entry, 1)
    entry.add_op(llvm.CondBrOp(icmp(entry, exp, zero, "slt"), negative, [], loop, [one, base, exp]))
    # exp < 0: 1 if base == 1, +-1 if base == -1 (by the parity of exp), else 0
    minus_one = const(negative, -1)
    odd_op = llvm.AndOp(exp, const(negative, 1))
    negative.add_op(odd_op)
    is_odd = icmp(negative, odd_op.res, zero, "ne")
    sign = llvm.SelectOp(is_odd, minus_one, const(negative, 1))
    is_one, is_minus_one = icmp(negative, base, one, "eq"), icmp(negative, base, minus_one, "eq")
    pick_minus = llvm.SelectOp(is_minus_one, sign.res, const(negative, 0))
    result = llvm.SelectOp(is_one, const(negative, 1), pick_minus.res)
    negative.add_ops([sign, pick_minus, result])
    negative.add_op(llvm.BrOp(done, result.res))
    # while exp > 0: if exp & 1: acc *= b; b *= b; exp >>= 1
    acc, b, e = loop.args
    loop.add_op(llvm.CondBrOp(icmp(loop, e, zero, "sgt"), body, [], done, [acc]))
    low = llvm.AndOp(e, const(body, 1))
    body.add_op(low)
    times = llvm.MulOp(acc, b)
    body.add_op(times)
    new_acc = llvm.SelectOp(icmp(body, low.res, zero, "ne"), times.res, acc)
    square = llvm.MulOp(b, b)
    shifted = llvm.AShrOp(e, const(body, 1))
    body.add_ops([new_acc, square, shifted, llvm.BrOp(loop, new_acc.res, square.res, shifted.res)])
    done.add_op(llvm.ReturnOp(done.args[0]))
    fn = llvm.FuncOp(name, llvm.LLVMFunctionType([typ, typ], typ), linkage=llvm.LinkageAttr("internal"),
                     body=Region([entry, negative, loop, body, done]))
    first = anchor_block.first_op
    if first is None:
        anchor_block.add_op(fn)
    else:
        anchor_block.insert_op_before(fn, first)
    return name


def _ipowi(c: Lowering) -> list[SSAValue]:
    base, exp = c.operands()
    typ = c.result_type()
    if not isinstance(typ, IntegerType):
        raise unsupported(c.op, "vector operands are not supported")
    name = _ipowi_helper(symbol_table_of(c.op), typ)
    return [c.emit(llvm.CallOp(name, base, exp, return_type=typ))]


def math_handlers(library: str) -> dict[str, Handler]:
    """Handlers for every supported math op."""
    if library not in LIBRARIES:
        raise CompileError(f"convert-math-to-llvm: unknown library '{library}' (known: {', '.join(LIBRARIES)})")
    handlers: dict[str, Handler] = {name: _intrinsic(base) for name, base in INTRINSICS.items()}
    handlers.update({name: _library_call(library, base) for name, base in LIBRARY_FUNCTIONS.items()})
    handlers.update({name: _int_intrinsic(base, flag) for name, (base, flag) in INT_INTRINSICS.items()})
    handlers["math.fpowi"] = _fpowi(library)
    handlers["math.ipowi"] = _ipowi
    if library == "libm":
        handlers["math.rsqrt"] = _rsqrt_libm
    return handlers


@dataclass(frozen=True)
class ConvertMathToLLVMPass(ModulePass):
    """Lower the `math` ops of every `gpu.module` to intrinsics and library calls."""

    name = "convert-math-to-llvm"

    library: str = "libdevice"
    index_bitwidth: int = 32

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_lowering(op, TableLowering(math_handlers(self.library), LLVMTypeConverter(self.index_bitwidth)))
        check_converted(op, ("math.",))


__all__ = ["ConvertMathToLLVMPass", "math_handlers", "library_name", "declare_function", "INTRINSICS",
           "LIBRARY_FUNCTIONS", "LIBRARIES"]
