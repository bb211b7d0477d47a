"""The llvm dialect -> llvmlite IR (`llvmlite.ir.Module`), for the PTX backend and any
later llvmlite-based target.

Ops are translated by xDSL's own converter (`xdsl.backend.llvm.convert_op`); this module
adds what that converter lacks for GPU code: `getelementptr` on pointers outside address
space 0 (xDSL casts every GEP base to a generic pointer, which LLVM rejects for shared
memory), opaque pointers to globals (llvmlite types them by their contents), globals without initializer (undef, as MLIR translates them), argument
attributes, and linkage.
"""

from __future__ import annotations

from collections.abc import Iterable

import llvmlite.ir as ir
from xdsl.backend.llvm.convert_op import convert_op, create_constant
from xdsl.backend.llvm.convert_type import convert_type
from xdsl.dialects import llvm
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, IntegerAttr, StringAttr
from xdsl.ir import Block, Operation, SSAValue

from visc.errors import CompileError

# llvm-dialect argument attributes -> llvmlite's flag names
_ARG_FLAGS = {"llvm.noalias": "noalias", "llvm.nocapture": "nocapture", "llvm.nonnull": "nonnull",
              "llvm.noundef": "noundef", "llvm.readonly": "readonly", "llvm.writeonly": "writeonly"}


def _declare(fn: llvm.FuncOp, module: ir.Module) -> ir.Function:
    ftype = fn.function_type
    result = ir.VoidType() if isinstance(ftype.output, llvm.LLVMVoidType) else convert_type(ftype.output)
    func = ir.Function(module, ir.FunctionType(result, [convert_type(t) for t in ftype.inputs.data]),
                       name=fn.sym_name.data)
    linkage = fn.linkage.linkage.data
    if linkage != "external":
        func.linkage = linkage
    if isinstance(fn.arg_attrs, ArrayAttr):
        for arg, attrs in zip(func.args, fn.arg_attrs.data, strict=False):
            if not isinstance(attrs, DictionaryAttr):
                continue
            for key, value in attrs.data.items():
                if key in _ARG_FLAGS:
                    arg.add_attribute(_ARG_FLAGS[key])
                elif key == "llvm.align" and isinstance(value, IntegerAttr):
                    arg.attributes.align = int(value.value.data)
    return func


def _gep(op: llvm.GEPOp, builder: ir.IRBuilder, values: dict[SSAValue, ir.Value]) -> None:
    dynamic = iter(op.ssa_indices)
    indices = [values[next(dynamic)] if i == llvm.GEP_USE_SSA_VAL else ir.Constant(ir.IntType(32), i)
               for i in op.rawConstantIndices.iter_values()]
    values[op.result] = builder.gep(values[op.ptr], indices, inbounds=op.inbounds is not None,
                                    source_etype=convert_type(op.elem_type))


def _address_of(op: llvm.AddressOfOp, builder: ir.IRBuilder, values: dict[SSAValue, ir.Value]) -> None:
    # llvmlite types a global as a pointer to its value type; later GEPs and stores expect
    # the opaque pointer the llvm dialect has
    var = builder.module.get_global(op.global_name.root_reference.data)
    cast = ir.instructions.CastInstr(builder.block, "bitcast", var, ir.PointerType(addrspace=var.type.addrspace))
    builder._insert(cast)  # IRBuilder.bitcast would see equal pointer types and return `var`
    values[op.result] = cast


def _alloca(op: llvm.AllocaOp, builder: ir.IRBuilder, values: dict[SSAValue, ir.Value]) -> None:
    # llvmlite types an alloca by its contents; a store at offset 0 (no GEP) of an array
    # alloca needs the opaque pointer the llvm dialect has
    convert_op(op, builder, values, {})
    alloca = values[op.results[0]]
    cast = ir.instructions.CastInstr(builder.block, "bitcast", alloca, ir.PointerType(addrspace=alloca.type.addrspace))
    builder._insert(cast)
    values[op.results[0]] = cast


def _define(fn: llvm.FuncOp, func: ir.Function) -> None:
    blocks: dict[Block, ir.Block] = {}
    values: dict[SSAValue, ir.Value] = {}
    for i, block in enumerate(fn.body.blocks):
        blocks[block] = func.append_basic_block(name=block.name_hint or f"bb{i}")
    entry = fn.body.blocks.first
    assert entry is not None
    for arg, value in zip(entry.args, func.args, strict=True):
        values[arg] = value
    for block in list(fn.body.blocks)[1:]:
        builder = ir.IRBuilder(blocks[block])
        for arg in block.args:
            values[arg] = builder.phi(convert_type(arg.type))
    for block in fn.body.blocks:
        builder = ir.IRBuilder(blocks[block])
        if blocks[block].instructions:
            builder.position_after(blocks[block].instructions[-1])
        for op in block.ops:
            try:
                if isinstance(op, llvm.GEPOp):
                    _gep(op, builder, values)
                elif isinstance(op, llvm.AddressOfOp):
                    _address_of(op, builder, values)
                elif isinstance(op, llvm.AllocaOp):
                    _alloca(op, builder, values)
                else:
                    convert_op(op, builder, values, blocks)
            except (NotImplementedError, KeyError, TypeError, ValueError) as e:
                raise CompileError(f"function '{fn.sym_name.data}': cannot translate {op.name} to LLVM IR ({e})") from e


def _global(op: llvm.GlobalOp, module: ir.Module) -> None:
    typ = convert_type(op.global_type)
    var = ir.GlobalVariable(module, typ, name=op.sym_name.data, addrspace=int(op.addr_space.value.data))
    linkage = op.linkage.linkage.data
    if linkage != "external":
        var.linkage = linkage
    if op.constant is not None:
        var.global_constant = True
    if op.alignment is not None:
        var.align = int(op.alignment.value.data)
    if isinstance(op.value, StringAttr):
        raw = op.value.data.encode()
        var.initializer = ir.Constant(ir.ArrayType(ir.IntType(8), len(raw)), bytearray(raw))
    elif op.value is not None:
        var.initializer = create_constant(op.global_type, op.value)
    elif linkage != "external":
        var.initializer = ir.Constant(typ, ir.Undefined)


def translate(ops: Iterable[Operation], triple: str, data_layout: str = "") -> ir.Module:
    """An llvmlite module holding the `llvm.func` / `llvm.mlir.global` ops ``ops``."""
    module = ir.Module()
    module.triple = triple
    if data_layout:
        module.data_layout = data_layout
    ops = list(ops)
    funcs: list[tuple[llvm.FuncOp, ir.Function]] = []
    for op in ops:
        if isinstance(op, llvm.GlobalOp):
            _global(op, module)
    for op in ops:
        if isinstance(op, llvm.FuncOp):
            funcs.append((op, _declare(op, module)))
        elif not isinstance(op, llvm.GlobalOp):
            raise CompileError(f"cannot translate {op.name} to LLVM IR: only llvm.func and llvm.mlir.global "
                               "may appear at module level (run the lowering to the llvm dialect first)")
    for op, func in funcs:
        if op.body.blocks:
            _define(op, func)
    return module


__all__ = ["translate"]
