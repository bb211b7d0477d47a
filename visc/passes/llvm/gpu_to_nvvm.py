"""`convert-gpu-to-nvvm`: `gpu.func` kernels -> `llvm.func` with NVVM annotations, and the
gpu ops in their bodies -> NVVM intrinsics.

* ``gpu.func @k(memref...) kernel`` -> ``llvm.func @k(!llvm.ptr {llvm.noalias}, ...)`` with
  ``nvvm.kernel`` and ``nvvm.reqntid = array<i32: x, y, z>`` (from
  ``gpu.known_block_size``). The PTX target turns these into the ``ptx_kernel`` calling
  convention and ``.reqntid``. Pointer arguments are ``noalias`` (the OpenCL backend's
  ``restrict``) unless a launch passes one buffer, or two views of it, both as an argument
  the kernel writes and as another argument.
* ``gpu.thread_id/block_id/block_dim/grid_dim`` -> ``llvm.nvvm.read.ptx.sreg.{tid,ctaid,
  ntid,nctaid}.{x,y,z}``; ``gpu.global_id`` -> ``ctaid * ntid + tid``; ``gpu.lane_id``,
  ``gpu.subgroup_size`` -> ``laneid``, ``warpsize``;
* ``gpu.barrier`` -> ``llvm.nvvm.barrier0`` (``bar.sync 0``); ``gpu.return`` -> ``llvm.return``.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import gpu, llvm
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    ModuleOp,
    UnitAttr,
    i32,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    RewritePattern,
    op_type_rewrite_pattern,
)

from visc.passes.llvm.arith_to_llvm import check_converted
from visc.passes.llvm.conversion import (
    Handler,
    LLVMTypeConverter,
    Lowering,
    TableLowering,
    apply_lowering,
    retype_block_argument,
    unsupported,
)

_SREG = {"gpu.thread_id": "tid", "gpu.block_id": "ctaid", "gpu.block_dim": "ntid", "gpu.grid_dim": "nctaid"}


def _dimension(op: Operation) -> str:
    return str(op.properties["dimension"].data)  # type: ignore[attr-defined]


def _sreg(c: Lowering, name: str) -> SSAValue:
    value = c.intrinsic(f"llvm.nvvm.read.ptx.sreg.{name}", [], i32)
    if c.index != i32:
        value = c.emit(llvm.ZExtOp(value, c.index))
    return value


def _special_register(kind: str) -> Handler:
    def handle(c: Lowering) -> list[SSAValue]:
        return [_sreg(c, f"{kind}.{_dimension(c.op)}")]

    return handle


def _global_id(c: Lowering) -> list[SSAValue]:
    dim = _dimension(c.op)
    block = c.emit(llvm.MulOp(_sreg(c, f"ctaid.{dim}"), _sreg(c, f"ntid.{dim}")))
    return [c.emit(llvm.AddOp(block, _sreg(c, f"tid.{dim}")))]


def _barrier(c: Lowering) -> None:
    c.add(llvm.CallIntrinsicOp("llvm.nvvm.barrier0", [], []))


def _return(c: Lowering) -> None:
    if c.op.operands:
        raise unsupported(c.op, "kernels return nothing")
    c.add(llvm.ReturnOp())


GPU_HANDLERS: dict[str, Handler] = {
    **{name: _special_register(kind) for name, kind in _SREG.items()},
    "gpu.global_id": _global_id,
    "gpu.lane_id": lambda c: [_sreg(c, "laneid")],
    "gpu.subgroup_size": lambda c: [_sreg(c, "warpsize")],
    "gpu.barrier": _barrier,
    "gpu.return": _return,
}


def _root(value: SSAValue) -> SSAValue:
    """The host buffer a value views (through `vision.reshape` views)."""
    while isinstance(value.owner, Operation) and value.owner.name == "vision.reshape":
        value = value.owner.operands[0]
    return value


def _written_arguments(fn: gpu.FuncOp) -> set[int]:
    """Indices of the kernel arguments stored to (directly or through a pointer offset)."""
    entry = fn.body.blocks.first
    args = list(entry.args) if entry is not None else []
    written: set[int] = set()
    for op in fn.walk():
        if op.name in ("memref.store", "vector.store"):
            target = op.operands[1]
        elif isinstance(op, llvm.StoreOp):
            target = op.ptr
        else:
            continue
        while isinstance(target.owner, Operation) and target.owner.name in (
                "llvm.getelementptr", "builtin.unrealized_conversion_cast"):
            target = target.owner.operands[0]
        if target in args:
            written.add(args.index(target))
    return written


def launch_operands(module: Operation) -> dict[str, list[list[SSAValue]]]:
    """Kernel name -> the operand lists of its `gpu.launch_func` ops in ``module``."""
    found: dict[str, list[list[SSAValue]]] = {}
    for op in module.walk():
        if isinstance(op, gpu.LaunchFuncOp) and op.kernel.nested_references.data:
            found.setdefault(op.kernel.nested_references.data[-1].data, []).append(list(op.kernelOperands))
    return found


def may_alias(fn: gpu.FuncOp, launches: list[list[SSAValue]], written: set[int] | None = None) -> bool:
    """Whether one of ``launches`` passes the buffer of an argument the kernel writes as
    another argument too (``written``: those arguments' indices, if the caller knows them)."""
    if written is None:
        written = _written_arguments(fn)
    if not written:
        return False
    for operands in launches:
        roots = [_root(v) for v in operands]
        for i in written:
            if any(j != i and roots[j] == roots[i] for j in range(len(roots))):
                return True
    return False


@dataclass
class KernelToLLVMFunc(RewritePattern):
    """`gpu.func` -> `llvm.func`, keeping its body; entry arguments take pointer types."""

    converter: LLVMTypeConverter
    launches: dict[str, list[list[SSAValue]]]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: gpu.FuncOp, rewriter: PatternRewriter, /) -> None:
        inputs = [self.converter.convert(t) for t in op.function_type.inputs.data]
        if op.function_type.outputs.data:
            raise unsupported(op, "kernels return nothing")
        noalias = not may_alias(op, self.launches.get(op.sym_name.data, []))
        arg_attrs: list[Attribute] = [
            DictionaryAttr({"llvm.noalias": UnitAttr()} if noalias and isinstance(t, llvm.LLVMPointerType) else {})
            for t in inputs]
        attrs: dict[str, Attribute] = {}
        if op.kernel is not None:
            attrs["nvvm.kernel"] = UnitAttr()
            if op.known_block_size is not None:
                sizes = [int(s) for s in op.known_block_size.get_values()]
                attrs["nvvm.reqntid"] = DenseArrayBase.from_list(i32, (sizes + [1, 1])[:3])
        body = op.detach_region(op.body)
        entry = body.blocks.first
        assert entry is not None
        for arg, typ in zip(list(entry.args), inputs, strict=True):
            retype_block_argument(arg, typ)
        fn = llvm.FuncOp(op.sym_name.data, llvm.LLVMFunctionType(inputs, llvm.LLVMVoidType()),
                         linkage=llvm.LinkageAttr("external"), body=body,
                         other_props={"arg_attrs": ArrayAttr(arg_attrs)}, extra_attrs=attrs)
        rewriter.replace(op, fn, [])


@dataclass(frozen=True)
class ConvertGpuToNVVMPass(ModulePass):
    """Turn every kernel of every `gpu.module` into an NVVM-annotated `llvm.func`."""

    name = "convert-gpu-to-nvvm"

    index_bitwidth: int = 32

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        converter = LLVMTypeConverter(self.index_bitwidth)
        pattern = GreedyRewritePatternApplier([KernelToLLVMFunc(converter, launch_operands(op)),
                                               TableLowering(GPU_HANDLERS, converter)])
        apply_lowering(op, pattern)
        check_converted(op, ("gpu.",), lambda o: not isinstance(o, gpu.ModuleOp))


__all__ = ["ConvertGpuToNVVMPass", "KernelToLLVMFunc", "GPU_HANDLERS", "may_alias", "launch_operands"]
