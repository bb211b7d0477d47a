"""What every lowering to the `llvm` dialect shares: the type converter, and a table-driven
rewrite pattern whose handlers see their operands already converted.

Dialects are converted one pass at a time (math, arith, vector, memref, cf, gpu), so between
two passes a value may be produced by a converted op and used by an unconverted one, or the
other way round. Such edges are bridged with `builtin.unrealized_conversion_cast`, as MLIR
does: a handler asks for an operand at its converted type (`Lowering.operand`), which peels
an existing cast or inserts a new one; results whose type changed are cast back for users
not yet converted. Each pass ends with `reconcile_unrealized_casts`, so a module is valid
after every pass and the casts vanish once both ends are converted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from xdsl.dialects import arith, gpu, llvm
from xdsl.dialects.builtin import (
    AnyFloat,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    StringAttr,
    UnrealizedConversionCastOp,
    VectorType,
    i32,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.transforms.reconcile_unrealized_casts import ReconcileUnrealizedCastsPattern

from visc.errors import CompileError

# -- types ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LLVMTypeConverter:
    """Builtin types -> llvm-dialect types.

    ``index`` becomes ``i<index_bitwidth>`` (32 by default: GPU address arithmetic is
    cheapest in 32 bits, and it matches the OpenCL backend's `int`). A memref becomes an
    opaque pointer in its memory space (space 3, workgroup memory, stays 3; the default
    space is the generic space 0, which LLVM's NVPTX backend narrows to global or local
    memory itself). Other scalar and vector types are unchanged.
    """

    index_bitwidth: int = 32

    @property
    def index(self) -> IntegerType:
        return IntegerType(self.index_bitwidth)

    def convert(self, typ: Attribute) -> Attribute:
        if isinstance(typ, IndexType):
            return self.index
        if isinstance(typ, VectorType) and isinstance(typ.element_type, IndexType):
            return VectorType(self.index, typ.get_shape())
        if isinstance(typ, MemRefType):
            return pointer_type(memory_space(typ))
        return typ

    def storage(self, typ: Attribute) -> Attribute:
        """The type of an element as it lies in memory: `i1` is a byte."""
        if isinstance(typ, IntegerType) and typ.width.data == 1:
            return IntegerType(8)
        return self.convert(typ)


def pointer_type(address_space: int) -> llvm.LLVMPointerType:
    """An opaque pointer; space 0 prints as plain `!llvm.ptr`, like `llvm.alloca` results."""
    return llvm.LLVMPointerType(IntAttr(address_space) if address_space else NoneAttr())


def memory_space(typ: MemRefType) -> int:
    """The numeric address space of a memref (workgroup memory by name or by number is 3)."""
    space = typ.memory_space
    if isinstance(space, IntegerAttr):
        return int(space.value.data)
    if isinstance(space, StringAttr) and space.data in ("workgroup", "local", "shared"):
        return 3
    return 0


def intrinsic_suffix(typ: Attribute) -> str:
    """LLVM's overload suffix of a type: ``i32``, ``f32``, ``v4f32``."""
    if isinstance(typ, VectorType):
        return f"v{typ.element_count()}{intrinsic_suffix(typ.element_type)}"
    if isinstance(typ, IntegerType):
        return f"i{typ.width.data}"
    if isinstance(typ, AnyFloat):
        return f"f{typ.bitwidth}"
    raise CompileError(f"type {typ} has no LLVM intrinsic suffix")


def byte_size(typ: Attribute) -> int:
    """Bytes of one element of a storage type (scalar or vector)."""
    if isinstance(typ, VectorType):
        return byte_size(typ.element_type) * max(1, typ.element_count())
    if isinstance(typ, IntegerType):
        return max(1, typ.width.data // 8)
    if isinstance(typ, AnyFloat):
        return typ.bitwidth // 8
    raise CompileError(f"type {typ} has no size in memory")


def constant_int(value: SSAValue) -> int | None:
    """The integer of an `arith.constant` / `llvm.mlir.constant` (through casts), else None."""
    owner = value.owner
    while isinstance(owner, UnrealizedConversionCastOp) and len(owner.inputs) == 1:
        owner = owner.inputs[0].owner
    if isinstance(owner, arith.ConstantOp | llvm.ConstantOp):
        attr = owner.value
        if isinstance(attr, IntegerAttr):
            return int(attr.value.data)
    return None


# -- where a lowering applies ---------------------------------------------------------------


def gpu_modules(module: Operation) -> list[gpu.ModuleOp]:
    """The kernel modules of a stage-5 module: the GPU lowerings touch nothing else, since
    the host function is the runtime plan and stays as it is."""
    return [op for op in module.walk() if isinstance(op, gpu.ModuleOp)]


def kernel_label(op: Operation) -> str:
    """How an error names the kernel around ``op``: its name and the ONNX nodes that launch
    it (read from the `gpu.launch_func` ops of the enclosing module)."""
    fn = op if isinstance(op, gpu.FuncOp | llvm.FuncOp) else None
    parent = op.parent_op()
    while fn is None and parent is not None:
        if isinstance(parent, gpu.FuncOp | llvm.FuncOp):
            fn = parent
        parent = parent.parent_op()
    if fn is None:
        return "kernel code"
    name = fn.sym_name.data
    top: Operation = fn
    while (up := top.parent_op()) is not None:
        top = up
    nodes: list[str] = []
    for launch in top.walk():
        if isinstance(launch, gpu.LaunchFuncOp) and launch.kernel.nested_references.data:
            if launch.kernel.nested_references.data[-1].data == name:
                node = launch.attributes.get("onnx_node")
                if isinstance(node, StringAttr) and node.data not in nodes:
                    nodes.append(node.data)
    if not nodes:
        return f"kernel '{name}'"
    shown = ", ".join(f"'{n}'" for n in nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")
    return f"kernel '{name}' (ONNX node{'s' if len(nodes) > 1 else ''} {shown})"


def unsupported(op: Operation, why: str = "") -> CompileError:
    detail = f": {why}" if why else ""
    return CompileError(f"{kernel_label(op)}: cannot lower {op.name} to the llvm dialect{detail}")


def reconcile_casts(region: Region) -> None:
    """Drop cast chains that round-trip to their source type, and unused casts."""
    PatternRewriteWalker(ReconcileUnrealizedCastsPattern()).rewrite_region(region)


def apply_lowering(module: Operation, pattern: RewritePattern, everywhere: bool = False) -> None:
    """Run ``pattern`` over the kernel modules of ``module`` (or over all of it when
    ``everywhere``, for callers that lower host code), then reconcile casts."""
    regions = [module.regions[0]] if everywhere else [m.body for m in gpu_modules(module)]
    for region in regions:
        PatternRewriteWalker(pattern, apply_recursively=False).rewrite_region(region)
        reconcile_casts(region)


# -- the handler interface ------------------------------------------------------------------


def cast_to(value: SSAValue, typ: Attribute) -> tuple[SSAValue, UnrealizedConversionCastOp | None]:
    """``value`` seen as ``typ``: itself, the source of the cast that made it, or a new cast
    (returned so the caller inserts it)."""
    if value.type == typ:
        return value, None
    owner = value.owner
    if isinstance(owner, UnrealizedConversionCastOp) and len(owner.inputs) == 1 and owner.inputs[0].type == typ:
        return owner.inputs[0], None
    cast = UnrealizedConversionCastOp.get([value], [typ])
    return cast.results[0], cast


def retype_block_argument(arg: BlockArgument, typ: Attribute) -> BlockArgument:
    """Give a block argument type ``typ``; its existing users see it through a cast back."""
    old = arg.type
    if old == typ:
        return arg
    new = Rewriter.replace_value_with_new_type(arg, typ)
    assert isinstance(new, BlockArgument)
    if new.uses:
        back = UnrealizedConversionCastOp.get([new], [old])
        new.replace_uses_with_if(back.results[0], lambda use: use.operation is not back)
        Rewriter.insert_op(back, InsertPoint.at_start(new.block))
    return new


@dataclass
class Lowering:
    """One op being replaced: converted operands on demand, new ops collected in order."""

    op: Operation
    converter: LLVMTypeConverter
    new_ops: list[Operation] = field(default_factory=list)

    @property
    def index(self) -> IntegerType:
        return self.converter.index

    def operand(self, i: int) -> SSAValue:
        return self.value(self.op.operands[i])

    def operands(self) -> list[SSAValue]:
        return [self.value(v) for v in self.op.operands]

    def value(self, v: SSAValue, typ: Attribute | None = None) -> SSAValue:
        """``v`` at its converted type (or at ``typ``)."""
        converted, cast = cast_to(v, self.converter.convert(v.type) if typ is None else typ)
        if cast is not None:
            self.new_ops.append(cast)
        return converted

    def result_type(self, i: int = 0) -> Attribute:
        return self.converter.convert(self.op.results[i].type)

    def emit(self, op: Operation) -> SSAValue:
        """Append ``op`` and return its (first) result."""
        self.new_ops.append(op)
        return op.results[0]

    def add(self, op: Operation) -> None:
        """Append an op without results (a store, a barrier)."""
        self.new_ops.append(op)

    def const(self, value: int | float, typ: Attribute) -> SSAValue:
        """A constant of a scalar (or splat vector) llvm type."""
        elt = typ.element_type if isinstance(typ, VectorType) else typ
        if isinstance(typ, VectorType):
            dense = DenseIntOrFPElementsAttr.from_list(typ, [value] * typ.element_count())
            return self.emit(llvm.ConstantOp(dense, typ))
        if isinstance(elt, AnyFloat):
            return self.emit(llvm.ConstantOp(FloatAttr(float(value), elt), typ))
        assert isinstance(elt, IntegerType)
        return self.emit(llvm.ConstantOp(IntegerAttr(int(value), elt, truncate_bits=True), typ))

    def intrinsic(self, name: str, args: Sequence[SSAValue], result: Attribute | None) -> SSAValue:
        """A call of an LLVM intrinsic (``llvm.call_intrinsic``), e.g. ``llvm.smax.i32``."""
        return self.emit(llvm.CallIntrinsicOp(name, list(args), [result] if result is not None else []))

    def finish(self, rewriter: PatternRewriter, values: Sequence[SSAValue]) -> None:
        """Replace the op by the collected ops; results whose type changed are cast back for
        users that are not converted yet."""
        results: list[SSAValue] = []
        for old, new in zip(self.op.results, values, strict=True):
            if new.type != old.type:
                back = UnrealizedConversionCastOp.get([new], [old.type])
                self.new_ops.append(back)
                new = back.results[0]
            results.append(new)
        rewriter.replace(self.op, self.new_ops, results)


Handler = Callable[[Lowering], Sequence[SSAValue] | None]


@dataclass
class TableLowering(RewritePattern):
    """Rewrites every op whose name is in ``handlers``; a handler returns the values that
    replace the op's results (None for ops without results)."""

    handlers: Mapping[str, Handler]
    converter: LLVMTypeConverter

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        handler = self.handlers.get(op.name)
        if handler is None:
            return
        lowering = Lowering(op, self.converter)
        values = handler(lowering)
        lowering.finish(rewriter, list(values or ()))


# -- small builders shared by the handlers -------------------------------------------------


def function_of(op: Operation) -> Operation | None:
    """The `gpu.func` / `llvm.func` / `func.func` around ``op``."""
    parent = op.parent_op()
    while parent is not None and not (isinstance(parent, gpu.FuncOp | llvm.FuncOp) or parent.name == "func.func"):
        parent = parent.parent_op()
    return parent


def dense_i32(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i32, list(values))


def entry_block(op: Operation) -> Block:
    """The entry block of the function around ``op``."""
    parent = function_of(op)
    if parent is None:
        raise unsupported(op, "it is not inside a function")
    block = parent.regions[0].blocks.first
    assert block is not None
    return block


def symbol_table_of(op: Operation) -> Block:
    """The block of the nearest enclosing module (`gpu.module` or `builtin.module`)."""
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, gpu.ModuleOp | ModuleOp):
        parent = parent.parent_op()
    if parent is None:
        raise unsupported(op, "it is not inside a module")
    block = parent.regions[0].blocks.first
    assert block is not None
    return block


def symbol_name(op: Operation) -> str | None:
    """The `sym_name` of an op (a property on llvm ops, an attribute on gpu.func)."""
    name = op.properties.get("sym_name")
    if name is None:
        name = op.attributes.get("sym_name")
    return name.data if isinstance(name, StringAttr) else None


def symbols(block: Block) -> Iterator[str]:
    """The symbol names defined in a module body."""
    for op in block.ops:
        name = symbol_name(op)
        if name is not None:
            yield name


__all__ = [
    "LLVMTypeConverter",
    "Lowering",
    "TableLowering",
    "Handler",
    "apply_lowering",
    "byte_size",
    "cast_to",
    "constant_int",
    "dense_i32",
    "entry_block",
    "function_of",
    "gpu_modules",
    "kernel_label",
    "memory_space",
    "pointer_type",
    "intrinsic_suffix",
    "reconcile_casts",
    "retype_block_argument",
    "symbol_name",
    "symbol_table_of",
    "symbols",
    "unsupported",
]
