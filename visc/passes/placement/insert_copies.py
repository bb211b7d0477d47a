"""`vision-insert-copies`: make every change of device explicit, one copy per value and device.

For each compute op, the operands produced on the other device (looking through views; graph
inputs and weights live on both sides) are listed in ``copy_in = array<i64: operand indices>``,
but only at their first reader on that device: later readers there reuse the copy. The entry
function's ``vision.num_copies`` is the total; the mixed runtime makes these copies plus the
uploads of graph inputs (it copies a buffer only when the reading device lacks its latest bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, i64
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass

from visc.dialects.vision import VisionOp
from visc.errors import CompileError
from visc.passes.placement.placement import compute_ops, entry, placement_of, source_op


@dataclass(frozen=True)
class VisionInsertCopiesPass(ModulePass):
    name = "vision-insert-copies"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fn = entry(op)
        copied: set[tuple[SSAValue, str]] = set()
        total = 0
        for vop in compute_ops(fn):
            here = placement_of(vop)
            if here is None:
                node = vop.attributes.get("onnx_node")
                raise CompileError(f"vision-insert-copies: {vop.name}{f' (ONNX node {node})' if node else ''} "
                                   "has no placement (run vision-placement first)")
            indices = []
            for i, value in enumerate(vop.operands):
                producer = source_op(value)
                if producer is None or placement_of(producer) == here:
                    continue
                key = (_through_views(value), here)
                if key in copied:
                    continue
                copied.add(key)
                indices.append(i)
            if indices:
                vop.attributes["copy_in"] = DenseArrayBase.from_list(i64, indices)
                total += len(indices)
            elif "copy_in" in vop.attributes:
                del vop.attributes["copy_in"]
        fn.attributes["vision.num_copies"] = IntegerAttr(total, i64)


def _through_views(value: SSAValue) -> SSAValue:
    """The value a (chain of) view(s) shows: copies are per underlying tensor."""
    while isinstance(value.owner, VisionOp) and value.owner.IS_VIEW:
        value = value.owner.operands[0]
    return value


__all__ = ["VisionInsertCopiesPass"]
