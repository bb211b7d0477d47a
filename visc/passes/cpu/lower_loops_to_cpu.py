"""`lower-loops-to-cpu`: stage-4 top-level loops -> host functions over [begin, end) ranges.

A loop over extents (d0, ..., dn) becomes ``gpu.func @k(memrefs..., %begin, %end)`` (no
kernel attribute: a plain host function) that walks the flattened *outer* space
(d0 .. d(n-1), row-major) from begin to end and, inside, the whole innermost dimension as
a counted loop, so LLVM can vectorize it. A 1-D loop's outer space is the loop itself. The
host function launches it with ``blocks in (outer size, 1, 1) threads in (1, 1, 1)``; the
executor calls it on chunks of that range from a thread pool.

Block/thread loops (docs/ir.md, stage 5) run one work-group per outer point: their nested
thread loops become sequential `scf.for` nests, `gpu.barrier` disappears (the phases it
separates already run one after the other), and work-group memory becomes a stack array.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func, gpu, memref, scf
from xdsl.dialects.builtin import (
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    NoneAttr,
    StringAttr,
    SymbolRefAttr,
    UnitAttr,
    VectorType,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from visc.errors import CompileError
from visc.passes.cpu import CPU_KERNEL_MODULE
from visc.passes.gpu.iteration_space import constant_index, describe_loop
from visc.passes.gpu.map_loops_to_gpu import KernelTable, kernel_module

INDEX = IndexType()


def _inside(op: Operation, ancestor: Operation) -> bool:
    while op is not None:
        if op is ancestor:
            return True
        op = op.parent_op()  # type: ignore[assignment]
    return False


def _defined_inside(value: SSAValue, loop: Operation) -> bool:
    if isinstance(value, BlockArgument):
        parent = value.block.parent_op()
        return parent is not None and _inside(parent, loop)
    return _inside(value.owner, loop)  # type: ignore[arg-type]


def _captures(loop: scf.ParallelOp) -> tuple[list[SSAValue], list[arith.ConstantOp]]:
    """Memrefs defined outside the loop (first use order) and outside constants it uses."""
    memrefs: list[SSAValue] = []
    consts: list[arith.ConstantOp] = []
    for op in loop.body.walk():
        for value in op.operands:
            if _defined_inside(value, loop):
                continue
            if isinstance(value.type, MemRefType):
                if value not in memrefs:
                    memrefs.append(value)
            elif isinstance(value.owner, arith.ConstantOp):
                if value.owner not in consts:
                    consts.append(value.owner)
            else:
                raise CompileError(f"{describe_loop(loop)}: the body uses {value.type} value defined outside "
                                   "the loop that is neither a memref nor a constant")
    return memrefs, consts


def _extents(loop: scf.ParallelOp) -> list[int]:
    extents = []
    for lb, ub, step in zip(loop.lowerBound, loop.upperBound, loop.step, strict=True):
        lo, hi, st = constant_index(lb), constant_index(ub), constant_index(step)
        if lo != 0 or st != 1 or hi is None:
            raise CompileError(f"{describe_loop(loop)}: top-level loops need constant bounds 0 .. n step 1 "
                               "(docs/ir.md, stage 4)")
        extents.append(hi)
    return extents


def _index(block: Block, value: int) -> SSAValue:
    op = arith.ConstantOp(IntegerAttr(value, INDEX))
    block.add_op(op)
    return op.result


def _for(block: Block, lb: SSAValue, ub: SSAValue, step: SSAValue) -> tuple[scf.ForOp, Block]:
    body = Block(arg_types=[INDEX])
    loop = scf.ForOp(lb, ub, step, [], Region(body))
    block.add_op(loop)
    return loop, body


def _sequential_threads(fn: gpu.FuncOp) -> None:
    """Nested `scf.parallel` -> `scf.for` nests; barriers dropped; work-group memory private."""
    for op in list(fn.body.walk()):
        if isinstance(op, gpu.BarrierOp):
            op.detach()
            op.erase()
        elif isinstance(op, memref.AllocaOp) and not isinstance(op.memref.type.memory_space, NoneAttr):
            typ = op.memref.type
            private = memref.AllocaOp.get(typ.element_type, shape=typ.get_shape(), alignment=op.alignment)
            Rewriter.replace_op(op, private)
    for op in reversed(list(fn.body.walk())):
        if not isinstance(op, scf.ParallelOp):
            continue
        if op.initVals or op.results:
            raise CompileError(f"{describe_loop(op)}: nested loops with reductions are not supported on the CPU")
        parent = op.parent_block()
        assert parent is not None
        anchor = Block()
        ivs: list[SSAValue] = []
        bodies: list[Block] = []
        current = anchor
        for lb, ub, step in zip(op.lowerBound, op.upperBound, op.step, strict=True):
            _, current = _for(current, lb, ub, step)
            ivs.append(current.args[0])
            bodies.append(current)
        source = op.body.block
        terminator = source.last_op
        assert isinstance(terminator, scf.ReduceOp)
        terminator.detach()
        terminator.erase()
        Rewriter.inline_block(source, InsertPoint.at_end(current), ivs)
        for body in bodies:
            body.add_op(scf.YieldOp())
        outer = anchor.first_op
        assert outer is not None
        outer.detach()
        parent.insert_op_before(outer, op)
        op.detach()
        op.erase()


# a loop whose outer space has fewer points than this, and whose body is already vectorized
# or tiled (it holds vectors or loops of its own), is walked over all its dims: a 1x1 conv
# with 16 output channels in tiles of 8 over one flattened row had 2 range steps, so one
# thread did half the work and the other cores idled (MnasNet's projections, 5x slower)
MIN_OUTER = 64


def explicit_tiles(loop: Operation) -> bool:
    """Whether the loop's body holds vector values or loops (a register tile, a reduction):
    its innermost dimension gains nothing from LLVM's loop vectorizer."""
    for op in loop.walk():
        if op is loop:
            continue
        if isinstance(op, scf.ForOp | scf.WhileOp):
            return True
        if any(isinstance(r.type, VectorType) for r in op.results):
            return True
    return False


def outline(loop: scf.ParallelOp, name: str) -> tuple[gpu.FuncOp, list[SSAValue], int]:
    """The host function of ``loop``, the memrefs to pass it, and its outer range size. The
    body moves into the function (cloning it cost as much as the rest of the pass): erase the
    loop afterwards."""
    extents = _extents(loop)
    if loop.initVals or loop.results:
        raise CompileError(f"{describe_loop(loop)}: top-level loops with reductions are not supported")
    memrefs, consts = _captures(loop)
    block = Block(arg_types=[v.type for v in memrefs] + [INDEX, INDEX])
    begin, end = block.args[-2], block.args[-1]
    mapping: dict[SSAValue, SSAValue] = dict(zip(memrefs, block.args, strict=False))
    for c in consts:
        clone = c.clone()
        block.add_op(clone)
        mapping[c.result] = clone.result
    one = _index(block, 1)
    outer_extents = extents[:-1] if len(extents) > 1 else extents
    if math.prod(outer_extents) < MIN_OUTER and explicit_tiles(loop):
        outer_extents = extents  # too few range steps to share among the threads: all dims are outer
    _, body = _for(block, begin, end, one)
    ivs: list[SSAValue] = []
    flat = body.args[0]
    for k, extent in enumerate(outer_extents):
        stride = math.prod(outer_extents[k + 1:])
        value = flat
        if stride != 1:
            div = arith.DivUIOp(value, _index(body, stride))
            body.add_op(div)
            value = div.result
        if k > 0:
            rem = arith.RemUIOp(value, _index(body, extent))
            body.add_op(rem)
            value = rem.result
        ivs.append(value)
    inner = body
    if len(outer_extents) < len(extents):
        _, inner = _for(body, _index(body, 0), _index(body, extents[-1]), _index(body, 1))
        ivs.append(inner.args[0])
    for op in loop.body.walk():  # the body moves (the loop is erased next), so rebind its captures
        if any(v in mapping for v in op.operands):
            op.operands = tuple(mapping.get(v, v) for v in op.operands)
    for arg, iv in zip(loop.body.block.args, ivs, strict=True):
        arg.replace_all_uses_with(iv)
    for op in list(loop.body.block.ops):
        if isinstance(op, scf.ReduceOp):
            continue
        op.detach()
        inner.add_op(op)
    if inner is not body:
        inner.add_op(scf.YieldOp())
    body.add_op(scf.YieldOp())
    block.add_op(gpu.ReturnOp([]))
    fn = gpu.FuncOp(name, ([v.type for v in memrefs] + [INDEX, INDEX], []), Region(block))
    _sequential_threads(fn)
    return fn, memrefs, math.prod(outer_extents)


def _identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident if ident and not ident[0].isdigit() else f"k_{ident}"


def _placement(op: Operation) -> str | None:
    attr = op.attributes.get("placement")
    return attr.data if isinstance(attr, StringAttr) else None


@dataclass(frozen=True)
class LowerLoopsToCpuPass(ModulePass):
    """Outline top-level loops into host functions of `gpu.module @cpu_kernels`; with
    ``placed_only`` only the loops tagged ``placement = "cpu"`` (a mixed plan, whose other
    loops `map-loops-to-gpu` maps next)."""

    name = "lower-loops-to-cpu"

    placed_only: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        table: KernelTable | None = None
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp) and f.body.blocks]:
            loops = [o for o in fn.body.block.ops if isinstance(o, scf.ParallelOp)
                     and (not self.placed_only or _placement(o) == "cpu")]
            for loop in loops:
                if table is None:
                    table = KernelTable(kernel_module(op, CPU_KERNEL_MODULE))
                kernel_name = loop.attributes.get("kernel_name")
                name = "cpu_" + _identifier(kernel_name.data if isinstance(kernel_name, StringAttr) else "kernel")
                kernel, args, size = outline(loop, name)
                name = table.add(kernel)  # a loop that outlines to an existing function reuses it
                consts = {}
                for value in (size, 1):
                    c = arith.ConstantOp(IntegerAttr(value, INDEX))
                    fn.body.block.insert_op_before(c, loop)
                    consts[value] = c.result
                launch = gpu.LaunchFuncOp(SymbolRefAttr(CPU_KERNEL_MODULE, [name]),
                                          [consts[size], consts[1], consts[1]],
                                          [consts[1], consts[1], consts[1]], kernelOperands=args)
                attrs: dict[str, Attribute] = {k: v for k, v in loop.attributes.items()
                                               if k not in ("kernel_name", "workgroup_size")}
                attrs["placement"] = StringAttr("cpu")
                launch.attributes.update(attrs)
                fn.body.block.insert_op_before(launch, loop)
                loop.detach()
                loop.erase()
            for c in list(fn.body.block.ops):
                if isinstance(c, arith.ConstantOp) and not c.result.uses:
                    c.detach()
                    c.erase()
        if table is not None:
            op.attributes["gpu.container_module"] = UnitAttr()


__all__ = ["LowerLoopsToCpuPass", "explicit_tiles", "outline"]
