"""`convert-cf-to-llvm`: `cf.br` / `cf.cond_br` -> `llvm.br` / `llvm.cond_br`.

Block arguments (loop counters and carried values after `convert-scf-to-cf`) take their
converted types here, so `index` loop variables become `i32` phis."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import cf, llvm
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from visc.passes.llvm.arith_to_llvm import check_converted
from visc.passes.llvm.conversion import (
    Handler,
    LLVMTypeConverter,
    Lowering,
    TableLowering,
    apply_lowering,
    gpu_modules,
    retype_block_argument,
)


def _arguments(c: Lowering, values: tuple[SSAValue, ...] | list[SSAValue], dest: Block) -> list[SSAValue]:
    return [c.value(v, arg.type) for v, arg in zip(values, dest.args, strict=True)]


def _br(c: Lowering) -> None:
    op = c.op
    assert isinstance(op, cf.BranchOp)
    dest = op.successor
    c.add(llvm.BrOp(dest, *_arguments(c, list(op.arguments), dest)))


def _cond_br(c: Lowering) -> None:
    op = c.op
    assert isinstance(op, cf.ConditionalBranchOp)
    then_args = _arguments(c, list(op.then_arguments), op.then_block)
    else_args = _arguments(c, list(op.else_arguments), op.else_block)
    c.add(llvm.CondBrOp(c.value(op.cond), op.then_block, then_args, op.else_block, else_args))


CF_HANDLERS: dict[str, Handler] = {"cf.br": _br, "cf.cond_br": _cond_br}


def convert_block_arguments(fn: Operation, converter: LLVMTypeConverter) -> None:
    """Retype the arguments of every non-entry block of ``fn``'s body."""
    for region in fn.regions:
        for block in list(region.blocks)[1:]:
            for arg in list(block.args):
                retype_block_argument(arg, converter.convert(arg.type))


@dataclass(frozen=True)
class ConvertCfToLLVMPass(ModulePass):
    """Lower the branches of every `gpu.module` to llvm branches with converted block arguments."""

    name = "convert-cf-to-llvm"

    index_bitwidth: int = 32

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        converter = LLVMTypeConverter(self.index_bitwidth)
        for kernels in gpu_modules(op):
            for fn in kernels.body.block.ops:
                convert_block_arguments(fn, converter)
        apply_lowering(op, TableLowering(CF_HANDLERS, converter))
        check_converted(op, ("cf.",))


__all__ = ["ConvertCfToLLVMPass", "CF_HANDLERS", "convert_block_arguments"]
