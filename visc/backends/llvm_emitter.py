"""A printer of stage-5 host functions (`gpu.func`, docs/ir.md) as LLVM IR text.

`LLVMEmitter` walks the ops a function may hold (scf, arith, math, memref, vector, gpu)
and writes LLVM IR directly, the way `c_emitter.CEmitter` writes C, instead of rewriting
a copy of the module into the xDSL llvm dialect and building an llvmlite module from it
(the conversions in `visc/passes/llvm/`): on ResNet-50 those rewrites took ~27 s, this
walk a second. The IR it prints is what those conversions produce, instruction for
instruction where it matters to LLVM: ``index`` is ``i32``; a memref is a pointer to its
first element and an access linearizes its static strides and offset (constants folded,
``mul/add nsw``) into one ``getelementptr inbounds``; `i1` is a byte in memory; private
arrays are allocas at the top of the entry block; ``maximumf``/``minimumf`` propagate NaN
(``llvm.maximum``), ``maxnumf``/``minnumf`` do not; float -> int conversions saturate;
``scf.for``/``scf.if``/``scf.while`` become blocks whose carried values are phis.

Module layout: the header (triple, data layout), every ``declare`` (and global, if a
target needs any), then one ``define`` per function, each starting with its ``define``
line and ending with a ``}`` line and referring only to declarations and globals above,
so the text can be cut per function and the parts compiled apart.

What is target-specific sits in the hooks of the first section (address spaces, argument
attributes, thread ids and barriers, the math library, work-group memory, module metadata),
so a variant for another LLVM target overrides those and reuses the walk. `CPUEmitter` is
the host flavour: libm, no thread ids, work-group memory on the stack. `NVPTXEmitter` is
the CUDA one (`convert-gpu-to-nvvm` + libdevice + the PTX backend's annotations).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import gpu
from xdsl.dialects.builtin import (
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    VectorType,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.transforms.dead_code_elimination import would_be_trivially_dead

from visc.backends.c_emitter import CMPF, CMPI, constant_attr, memref_strides
from visc.backends.llvm_vector_math import exp_f32
from visc.errors import CompileError
from visc.passes.cpu.lower_loops_to_cpu import explicit_tiles
from visc.passes.llvm.conversion import kernel_label, memory_space
from visc.passes.llvm.gpu_to_nvvm import _SREG, launch_operands, may_alias
from visc.passes.llvm.math_to_llvm import (
    INT_INTRINSICS,
    INTRINSICS,
    LIBRARY_FUNCTIONS,
    library_name,
)
from visc.passes.llvm.memref_to_llvm import SHARED_ALIGNMENT

_FLOAT_NAMES = {16: "half", 32: "float", 64: "double"}

# arith op -> LLVM instruction of the same operands (no flags, as `convert-arith-to-llvm`)
_BINARY = {
    "arith.addi": "add", "arith.subi": "sub", "arith.muli": "mul", "arith.divsi": "sdiv", "arith.divui": "udiv",
    "arith.remsi": "srem", "arith.remui": "urem", "arith.andi": "and", "arith.ori": "or", "arith.xori": "xor",
    "arith.shli": "shl", "arith.shrsi": "ashr", "arith.shrui": "lshr",
    "arith.addf": "fadd", "arith.subf": "fsub", "arith.mulf": "fmul", "arith.divf": "fdiv",
}
_CASTS = {
    "arith.extf": "fpext", "arith.truncf": "fptrunc", "arith.extsi": "sext", "arith.extui": "zext",
    "arith.trunci": "trunc", "arith.sitofp": "sitofp", "arith.bitcast": "bitcast",
}
# arith op -> LLVM intrinsic base (overloaded on the result type)
_ARITH_INTRINSICS = {
    "arith.maximumf": "maximum", "arith.minimumf": "minimum", "arith.maxnumf": "maxnum", "arith.minnumf": "minnum",
    "arith.maxsi": "smax", "arith.minsi": "smin", "arith.maxui": "umax", "arith.minui": "umin",
}
_REDUCTION_BINARY = {"add": ("fadd", "add"), "mul": ("fmul", "mul"), "and": ("and", "and"), "or": ("or", "or"),
                     "xor": ("xor", "xor")}
_REDUCTION_INTRINSICS = {"maxnumf": "maxnum", "minnumf": "minnum", "maximumf": "maximum", "minimumf": "minimum",
                         "maxsi": "smax", "minsi": "smin", "maxui": "umax", "minui": "umin"}
_GPU_IDS = ("gpu.thread_id", "gpu.block_id", "gpu.block_dim", "gpu.grid_dim", "gpu.global_id", "gpu.lane_id",
            "gpu.subgroup_size")


# ops never dead, told by name (asking xDSL's effect interfaces costs more)
_KEPT = frozenset({"memref.store", "vector.store", "scf.yield", "scf.condition", "gpu.return", "gpu.barrier"})


@dataclass
class _Join:
    """A block entered with values (a loop header, the end of an if): its phis, printed once
    every incoming edge is known, so a loop's back edge can be added after its body."""

    types: list[str]
    names: list[str]
    incoming: list[tuple[list[str], str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for i, (typ, name) in enumerate(zip(self.types, self.names, strict=True)):
            edges = ", ".join(f"[ {values[i]}, %{label} ]" for values, label in self.incoming)
            out.append(f"  {name} = phi {typ} {edges}")
        return out


def dead_ops(fn: Operation) -> set[Operation]:
    """The ops of ``fn`` that nothing observes: side-effect free or read-only (xDSL's
    `would_be_trivially_dead`) with every result unused or used only by dead ops. The
    llvm-dialect conversions erased them (`convert-scf-to-cf`'s greedy rewrite), so they
    are not printed either: LLVM would delete most of them, but not a libm call, which may
    set errno."""
    dead: set[Operation] = set()
    removable: dict[Operation, bool] = {}

    def observed(op: Operation) -> bool:
        while op is not fn:
            if op in dead:
                return False
            op = op.parent_op()  # type: ignore[assignment]
            if op is None:
                return True
        return True

    ops = list(fn.walk(reverse=True, region_first=True))  # users before definitions
    changed = True
    while changed:
        changed = False
        for op in ops:
            if op is fn or op in dead:
                continue
            if any(observed(use.operation) for r in op.results for use in r.uses):
                continue
            free = removable.get(op)
            if free is None and op.name in _KEPT:
                free = removable[op] = False
            if free is None:
                free = removable[op] = would_be_trivially_dead(op)
            if free:
                dead.add(op)
                changed = True
    return dead


def host_launches(module: Operation) -> dict[str, list[list[SSAValue]]]:
    """Function name -> the operand lists of its `gpu.launch_func` ops (`launch_operands`
    over the host code only: the functions of a `gpu.module` launch nothing)."""
    if isinstance(module, gpu.ModuleOp):
        return {}
    found: dict[str, list[list[SSAValue]]] = {}
    for top in module.regions[0].block.ops if module.regions and module.regions[0].blocks else []:
        if not isinstance(top, gpu.ModuleOp):
            for name, launches in launch_operands(top).items():
                found.setdefault(name, []).extend(launches)
    return found


@dataclass
class _FunctionState:
    name: str
    dead: set[Operation] = field(default_factory=set)
    written: set[SSAValue] = field(default_factory=set)  # memrefs stored to
    values: dict[SSAValue, str] = field(default_factory=dict)
    lines: list[str | _Join] = field(default_factory=list)
    allocas: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)  # module-level nodes its loops name
    counter: int = 0
    labels: int = 0
    block: str = "entry"


class LLVMEmitter:
    """Prints `gpu.func` bodies as LLVM IR functions. Targets override the hooks below."""

    INDEX_BITS = 32
    INLINE_EXP = False  # f32 exp as inline arithmetic (llvm_vector_math) instead of a library call
    # scalar innermost loops of SHORT_LOOP[0] to SHORT_LOOP[1] - 1 static iterations are left
    # to LLVM's loop vectorizer whole (`_loop_hints`; empty: no hints)
    SHORT_LOOP: tuple[int, ...] = ()
    # the lowering's ``vision.unroll`` hints become ``llvm.loop.unroll`` metadata (the CUDA
    # kernels, tuned without them, leave unrolling to LLVM)
    UNROLL_HINTS = False

    def __init__(self, triple: str, data_layout: str = "") -> None:
        self.triple = triple
        self.data_layout = data_layout
        self._declarations: dict[str, str] = {}
        self._globals: dict[str, str] = {}
        self._launches: dict[str, list[list[SSAValue]]] = {}
        self._strides: dict[MemRefType, tuple[tuple[int, ...], int]] = {}
        self._types: dict[Attribute, str] = {}
        self._type_ids: dict[int, tuple[Attribute, str]] = {}
        self._f = _FunctionState("")
        self._metadata_ids = 0

    # -- target hooks -------------------------------------------------------------------

    def header(self) -> list[str]:
        """The lines before the declarations."""
        lines = [f'target triple = "{self.triple}"']
        if self.data_layout:
            lines.append(f'target datalayout = "{self.data_layout}"')
        return lines

    def trailer(self) -> list[str]:
        """The lines after the last function (module metadata); asked once every function
        is printed."""
        return []

    def address_space(self, typ: MemRefType) -> int:
        """The LLVM address space of a memref's pointer."""
        return memory_space(typ)

    def define_line(self, fn: gpu.FuncOp, params: Sequence[str]) -> str:
        """The ``define`` line of a function (linkage, calling convention, attributes)."""
        return f'define void @"{fn.sym_name.data}"({", ".join(params)}) {{'

    def pointer_attributes(self, fn: gpu.FuncOp, written: set[int]) -> str:
        """Attributes of every pointer argument: ``noalias`` (C's ``restrict``) unless a launch
        passes the buffer of an argument the function writes (``written``: their indices) as
        another argument too."""
        return "" if may_alias(fn, self._launches.get(fn.sym_name.data, []), written) else "noalias"

    def gpu_value(self, op: Operation) -> str:
        """The value of a thread / block id or size op."""
        raise self.fail(op, f"{type(self).__name__} has no GPU thread ids (host functions run a range)")

    def barrier(self, op: Operation) -> None:
        raise self.fail(op, f"{type(self).__name__} has no barriers (lower-loops-to-cpu drops them)")

    def workgroup_array(self, op: Operation, array: str, align: int) -> str:
        """A pointer to an array of work-group memory (memory space 3) for ``op``: an
        internal global in address space 3, shared by the work-group (CUDA ``__shared__``),
        as `convert-memref-to-llvm` makes it."""
        n = 0
        while f"__shared_{self._f.name}_{n}" in self._globals:
            n += 1
        name = f"__shared_{self._f.name}_{n}"
        self._globals[name] = (f'@"{name}" = internal addrspace(3) global {array} undef, '
                               f"align {SHARED_ALIGNMENT}")
        return f'@"{name}"'

    def math_function(self, op: Operation, base: str, elt: Attribute) -> str:
        """The symbol of the library function ``base`` (a C99 double-precision name) at the
        float type ``elt``: libm's ``expf`` / ``exp``."""
        return base + "f" if isinstance(elt, Float32Type) else base

    def emit_rsqrt(self, op: Operation) -> None:
        """``1 / sqrt(x)``: libm has no rsqrt."""
        x = op.operands[0]
        t = self.ty(x.type)
        root = self.call_intrinsic(f"llvm.sqrt.{self.suffix(x.type)}", t, [(t, self.ref(x))])
        one = self.splat_literal(1.0, x.type)
        self.assign(op.results[0], f"fdiv {t} {one}, {root}")

    def emit_fpowi(self, op: Operation) -> None:
        """``math.fpowi``: libm hosts take LLVM's ``llvm.powi``."""
        base, exp = op.operands
        if isinstance(base.type, VectorType):
            raise self.fail(op, "vector operands are not supported")
        t = self.ty(base.type)
        name = f"llvm.powi.{self.suffix(base.type)}.{self.suffix(exp.type)}"
        self.assign(op.results[0], self.intrinsic_call(name, t, [(t, self.ref(base)),
                                                                 (self.ty(exp.type), self.ref(exp))]))

    # -- types and literals ---------------------------------------------------------------

    def ty(self, typ: Attribute) -> str:
        """The LLVM type of a value."""
        # by identity first: hashing an attribute costs more than printing the type
        known = self._type_ids.get(id(typ))
        if known is not None and known[0] is typ:
            return known[1]
        found = self._types.get(typ)
        if found is None:
            found = self._types[typ] = self.convert_type(typ)
        self._type_ids[id(typ)] = (typ, found)
        return found

    def convert_type(self, typ: Attribute) -> str:
        if isinstance(typ, IndexType):
            return f"i{self.INDEX_BITS}"
        if isinstance(typ, IntegerType):
            return f"i{typ.width.data}"
        if isinstance(typ, Float16Type | Float32Type | Float64Type):
            return _FLOAT_NAMES[typ.bitwidth]
        if isinstance(typ, VectorType):
            if len(typ.get_shape()) != 1:
                raise CompileError(f"only 1-D vectors are supported, not {typ}")
            return f"<{typ.element_count()} x {self.convert_type(typ.element_type)}>"
        if isinstance(typ, MemRefType):
            space = self.address_space(typ)
            return f"ptr addrspace({space})" if space else "ptr"
        raise CompileError(f"type {typ} has no LLVM equivalent here")

    def storage_ty(self, typ: Attribute) -> str:
        """The LLVM type of an element in memory: `i1` is a byte."""
        return "i8" if _is_i1(typ) else self.ty(typ)

    def suffix(self, typ: Attribute) -> str:
        """LLVM's overload suffix of a type: ``i32``, ``f32``, ``v4f32``."""
        if isinstance(typ, VectorType):
            return f"v{typ.element_count()}{self.suffix(typ.element_type)}"
        if isinstance(typ, IndexType):
            return f"i{self.INDEX_BITS}"
        if isinstance(typ, IntegerType):
            return f"i{typ.width.data}"
        if isinstance(typ, Float16Type | Float32Type | Float64Type):
            return f"f{typ.bitwidth}"
        raise CompileError(f"type {typ} has no LLVM intrinsic suffix")

    def scalar_literal(self, value: float | int, typ: Attribute) -> str:
        if isinstance(typ, IntegerType | IndexType):
            width = self.INDEX_BITS if isinstance(typ, IndexType) else typ.width.data
            v = int(value) & ((1 << width) - 1)
            if width == 1:
                return "true" if v else "false"
            return str(v - (1 << width) if v >= 1 << (width - 1) else v)
        if isinstance(typ, Float16Type | Float32Type | Float64Type):
            f = float(value)
            if not isinstance(typ, Float64Type):
                with np.errstate(over="ignore"):
                    f = float(np.float16(f) if isinstance(typ, Float16Type) else np.float32(f))
            # LLVM reads a float constant of any width as the hex of the double it equals exactly
            return f"0x{struct.unpack('<Q', struct.pack('<d', f))[0]:016X}"
        raise CompileError(f"constants of type {typ} are not supported")

    def literal(self, attr: Attribute, typ: Attribute) -> str:
        """An `arith.constant` value as an LLVM constant (without its type)."""
        if isinstance(typ, VectorType):
            elt = typ.element_type
            if isinstance(attr, DenseIntOrFPElementsAttr):
                values = list(attr.get_values())
            elif isinstance(attr, IntegerAttr | FloatAttr):
                values = [attr.value.data]
            else:
                raise CompileError(f"unsupported vector constant {attr}")
            n = typ.element_count()
            if len(values) == 1:
                values = values * n
            et = self.ty(elt)
            return "<" + ", ".join(f"{et} {self.scalar_literal(v, elt)}" for v in values) + ">"
        if isinstance(attr, IntegerAttr | FloatAttr):
            return self.scalar_literal(attr.value.data, typ)
        raise CompileError(f"unsupported constant {attr}")

    def float_literal(self, value: float) -> str:
        """An f32 constant (rounded to f32) as LLVM text."""
        return self.scalar_literal(value, Float32Type())

    def splat_literal(self, value: float | int, typ: Attribute) -> str:
        if isinstance(typ, VectorType):
            et = self.ty(typ.element_type)
            lane = f"{et} {self.scalar_literal(value, typ.element_type)}"
            return "<" + ", ".join([lane] * typ.element_count()) + ">"
        return self.scalar_literal(value, typ)

    # -- module ---------------------------------------------------------------------------

    def emit(self, module: Operation, functions: Sequence[gpu.FuncOp] | None = None) -> str:
        """The LLVM module of ``functions`` (default: every `gpu.func` of every `gpu.module`
        in ``module``); ``module`` also gives the launches that decide argument aliasing."""
        self._declarations = {}
        self._globals = {}
        self._metadata_ids = 0
        self._launches = host_launches(module)
        if functions is None:
            mods = [module] if isinstance(module, gpu.ModuleOp) else [
                op for op in (module.ops if isinstance(module, ModuleOp) else module.walk())
                if isinstance(op, gpu.ModuleOp)]
            functions = [op for m in mods for op in m.body.block.ops if isinstance(op, gpu.FuncOp)]
        bodies = []
        for fn in functions:
            try:
                bodies.append(self.emit_function(fn))
            except CompileError as e:
                if str(e).startswith("kernel '"):
                    raise
                raise CompileError(f"{kernel_label(fn)}: {e}") from e
        parts = ["\n".join(self.header())]
        if self._declarations:
            parts.append("\n".join(self._declarations.values()))
        if self._globals:
            parts.append("\n".join(self._globals.values()))
        parts.extend(bodies)
        trailer = self.trailer()
        if trailer:
            parts.append("\n".join(trailer))
        return "\n\n".join(parts) + "\n"

    def emit_function(self, fn: gpu.FuncOp) -> str:
        """One ``define``, from its line to its closing ``}``."""
        self._f = f = _FunctionState(fn.sym_name.data, dead_ops(fn))
        if fn.function_type.outputs.data:
            raise self.fail(fn, "functions return nothing")
        entry = fn.body.blocks.first
        if entry is None:
            raise self.fail(fn, "a declaration has no body to emit")
        if len(fn.body.blocks) > 1:
            raise self.fail(fn, "functions with several blocks are not supported (structured control flow only)")
        types = []
        for i, arg in enumerate(entry.args):
            f.values[arg] = f"%a{i}"
            try:
                types.append(self.ty(arg.type))
            except CompileError as e:
                raise self.fail(fn, f"argument {i}: {e}") from None
            if isinstance(arg.type, MemRefType):
                self.strides(fn, arg.type)
        self.block(entry)
        args = list(entry.args)
        attrs = self.pointer_attributes(fn, {args.index(a) for a in f.written if a in args})
        params = [f"{t} {attrs} %a{i}" if attrs and isinstance(a.type, MemRefType) else f"{t} %a{i}"
                  for i, (t, a) in enumerate(zip(types, args, strict=True))]
        out = [self.define_line(fn, params), "entry:"]
        out.extend(f.allocas)
        for item in f.lines:
            if isinstance(item, _Join):
                out.extend(item.lines())
            else:
                out.append(item)
        out.append("}")
        out.extend(f.metadata)  # right after its function: a unit of `split_units` keeps them
        return "\n".join(out)

    def loop_metadata(self, *properties: str) -> str:
        """A distinct ``!llvm.loop`` node with `properties` (metadata node texts) for the
        loop being printed; its reference."""
        node = self._metadata_ids
        self._metadata_ids += 1 + len(properties)
        refs = [f"!{node + 1 + i}" for i in range(len(properties))]
        self._f.metadata.append(f"!{node} = distinct !{{!{node}, {', '.join(refs)}}}")
        self._f.metadata.extend(f"{ref} = !{{{text}}}" for ref, text in zip(refs, properties, strict=True))
        return f"!{node}"

    # -- emission helpers -----------------------------------------------------------------

    def fail(self, op: Operation, why: str) -> CompileError:
        return CompileError(f"{kernel_label(op)}: cannot emit {op.name} as LLVM IR: {why}")

    def line(self, text: str) -> None:
        self._f.lines.append("  " + text)

    def fresh(self) -> str:
        f = self._f
        f.counter += 1
        return f"%t{f.counter}"

    def label(self) -> str:
        f = self._f
        f.labels += 1
        return f"L{f.labels}"

    def start_block(self, label: str) -> None:
        self._f.lines.append(f"{label}:")
        self._f.block = label

    def assign(self, value: SSAValue | None, rhs: str) -> str:
        """``%tN = rhs``; binds ``value`` (if any) to the new name and returns it."""
        name = self.fresh()
        self._f.lines.append(f"  {name} = {rhs}")
        if value is not None:
            self._f.values[value] = name
        return name

    def ref(self, value: SSAValue) -> str:
        """The LLVM operand text of ``value`` (a name or a literal constant)."""
        name = self._f.values.get(value)
        if name is not None:
            return name
        attr = constant_attr(value)
        owner = value.owner
        if attr is not None:
            assert isinstance(owner, Operation)
            try:
                text = self.literal(attr, value.type)
            except CompileError as e:
                raise self.fail(owner, str(e)) from None
            self._f.values[value] = text
            return text
        what = owner.name if isinstance(owner, Operation) else "a block argument"
        raise CompileError(f"function '{self._f.name}': a value defined by {what} is used before it is emitted")

    def typed(self, value: SSAValue) -> str:
        return f"{self.ty(value.type)} {self.ref(value)}"

    def declare(self, name: str, result: str, args: Sequence[str]) -> None:
        if name not in self._declarations:
            self._declarations[name] = f'declare {result} @"{name}"({", ".join(args)})'

    def intrinsic_call(self, name: str, result: str, args: Sequence[tuple[str, str]]) -> str:
        """The text of a call of ``name`` (declared once), args as (type, operand) pairs."""
        self.declare(name, result, [t for t, _ in args])
        return f'call {result} @"{name}"({", ".join(f"{t} {v}" for t, v in args)})'

    def call_intrinsic(self, name: str, result: str, args: Sequence[tuple[str, str]]) -> str:
        return self.assign(None, self.intrinsic_call(name, result, args))

    def strides(self, op: Operation, typ: MemRefType) -> tuple[tuple[int, ...], int]:
        found = self._strides.get(typ)
        if found is None:
            try:
                found = self._strides[typ] = memref_strides(typ)
            except CompileError as e:
                raise self.fail(op, str(e)) from None
        return found

    # -- walking --------------------------------------------------------------------------

    def block(self, block: Block) -> None:
        handlers = self._handlers()
        dead = self._f.dead
        for op in block.ops:
            if op in dead:
                continue
            self.op(op, handlers)

    def region_body(self, block: Block, terminator: str) -> list[SSAValue]:
        """Emit ``block`` but its terminator (``terminator``: its op name), whose operands
        are returned."""
        handlers = self._handlers()
        dead = self._f.dead
        last = block.last_op
        for op in block.ops:
            if op is last and op.name == terminator:
                return list(op.operands)
            if op in dead:
                continue
            self.op(op, handlers)
        raise CompileError(f"function '{self._f.name}': a region does not end with {terminator}")

    def op(self, op: Operation, handlers: dict[str, Callable[[LLVMEmitter, Operation], None]]) -> None:
        handler = handlers.get(op.name)
        if handler is None:
            raise self.fail(op, "no LLVM lowering for this op")
        try:
            handler(self, op)
        except CompileError as e:
            if str(e).startswith("kernel '"):
                raise
            raise self.fail(op, str(e)) from None

    @classmethod
    def _handlers(cls) -> dict[str, Callable[[LLVMEmitter, Operation], None]]:
        return _HANDLERS

    def _vector_unsupported(self, op: Operation, why: str) -> None:
        if any(isinstance(v.type, VectorType) for v in op.operands):
            raise self.fail(op, why)


class CPUEmitter(LLVMEmitter):
    """Host functions: libm math, no thread ids or barriers; work-group memory (left only
    in hand-written IR: `lower-loops-to-cpu` privatizes it) is a stack array, since a host
    function runs one work-group at a time. f32 ``exp`` is inline arithmetic, so loops that
    call it still vectorize."""

    INLINE_EXP = True
    SHORT_LOOP = (8, 128)
    UNROLL_HINTS = True

    def address_space(self, typ: MemRefType) -> int:
        return 0

    def workgroup_array(self, op: Operation, array: str, align: int) -> str:
        name = self.fresh()
        self._f.allocas.append(f"  {name} = alloca {array}, i32 1, align {align}")
        return name


class NVPTXEmitter(LLVMEmitter):
    """CUDA kernels for LLVM's NVPTX backend, as `NVVM_PIPELINE` + `translate` + the PTX
    backend's annotations give them: thread ids from the ``llvm.nvvm.read.ptx.sreg.*``
    registers, ``llvm.nvvm.barrier0``, libdevice's ``__nv_*`` math (linked by the PTX
    backend), kernels in the ``ptx_kernel`` calling convention (``nvvm.annotations``
    ``kernel`` before LLVM 20) with their ``gpu.known_block_size`` as ``reqntid``.
    Pointers stay generic (space 0) as the conversions leave them: NVPTX infers global
    memory for kernel arguments itself; work-group memory is address space 3."""

    def __init__(self, triple: str, data_layout: str = "", calling_convention: bool = True) -> None:
        """``calling_convention``: mark kernels ``ptx_kernel`` (LLVM 20 and later) rather than
        with an ``nvvm.annotations`` ``kernel`` entry."""
        super().__init__(triple, data_layout)
        self.calling_convention = calling_convention
        self.kernels: list[str] = []
        self._annotations: list[tuple[str, str, int]] = []

    def emit(self, module: Operation, functions: Sequence[gpu.FuncOp] | None = None) -> str:
        self.kernels = []
        self._annotations = []
        return super().emit(module, functions)

    def define_line(self, fn: gpu.FuncOp, params: Sequence[str]) -> str:
        name = fn.sym_name.data
        if fn.kernel is None:
            return super().define_line(fn, params)
        self.kernels.append(name)
        if not self.calling_convention:
            self._annotations.append((name, "kernel", 1))
        if fn.known_block_size is not None:
            sizes = ([int(s) for s in fn.known_block_size.get_values()] + [1, 1])[:3]
            self._annotations.extend((name, f"reqntid{axis}", size) for axis, size in zip("xyz", sizes, strict=True))
        cc = "ptx_kernel " if self.calling_convention else ""
        return f'define {cc}void @"{name}"({", ".join(params)}) {{'

    def trailer(self) -> list[str]:
        if not self._annotations:
            return []
        refs = ", ".join(f"!{i}" for i in range(len(self._annotations)))
        return [f"!nvvm.annotations = !{{{refs}}}"] + [
            f'!{i} = !{{ptr @"{name}", !"{key}", i32 {value}}}'
            for i, (name, key, value) in enumerate(self._annotations)]

    def _sreg(self, register: str) -> str:
        return self.call_intrinsic(f"llvm.nvvm.read.ptx.sreg.{register}", "i32", [])

    def gpu_value(self, op: Operation) -> str:
        if op.name in ("gpu.lane_id", "gpu.subgroup_size"):
            return self._sreg("laneid" if op.name == "gpu.lane_id" else "warpsize")
        dim = str(op.properties["dimension"].data)  # type: ignore[attr-defined]
        if op.name == "gpu.global_id":
            block = self.assign(None, f"mul i32 {self._sreg(f'ctaid.{dim}')}, {self._sreg(f'ntid.{dim}')}")
            return self.assign(None, f"add i32 {block}, {self._sreg(f'tid.{dim}')}")
        return self._sreg(f"{_SREG[op.name]}.{dim}")

    def barrier(self, op: Operation) -> None:
        self.line(self.intrinsic_call("llvm.nvvm.barrier0", "void", []))

    def math_function(self, op: Operation, base: str, elt: Attribute) -> str:
        return library_name("libdevice", base, elt)

    def emit_rsqrt(self, op: Operation) -> None:
        """libdevice has ``__nv_rsqrtf``."""
        _library_call(self, op)

    def emit_fpowi(self, op: Operation) -> None:
        """``__nv_powif`` / ``__nv_powi`` (f16 in f32), the exponent as ``i32``."""
        base, exp = op.operands
        if isinstance(base.type, VectorType):
            raise self.fail(op, "vector operands are not supported")
        _float_element(self, op, base.type)
        x, e = self.ref(base), self.ref(exp)
        work = Float64Type() if isinstance(base.type, Float64Type) else Float32Type()
        wt = self.ty(work)
        if isinstance(base.type, Float16Type):
            x = self.assign(None, f"fpext half {x} to float")
        width = _int_width(self, exp.type)
        if width != 32:
            e = self.assign(None, f"{'sext' if width < 32 else 'trunc'} {self.typed(exp)} to i32")
        name = "__nv_powif" if isinstance(work, Float32Type) else "__nv_powi"
        value = self.call_intrinsic(name, wt, [(wt, x), ("i32", e)])
        if isinstance(base.type, Float16Type):
            value = self.assign(None, f"fptrunc float {value} to half")
        self._f.values[op.results[0]] = value


def _is_i1(typ: Attribute) -> bool:
    return isinstance(typ, IntegerType) and typ.width.data == 1


def _float_element(e: LLVMEmitter, op: Operation, typ: Attribute) -> Attribute:
    elt = typ.element_type if isinstance(typ, VectorType) else typ
    if not isinstance(elt, Float16Type | Float32Type | Float64Type):
        raise e.fail(op, f"element type {elt} is not f16, f32 or f64")
    return elt


def _int_width(e: LLVMEmitter, typ: Attribute) -> int:
    elt = typ.element_type if isinstance(typ, VectorType) else typ
    if isinstance(elt, IndexType):
        return e.INDEX_BITS
    assert isinstance(elt, IntegerType)
    return elt.width.data


def _with_element(typ: Attribute, elt: Attribute) -> Attribute:
    return VectorType(elt, typ.get_shape()) if isinstance(typ, VectorType) else elt


def _const_int(value: SSAValue) -> int | None:
    attr = constant_attr(value)
    return int(attr.value.data) if isinstance(attr, IntegerAttr) else None


# -- arith ----------------------------------------------------------------------------------


def _constant(e: LLVMEmitter, op: Operation) -> None:
    """Constants are literals where used (`ref`), checked here."""
    e.ref(op.results[0])


def _binary(e: LLVMEmitter, op: Operation) -> None:
    a, b = op.operands
    e.assign(op.results[0], f"{_BINARY[op.name]} {e.ty(a.type)} {e.ref(a)}, {e.ref(b)}")


def _negf(e: LLVMEmitter, op: Operation) -> None:
    e.assign(op.results[0], f"fneg {e.typed(op.operands[0])}")


def _arith_intrinsic(e: LLVMEmitter, op: Operation) -> None:
    res = op.results[0]
    t = e.ty(res.type)
    name = f"llvm.{_ARITH_INTRINSICS[op.name]}.{e.suffix(res.type)}"
    e.assign(res, e.intrinsic_call(name, t, [(t, e.ref(v)) for v in op.operands]))


def _cmpi(e: LLVMEmitter, op: Operation) -> None:
    e._vector_unsupported(op, "vector comparisons are not supported")
    pred = CMPI[int(op.properties["predicate"].value.data)]  # type: ignore[attr-defined]
    a, b = op.operands
    e.assign(op.results[0], f"icmp {pred} {e.ty(a.type)} {e.ref(a)}, {e.ref(b)}")


def _cmpf(e: LLVMEmitter, op: Operation) -> None:
    e._vector_unsupported(op, "vector comparisons are not supported")
    pred = CMPF[int(op.properties["predicate"].value.data)]  # type: ignore[attr-defined]
    if pred in ("false", "true"):
        e._f.values[op.results[0]] = pred
        return
    a, b = op.operands
    e.assign(op.results[0], f"fcmp {pred} {e.ty(a.type)} {e.ref(a)}, {e.ref(b)}")


def _select(e: LLVMEmitter, op: Operation) -> None:
    cond, a, b = op.operands
    if isinstance(cond.type, VectorType):
        raise e.fail(op, "vector conditions are not supported")
    e.assign(op.results[0], f"select i1 {e.ref(cond)}, {e.typed(a)}, {e.typed(b)}")


def _cast(e: LLVMEmitter, op: Operation) -> None:
    src, res = op.operands[0], op.results[0]
    e.assign(res, f"{_CASTS[op.name]} {e.typed(src)} to {e.ty(res.type)}")


def _index_cast(e: LLVMEmitter, op: Operation) -> None:
    """Between ``index`` (i32) and an integer: sext (zext for index_castui), trunc, or nothing."""
    src, res = op.operands[0], op.results[0]
    a, b = _int_width(e, src.type), _int_width(e, res.type)
    if a == b:
        e._f.values[res] = e.ref(src)
        return
    inst = "trunc" if a > b else ("sext" if op.name == "arith.index_cast" else "zext")
    e.assign(res, f"{inst} {e.typed(src)} to {e.ty(res.type)}")


def _fp_to_int(e: LLVMEmitter, op: Operation) -> None:
    """Saturating, like the hardware conversion NVIDIA GPUs do (`convert-arith-to-llvm`)."""
    src, res = op.operands[0], op.results[0]
    kind = "fptosi" if op.name == "arith.fptosi" else "fptoui"
    t = e.ty(res.type)
    name = f"llvm.{kind}.sat.{e.suffix(res.type)}.{e.suffix(src.type)}"
    e.assign(res, e.intrinsic_call(name, t, [(e.ty(src.type), e.ref(src))]))


def _uitofp(e: LLVMEmitter, op: Operation) -> None:
    """Exact for every width: narrow values through a wider signed conversion, 64-bit ones
    halved (the lost bit kept sticky) when the top bit is set, converted and doubled."""
    src, res = op.operands[0], op.results[0]
    width = _int_width(e, src.type)
    rt, st = e.ty(res.type), e.ty(src.type)
    x = e.ref(src)
    if width < 64:
        wide = e.ty(_with_element(src.type, IntegerType(64 if width > 16 else 32)))
        z = e.assign(None, f"zext {st} {x} to {wide}")
        e.assign(res, f"sitofp {wide} {z} to {rt}")
        return
    one, zero = e.splat_literal(1, src.type), e.splat_literal(0, src.type)
    shifted = e.assign(None, f"lshr {st} {x}, {one}")
    low = e.assign(None, f"and {st} {x}, {one}")
    half = e.assign(None, f"or {st} {shifted}, {low}")
    big = e.assign(None, f"icmp slt {st} {x}, {zero}")
    small_value = e.assign(None, f"sitofp {st} {x} to {rt}")
    halved = e.assign(None, f"sitofp {st} {half} to {rt}")
    doubled = e.assign(None, f"fadd {rt} {halved}, {halved}")
    ct = e.ty(_with_element(src.type, IntegerType(1)))
    e.assign(res, f"select {ct} {big}, {rt} {doubled}, {rt} {small_value}")


def _div_rounded(e: LLVMEmitter, op: Operation) -> None:
    """floordivsi / ceildivsi / ceildivui: truncating division plus a correction of one."""
    e._vector_unsupported(op, "only scalars are supported")
    a, b = op.operands
    t = e.ty(a.type)
    x, y = e.ref(a), e.ref(b)
    res = op.results[0]
    if op.name == "arith.ceildivui":
        q = e.assign(None, f"udiv {t} {x}, {y}")
        r = e.assign(None, f"urem {t} {x}, {y}")
        adjust = e.assign(None, f"icmp ne {t} {r}, 0")
        z = e.assign(None, f"zext i1 {adjust} to {t}")
        e.assign(res, f"add {t} {q}, {z}")
        return
    q = e.assign(None, f"sdiv {t} {x}, {y}")
    r = e.assign(None, f"srem {t} {x}, {y}")
    inexact = e.assign(None, f"icmp ne {t} {r}, 0")
    r_negative = e.assign(None, f"icmp slt {t} {r}, 0")
    b_negative = e.assign(None, f"icmp slt {t} {y}, 0")
    signs_differ = e.assign(None, f"xor i1 {r_negative}, {b_negative}")
    if op.name == "arith.floordivsi":
        adjust = e.assign(None, f"and i1 {inexact}, {signs_differ}")
        z = e.assign(None, f"zext i1 {adjust} to {t}")
        e.assign(res, f"sub {t} {q}, {z}")
        return
    same_sign = e.assign(None, f"xor i1 {signs_differ}, true")
    adjust = e.assign(None, f"and i1 {inexact}, {same_sign}")
    z = e.assign(None, f"zext i1 {adjust} to {t}")
    e.assign(res, f"add {t} {q}, {z}")


# -- math -----------------------------------------------------------------------------------


def _math_intrinsic(e: LLVMEmitter, op: Operation) -> None:
    res = op.results[0]
    _float_element(e, op, res.type)
    t = e.ty(res.type)
    name = f"llvm.{INTRINSICS[op.name]}.{e.suffix(res.type)}"
    e.assign(res, e.intrinsic_call(name, t, [(t, e.ref(v)) for v in op.operands]))


def _int_intrinsic(e: LLVMEmitter, op: Operation) -> None:
    base, flag = INT_INTRINSICS[op.name]
    res = op.results[0]
    t = e.ty(res.type)
    args = [(t, e.ref(v)) for v in op.operands] + ([("i1", "false")] if flag else [])
    e.assign(res, e.intrinsic_call(f"llvm.{base}.{e.suffix(res.type)}", t, args))


def _library_call(e: LLVMEmitter, op: Operation) -> None:
    """A math library call; f16 runs in f32 and rounds back, vectors call once per lane."""
    res = op.results[0]
    elt = _float_element(e, op, res.type)
    args = [e.ref(v) for v in op.operands]
    work = res.type
    if isinstance(elt, Float16Type):
        work = _with_element(res.type, Float32Type())
        wt = e.ty(work)
        args = [e.assign(None, f"fpext {e.typed(v)} to {wt}")
                if isinstance(_float_element(e, op, v.type), Float16Type) else a
                for v, a in zip(op.operands, args, strict=True)]
        elt = Float32Type()
    fn = e.math_function(op, LIBRARY_FUNCTIONS[op.name], elt)
    st = e.ty(elt)
    if e.INLINE_EXP and op.name == "math.exp" and isinstance(elt, Float32Type):
        out = exp_f32(e, args[0], work.element_count() if isinstance(work, VectorType) else 0)
        e._f.values[res] = out if work is res.type else e.assign(None, f"fptrunc {e.ty(work)} {out} to {e.ty(res.type)}")
        return
    e.declare(fn, st, [st] * len(args))
    if isinstance(work, VectorType):
        vt = e.ty(work)
        out = "undef"
        for lane in range(work.element_count()):
            scalars = [e.assign(None, f"extractelement {vt} {a}, i32 {lane}") for a in args]
            value = e.assign(None, f'call {st} @"{fn}"({", ".join(f"{st} {s}" for s in scalars)})')
            out = e.assign(None, f"insertelement {vt} {out}, {st} {value}, i32 {lane}")
    else:
        out = e.assign(None, f'call {st} @"{fn}"({", ".join(f"{st} {a}" for a in args)})')
    if work is not res.type:
        out = e.assign(None, f"fptrunc {e.ty(work)} {out} to {e.ty(res.type)}")
    e._f.values[res] = out


def _fpowi(e: LLVMEmitter, op: Operation) -> None:
    e.emit_fpowi(op)


def _rsqrt(e: LLVMEmitter, op: Operation) -> None:
    _float_element(e, op, op.results[0].type)
    e.emit_rsqrt(op)


def _ipowi(e: LLVMEmitter, op: Operation) -> None:
    """``base ** exp`` by squaring, inline (negative exponents as in MLIR: 0 unless |base|
    is 1). Inline rather than a helper function, so every function stays self-contained."""
    base, exp = op.operands
    if isinstance(base.type, VectorType):
        raise e.fail(op, "vector operands are not supported")
    t = e.ty(base.type)
    b, x = e.ref(base), e.ref(exp)
    negative, loop, body, done = e.label(), e.label(), e.label(), e.label()
    start = e._f.block
    is_negative = e.assign(None, f"icmp slt {t} {x}, 0")
    e.line(f"br i1 {is_negative}, label %{negative}, label %{loop}")
    e.start_block(negative)
    odd = e.assign(None, f"and {t} {x}, 1")
    is_odd = e.assign(None, f"icmp ne {t} {odd}, 0")
    sign = e.assign(None, f"select i1 {is_odd}, {t} -1, {t} 1")
    is_one = e.assign(None, f"icmp eq {t} {b}, 1")
    is_minus_one = e.assign(None, f"icmp eq {t} {b}, -1")
    pick = e.assign(None, f"select i1 {is_minus_one}, {t} {sign}, {t} 0")
    negative_result = e.assign(None, f"select i1 {is_one}, {t} 1, {t} {pick}")
    e.line(f"br label %{done}")
    e.start_block(loop)
    acc, square_in, exp_in = e.fresh(), e.fresh(), e.fresh()
    join = _Join([t, t, t], [acc, square_in, exp_in], [(["1", b, x], start)])
    e._f.lines.append(join)
    positive = e.assign(None, f"icmp sgt {t} {exp_in}, 0")
    e.line(f"br i1 {positive}, label %{body}, label %{done}")
    e.start_block(body)
    low = e.assign(None, f"and {t} {exp_in}, 1")
    times = e.assign(None, f"mul {t} {acc}, {square_in}")
    take = e.assign(None, f"icmp ne {t} {low}, 0")
    new_acc = e.assign(None, f"select i1 {take}, {t} {times}, {t} {acc}")
    square = e.assign(None, f"mul {t} {square_in}, {square_in}")
    shifted = e.assign(None, f"ashr {t} {exp_in}, 1")
    e.line(f"br label %{loop}")
    join.incoming.append(([new_acc, square, shifted], body))
    e.start_block(done)
    result = e.fresh()
    e._f.lines.append(_Join([t], [result], [([negative_result], negative), ([acc], loop)]))
    e._f.values[op.results[0]] = result


# -- memref / vector memory -----------------------------------------------------------------


def element_pointer(e: LLVMEmitter, op: Operation, mem: SSAValue, indices: Sequence[SSAValue], element: str) -> str:
    """The address of ``mem[indices]``: the static strides and offset linearized, constants
    folded, ``nsw`` index arithmetic, one ``getelementptr inbounds``."""
    typ = mem.type
    if not isinstance(typ, MemRefType):
        raise e.fail(op, f"expected a memref operand, got {typ}")
    strides, offset = e.strides(op, typ)
    size = max(1, math.prod(typ.get_shape()))
    if size + offset >= 1 << (e.INDEX_BITS - 1):
        raise e.fail(op, f"{typ} has more elements than {e.INDEX_BITS}-bit indices address")
    it = f"i{e.INDEX_BITS}"
    const = offset
    terms: list[str] = []
    for idx, stride in zip(indices, strides, strict=True):
        known = _const_int(idx)
        if known is not None:
            const += known * stride
            continue
        if stride == 0:
            continue
        term = e.ref(idx)
        if stride != 1:
            term = e.assign(None, f"mul nsw {it} {term}, {stride}")
        terms.append(term)
    if const:
        terms.append(e.scalar_literal(const, IndexType()))
    base = e.ref(mem)
    if not terms:
        return base
    linear = terms[0]
    for term in terms[1:]:
        linear = e.assign(None, f"add nsw {it} {linear}, {term}")
    return e.assign(None, f"getelementptr inbounds {element}, {e.ty(typ)} {base}, {it} {linear}")


def _byte_size(e: LLVMEmitter, typ: Attribute) -> int:
    if isinstance(typ, IntegerType):
        return max(1, typ.width.data // 8)
    if isinstance(typ, IndexType):
        return e.INDEX_BITS // 8
    if isinstance(typ, Float16Type | Float32Type | Float64Type):
        return typ.bitwidth // 8
    raise CompileError(f"type {typ} has no size in memory")


def _load(e: LLVMEmitter, op: Operation) -> None:
    mem, *idx = op.operands
    res = op.results[0]
    storage = e.storage_ty(res.type)
    ptr = element_pointer(e, op, mem, idx, storage)
    pt = e.ty(mem.type)
    align = 1 if _is_i1(res.type) else _byte_size(e, res.type)
    if _is_i1(res.type):
        byte = e.assign(None, f"load i8, {pt} {ptr}, align 1")
        e.assign(res, f"icmp ne i8 {byte}, 0")
    else:
        e.assign(res, f"load {storage}, {pt} {ptr}, align {align}")


def _store(e: LLVMEmitter, op: Operation) -> None:
    value, mem, *idx = op.operands
    e._f.written.add(mem)
    x = e.ref(value)
    if _is_i1(value.type):
        x = e.assign(None, f"zext i1 {x} to i8")
    storage = e.storage_ty(value.type)
    ptr = element_pointer(e, op, mem, idx, storage)
    align = 1 if _is_i1(value.type) else _byte_size(e, value.type)
    e.line(f"store {storage} {x}, {e.ty(mem.type)} {ptr}, align {align}")


def _vector_access(e: LLVMEmitter, op: Operation, typ: Attribute, mem: SSAValue, idx: Sequence[SSAValue]) -> tuple[str, int]:
    """The pointer of a vector load/store and its alignment (one element: the schedule
    guarantees contiguity, not vector alignment)."""
    assert isinstance(typ, VectorType)
    if _is_i1(typ.element_type):
        raise e.fail(op, "vectors of i1 are not supported")
    if len(typ.get_shape()) != 1:
        raise e.fail(op, "only 1-D vectors are supported")
    return element_pointer(e, op, mem, idx, e.ty(typ.element_type)), _byte_size(e, typ.element_type)


def _vector_load(e: LLVMEmitter, op: Operation) -> None:
    mem, *idx = op.operands
    res = op.results[0]
    ptr, align = _vector_access(e, op, res.type, mem, idx)
    e.assign(res, f"load {e.ty(res.type)}, {e.ty(mem.type)} {ptr}, align {align}")


def _vector_store(e: LLVMEmitter, op: Operation) -> None:
    value, mem, *idx = op.operands
    e._f.written.add(mem)
    ptr, align = _vector_access(e, op, value.type, mem, idx)
    e.line(f"store {e.typed(value)}, {e.ty(mem.type)} {ptr}, align {align}")


def _alloca(e: LLVMEmitter, op: Operation) -> None:
    """Private arrays at the top of the entry block (LLVM promotes those to registers);
    work-group memory (space 3) as the target provides it."""
    typ = op.results[0].type
    assert isinstance(typ, MemRefType)
    if op.operands:
        raise e.fail(op, "dynamic sizes are not supported")
    e.strides(op, typ)
    storage = e.storage_ty(typ.element_type)
    array = f"[{max(1, math.prod(typ.get_shape()))} x {storage}]"
    align = max(1 if _is_i1(typ.element_type) else _byte_size(e, typ.element_type), 4)
    if memory_space(typ) == 3:
        e._f.values[op.results[0]] = e.workgroup_array(op, array, align)
        return
    name = e.fresh()
    e._f.allocas.append(f"  {name} = alloca {array}, i32 1, align {align}")
    e._f.values[op.results[0]] = name


# -- vector registers -----------------------------------------------------------------------


def _broadcast(e: LLVMEmitter, op: Operation) -> None:
    res = op.results[0]
    typ = res.type
    src = op.operands[0]
    assert isinstance(typ, VectorType)
    if isinstance(src.type, VectorType):
        raise e.fail(op, "only scalar-to-vector broadcasts are supported")
    if len(typ.get_shape()) != 1:
        raise e.fail(op, "only 1-D vectors are supported")
    vt = e.ty(typ)
    first = e.assign(None, f"insertelement {vt} undef, {e.typed(src)}, i32 0")
    e.assign(res, f"shufflevector {vt} {first}, {vt} {first}, <{typ.element_count()} x i32> zeroinitializer")


def _static_lane(e: LLVMEmitter, op: Operation) -> int:
    dynamic = op.operands[1:] if op.name == "vector.extract" else op.operands[2:]
    if dynamic:
        raise e.fail(op, "dynamic positions are not supported")
    pos = [int(v) for v in op.properties["static_position"].get_values()]  # type: ignore[attr-defined]
    if len(pos) != 1:
        raise e.fail(op, "only 1-D vectors are supported")
    return pos[0]


def _extract(e: LLVMEmitter, op: Operation) -> None:
    lane = _static_lane(e, op)
    e.assign(op.results[0], f"extractelement {e.typed(op.operands[0])}, i32 {lane}")


def _insert(e: LLVMEmitter, op: Operation) -> None:
    lane = _static_lane(e, op)
    src, dest = op.operands[0], op.operands[1]
    e.assign(op.results[0], f"insertelement {e.typed(dest)}, {e.typed(src)}, i32 {lane}")


def _fma(e: LLVMEmitter, op: Operation) -> None:
    res = op.results[0]
    _float_element(e, op, res.type)
    t = e.ty(res.type)
    e.assign(res, e.intrinsic_call(f"llvm.fma.{e.suffix(res.type)}", t, [(t, e.ref(v)) for v in op.operands]))


def _reduction(e: LLVMEmitter, op: Operation) -> None:
    """Lanes combined in order, then the accumulator (`convert-vector-to-llvm`'s order)."""
    vec = op.operands[0]
    typ = vec.type
    assert isinstance(typ, VectorType)
    kind = str(op.properties["kind"].data)  # type: ignore[attr-defined]
    elt = typ.element_type
    et = e.ty(elt)
    if kind not in _REDUCTION_BINARY and kind not in _REDUCTION_INTRINSICS:
        raise e.fail(op, f"reduction kind {kind} is not supported")
    vt, v = e.ty(typ), e.ref(vec)
    values = [e.assign(None, f"extractelement {vt} {v}, i32 {lane}") for lane in range(typ.element_count())]
    if len(op.operands) > 1:
        values.append(e.ref(op.operands[1]))
    is_float = isinstance(elt, Float16Type | Float32Type | Float64Type | BFloat16Type)
    acc = values[0]
    for value in values[1:]:
        if kind in _REDUCTION_BINARY:
            inst = _REDUCTION_BINARY[kind][0 if is_float else 1]
            acc = e.assign(None, f"{inst} {et} {acc}, {value}")
        else:
            name = f"llvm.{_REDUCTION_INTRINSICS[kind]}.{e.suffix(elt)}"
            acc = e.call_intrinsic(name, et, [(et, acc), (et, value)])
    e._f.values[op.results[0]] = acc


# -- scf ------------------------------------------------------------------------------------


def _for(e: LLVMEmitter, op: Operation) -> None:
    """header (iv and carried values as phis, ``icmp slt``), body, latch (``add`` of the
    step, back edge), exit: the blocks `convert-scf-to-cf` makes."""
    lb, ub, step, *inits = op.operands
    body = op.regions[0].block
    iv, *carried = body.args
    f = e._f
    header, first, exit_label = e.label(), e.label(), e.label()
    incoming = [e.ref(lb)] + [e.ref(v) for v in inits]
    e.line(f"br label %{header}")
    names = [e.fresh() for _ in body.args]
    join = _Join([e.ty(a.type) for a in body.args], names, [(incoming, f.block)])
    for arg, name in zip(body.args, names, strict=True):
        f.values[arg] = name
    e.start_block(header)
    f.lines.append(join)
    it = e.ty(iv.type)
    cond = e.assign(None, f"icmp slt {it} {names[0]}, {e.ref(ub)}")
    e.line(f"br i1 {cond}, label %{first}, label %{exit_label}")
    e.start_block(first)
    yielded = e.region_body(body, "scf.yield")
    stepped = e.assign(None, f"add {it} {names[0]}, {e.ref(step)}")
    join.incoming.append(([stepped] + [e.ref(v) for v in yielded], f.block))
    e.line(f"br label %{header}{_loop_hints(e, op)}")
    e.start_block(exit_label)
    for res, name in zip(op.results, names[1:], strict=True):
        f.values[res] = name


def _loop_hints(e: LLVMEmitter, op: Operation) -> str:
    """The back edge's ``!llvm.loop``: the lowering's ``vision.unroll`` hint, else for a short
    scalar innermost loop (`SHORT_LOOP`): no unrolling and no interleaving. Otherwise LLVM unrolls a 49-iteration loop (a 7x7 plane
    of an elementwise map) fully and then vectorizes the loop around it, across planes, with
    gathers and scatters (measured 2x slower than scalar rows of 7); or, left whole, finds
    49 iterations too few for four interleaved 16-lane vectors and runs it scalar."""
    unroll = op.attributes.get("vision.unroll")
    if e.UNROLL_HINTS and isinstance(unroll, IntegerAttr):  # the lowering's: 0 fully, else that factor
        factor = int(unroll.value.data)
        prop = '!"llvm.loop.unroll.full"' if factor == 0 else f'!"llvm.loop.unroll.count", i32 {factor}'
        return ", !llvm.loop " + e.loop_metadata(prop)
    if not e.SHORT_LOOP:
        return ""
    lb, ub, step = (_const_int(v) for v in op.operands[:3])
    if lb is None or ub is None or not step or step <= 0:
        return ""
    lo, hi = e.SHORT_LOOP
    if not lo <= -(-(ub - lb) // step) < hi:
        return ""
    if explicit_tiles(op):  # a loop of vectors or around loops: nothing for LLVM's vectorizer
        return ""
    return ", !llvm.loop " + e.loop_metadata('!"llvm.loop.unroll.disable"', '!"llvm.loop.interleave.count", i32 1')


def _if(e: LLVMEmitter, op: Operation) -> None:
    cond = e.ref(op.operands[0])
    f = e._f
    then_label, end = e.label(), e.label()
    else_region = op.regions[1]
    has_else = bool(else_region.blocks) and (
        bool(op.results) or any(o.name != "scf.yield" for o in else_region.block.ops))
    else_label = e.label() if has_else else end
    e.line(f"br i1 {cond}, label %{then_label}, label %{else_label}")
    join = _Join([e.ty(r.type) for r in op.results], [e.fresh() for _ in op.results])
    branches = [(then_label, op.regions[0])] + ([(else_label, else_region)] if has_else else [])
    for label, region in branches:
        e.start_block(label)
        yielded = e.region_body(region.block, "scf.yield")
        join.incoming.append(([e.ref(v) for v in yielded], f.block))
        e.line(f"br label %{end}")
    e.start_block(end)
    if op.results:
        f.lines.append(join)
        for res, name in zip(op.results, join.names, strict=True):
            f.values[res] = name


def _while(e: LLVMEmitter, op: Operation) -> None:
    """before (its arguments as phis) ends in ``scf.condition``: on true to after, whose
    arguments are the condition's operands, on false out; after yields back to before."""
    before, after = op.regions[0].block, op.regions[1].block
    f = e._f
    head, body_label, exit_label = e.label(), e.label(), e.label()
    e.line(f"br label %{head}")
    names = [e.fresh() for _ in before.args]
    join = _Join([e.ty(a.type) for a in before.args], names, [([e.ref(v) for v in op.operands], f.block)])
    for arg, name in zip(before.args, names, strict=True):
        f.values[arg] = name
    e.start_block(head)
    f.lines.append(join)
    cond, *passed = e.region_body(before, "scf.condition")
    refs = [e.ref(v) for v in passed]
    e.line(f"br i1 {e.ref(cond)}, label %{body_label}, label %{exit_label}")
    e.start_block(body_label)
    for arg, ref in zip(after.args, refs, strict=True):
        f.values[arg] = ref
    yielded = e.region_body(after, "scf.yield")
    join.incoming.append(([e.ref(v) for v in yielded], f.block))
    e.line(f"br label %{head}")
    e.start_block(exit_label)
    for res, ref in zip(op.results, refs, strict=True):
        f.values[res] = ref


def _stray_terminator(e: LLVMEmitter, op: Operation) -> None:
    raise e.fail(op, "it may only end an scf.for / scf.if / scf.while region")


# -- gpu ------------------------------------------------------------------------------------


def _return(e: LLVMEmitter, op: Operation) -> None:
    if op.operands:
        raise e.fail(op, "functions return nothing")
    e.line("ret void")


def _gpu_id(e: LLVMEmitter, op: Operation) -> None:
    e._f.values[op.results[0]] = e.gpu_value(op)


def _barrier(e: LLVMEmitter, op: Operation) -> None:
    e.barrier(op)


_HANDLERS: dict[str, Callable[[LLVMEmitter, Operation], None]] = {
    "arith.constant": _constant,
    **{name: _binary for name in _BINARY},
    **{name: _cast for name in _CASTS},
    **{name: _arith_intrinsic for name in _ARITH_INTRINSICS},
    "arith.negf": _negf, "arith.cmpi": _cmpi, "arith.cmpf": _cmpf, "arith.select": _select,
    "arith.index_cast": _index_cast, "arith.index_castui": _index_cast,
    "arith.fptosi": _fp_to_int, "arith.fptoui": _fp_to_int, "arith.uitofp": _uitofp,
    "arith.floordivsi": _div_rounded, "arith.ceildivsi": _div_rounded, "arith.ceildivui": _div_rounded,
    **{name: _math_intrinsic for name in INTRINSICS},
    **{name: _library_call for name in LIBRARY_FUNCTIONS},
    **{name: _int_intrinsic for name in INT_INTRINSICS},
    "math.fpowi": _fpowi, "math.ipowi": _ipowi, "math.rsqrt": _rsqrt,
    "memref.load": _load, "memref.store": _store, "memref.alloca": _alloca,
    "vector.load": _vector_load, "vector.store": _vector_store,
    "vector.broadcast": _broadcast, "vector.splat": _broadcast, "vector.extract": _extract,
    "vector.insert": _insert, "vector.fma": _fma, "vector.reduction": _reduction,
    "scf.for": _for, "scf.if": _if, "scf.while": _while,
    "scf.yield": _stray_terminator, "scf.condition": _stray_terminator,
    "gpu.return": _return, "gpu.barrier": _barrier,
    **{name: _gpu_id for name in _GPU_IDS},
}

__all__ = ["LLVMEmitter", "CPUEmitter", "NVPTXEmitter", "element_pointer"]
