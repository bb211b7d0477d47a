"""`convert-memref-to-llvm`: statically shaped memrefs -> opaque pointers.

A memref value becomes the pointer to its first element (`!llvm.ptr` in its memory space);
shapes and strides are static, so an access linearizes its indices at compile time
(constants folded, `nsw` index arithmetic) into one `getelementptr inbounds`. Elements of
type `i1` are bytes in memory, as in the OpenCL backend. `memref.alloca`:

* private (any memory space but 3) -> an `llvm.alloca` of an array, hoisted to the entry
  block of the function so LLVM promotes it to registers;
* workgroup (memory space 3) -> an internal `llvm.mlir.global` in address space 3 of the
  enclosing module, shared by the work-group (CUDA `__shared__`), read via `addressof`.

`vector.load`/`vector.store` are the same accesses with a vector type, aligned to one
element only (the schedule guarantees contiguity, not vector alignment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import llvm
from xdsl.dialects.builtin import IntegerAttr, IntegerType, MemRefType, ModuleOp, VectorType, i64
from xdsl.ir import Attribute, SSAValue
from xdsl.passes import ModulePass

from visc.backends.c_emitter import memref_strides
from visc.errors import CompileError
from visc.passes.llvm.arith_to_llvm import check_converted
from visc.passes.llvm.conversion import (
    Handler,
    LLVMTypeConverter,
    Lowering,
    TableLowering,
    apply_lowering,
    byte_size,
    constant_int,
    entry_block,
    function_of,
    memory_space,
    pointer_type,
    symbol_name,
    symbol_table_of,
    symbols,
    unsupported,
)

SHARED_ALIGNMENT = 16
_NSW = llvm.OverflowAttr((llvm.OverflowFlag.NO_SIGNED_WRAP,))


def _memref_type(c: Lowering, value: SSAValue) -> MemRefType:
    typ = value.type
    if not isinstance(typ, MemRefType):
        raise unsupported(c.op, f"expected a memref operand, got {value.type}")
    try:
        memref_strides(typ)
    except CompileError as e:
        raise unsupported(c.op, str(e)) from None
    return typ


def element_pointer(c: Lowering, mem: SSAValue, indices: list[SSAValue], element: Attribute) -> SSAValue:
    """The address of ``mem[indices]`` for an element of (storage) type ``element``."""
    typ = _memref_type(c, mem)
    strides, offset = memref_strides(typ)
    size = max(1, math.prod(typ.get_shape()))
    limit = 1 << (c.converter.index_bitwidth - 1)
    if size + offset >= limit:
        raise unsupported(c.op, f"{typ} has more elements than {c.converter.index_bitwidth}-bit indices "
                          "address (lower with a wider index-bitwidth)")
    base = c.value(mem)
    const = offset
    terms: list[SSAValue] = []
    for idx, stride in zip(indices, strides, strict=True):
        known = constant_int(idx)
        if known is not None:
            const += known * stride
            continue
        if stride == 0:
            continue
        term = c.value(idx)
        if stride != 1:
            term = c.emit(llvm.MulOp(term, c.const(stride, c.index), overflow=_NSW))
        terms.append(term)
    if const:
        terms.append(c.const(const, c.index))
    if not terms:
        return base
    linear = terms[0]
    for term in terms[1:]:
        linear = c.emit(llvm.AddOp(linear, term, overflow=_NSW))
    return c.emit(llvm.GEPOp(base, [llvm.GEP_USE_SSA_VAL], element, ssa_indices=[linear],
                             result_type=base.type, inbounds=True))  # type: ignore[arg-type]


def _is_i1(typ: Attribute) -> bool:
    return isinstance(typ, IntegerType) and typ.width.data == 1


def _load(c: Lowering) -> list[SSAValue]:
    mem, *idx = c.op.operands
    result = c.result_type()
    storage = c.converter.storage(result)
    ptr = element_pointer(c, mem, list(idx), storage)
    value = c.emit(llvm.LoadOp(ptr, storage, alignment=byte_size(storage)))
    if _is_i1(result):
        zero = c.const(0, storage)
        value = c.emit(llvm.ICmpOp(value, zero, IntegerAttr(llvm.ICmpPredicateFlag("ne").to_int(), i64)))
    return [value]


def _store(c: Lowering) -> None:
    value, mem, *idx = c.op.operands
    converted = c.value(value)
    storage = c.converter.storage(converted.type)
    if _is_i1(converted.type):
        converted = c.emit(llvm.ZExtOp(converted, storage))
    ptr = element_pointer(c, mem, list(idx), storage)
    c.add(llvm.StoreOp(converted, ptr, alignment=byte_size(storage)))


def _vector_load(c: Lowering) -> list[SSAValue]:
    mem, *idx = c.op.operands
    typ = c.result_type()
    assert isinstance(typ, VectorType)
    if _is_i1(typ.element_type):
        raise unsupported(c.op, "vectors of i1 are not supported")
    ptr = element_pointer(c, mem, list(idx), typ.element_type)
    return [c.emit(llvm.LoadOp(ptr, typ, alignment=byte_size(typ.element_type)))]


def _vector_store(c: Lowering) -> None:
    value, mem, *idx = c.op.operands
    converted = c.value(value)
    typ = converted.type
    assert isinstance(typ, VectorType)
    if _is_i1(typ.element_type):
        raise unsupported(c.op, "vectors of i1 are not supported")
    ptr = element_pointer(c, mem, list(idx), typ.element_type)
    c.add(llvm.StoreOp(converted, ptr, alignment=byte_size(typ.element_type)))


def _alloca(c: Lowering) -> list[SSAValue]:
    op = c.op
    typ = op.results[0].type
    assert isinstance(typ, MemRefType)
    if op.operands:
        raise unsupported(op, "dynamic sizes are not supported")
    memref_strides(typ)
    storage = c.converter.storage(typ.element_type)
    array = llvm.LLVMArrayType(max(1, math.prod(typ.get_shape())), storage)
    if memory_space(typ) == 3:
        return [_shared_array(c, array)]
    # private: an alloca at the top of the entry block (LLVM promotes those to registers)
    block = entry_block(op)
    one = llvm.ConstantOp(IntegerAttr(1, IntegerType(32)), IntegerType(32))
    alloca = llvm.AllocaOp(one, array, alignment=max(byte_size(storage), 4))
    if block.first_op is None:
        block.add_ops([one, alloca])
    else:
        block.insert_ops_before([one, alloca], block.first_op)
    return [alloca.res]


def _shared_array(c: Lowering, array: llvm.LLVMArrayType) -> SSAValue:
    table = symbol_table_of(c.op)
    fn = function_of(c.op)
    owner = symbol_name(fn) if fn is not None else None
    stem = f"__shared_{owner}" if owner else "__shared"
    taken = set(symbols(table))
    n = 0
    while f"{stem}_{n}" in taken:
        n += 1
    name = f"{stem}_{n}"
    glob = llvm.GlobalOp(array, name, "internal", addr_space=3, alignment=SHARED_ALIGNMENT)
    if fn is not None and fn.parent_block() is table:
        table.insert_op_before(glob, fn)
    elif table.first_op is not None:
        table.insert_op_before(glob, table.first_op)
    else:
        table.add_op(glob)
    return c.emit(llvm.AddressOfOp(name, pointer_type(3)))


MEMREF_HANDLERS: dict[str, Handler] = {
    "memref.load": _load, "memref.store": _store, "memref.alloca": _alloca,
    "vector.load": _vector_load, "vector.store": _vector_store,
}


@dataclass(frozen=True)
class ConvertMemRefToLLVMPass(ModulePass):
    """Lower memref accesses and allocations of every `gpu.module` to pointers."""

    name = "convert-memref-to-llvm"

    index_bitwidth: int = 32

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_lowering(op, TableLowering(MEMREF_HANDLERS, LLVMTypeConverter(self.index_bitwidth)))
        check_converted(op, ("memref.",))
        check_converted(op, ("vector.load", "vector.store"))


__all__ = ["ConvertMemRefToLLVMPass", "MEMREF_HANDLERS", "element_pointer", "SHARED_ALIGNMENT"]
