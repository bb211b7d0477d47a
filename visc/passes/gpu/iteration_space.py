"""Reading a stage-4 `scf.parallel` iteration space and re-deriving its indices from
GPU ids. Kept apart from the pass so a later block/thread tiling can reuse both halves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IndexType, IntegerAttr, StringAttr
from xdsl.ir import Block, Operation, SSAValue

from visc.errors import CompileError


def describe_loop(op: Operation) -> str:
    """How an error names a loop: its kernel name and the ONNX node it came from."""
    parts = []
    name = op.attributes.get("kernel_name")
    if isinstance(name, StringAttr):
        parts.append(f"kernel '{name.data}'")
    node = op.attributes.get("onnx_node")
    if isinstance(node, StringAttr):
        parts.append(f"ONNX node '{node.data}'")
    return f"scf.parallel ({', '.join(parts)})" if parts else "scf.parallel"


def constant_index(value: SSAValue) -> int | None:
    """The integer of an `arith.constant`, or None when the value is not one."""
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return int(owner.value.value.data)
    return None


@dataclass(frozen=True)
class IterationSpace:
    """The static extents of an `scf.parallel` whose bounds are `0 .. ub step 1`."""

    extents: tuple[int, ...]

    @property
    def total(self) -> int:
        return math.prod(self.extents)

    @staticmethod
    def of(loop: scf.ParallelOp) -> IterationSpace:
        where = describe_loop(loop)
        if loop.initVals:
            raise CompileError(f"{where}: reductions through scf.parallel results are not supported; "
                               "accumulate with scf.for iter_args inside the loop")
        extents: list[int] = []
        for dim, (lb, ub, step) in enumerate(zip(loop.lowerBound, loop.upperBound, loop.step, strict=True)):
            lo, hi, st = constant_index(lb), constant_index(ub), constant_index(step)
            if lo != 0 or st != 1:
                raise CompileError(f"{where}: dimension {dim} must run from 0 with step 1 "
                                   f"(got lower bound {lo if lo is not None else 'dynamic'}, "
                                   f"step {st if st is not None else 'dynamic'})")
            if hi is None or hi < 0:
                raise CompileError(f"{where}: dimension {dim} needs a constant, non-negative upper bound")
            extents.append(hi)
        return IterationSpace(tuple(extents))


def _const(block: Block, value: int) -> SSAValue:
    op = arith.ConstantOp(IntegerAttr(value, IndexType()))
    op.result.name_hint = f"c{value}"
    block.add_op(op)
    return op.result


def delinearize(block: Block, flat: SSAValue, extents: Sequence[int], names: Sequence[str | None]) -> list[SSAValue]:
    """Split a row-major flat index (last dimension fastest) into one index per extent,
    appending the arithmetic to ``block``. ``flat`` must lie in ``[0, prod(extents))``."""
    indices: list[SSAValue | None] = [None] * len(extents)
    rest = flat
    # the outermost dimension with more than one value takes whatever is left
    outer = next((d for d, n in enumerate(extents) if n != 1), None)
    zero: SSAValue | None = None
    for dim in reversed(range(len(extents))):
        n = extents[dim]
        if n == 1:
            if zero is None:
                zero = _const(block, 0)
            indices[dim] = zero
            continue
        if dim == outer:
            indices[dim] = rest
            continue
        size = _const(block, n)
        rem = arith.RemUIOp(rest, size)
        div = arith.DivUIOp(rest, size)
        block.add_ops([rem, div])
        indices[dim] = rem.result
        rest = div.result
    for value, name in zip(indices, names, strict=True):
        assert value is not None
        if name and value.name_hint is None:
            value.name_hint = name
    return [v for v in indices if v is not None]
