"""`vision-concat-in-place`: producers write straight into their slab of a concat's output.

A channel concat of a batch-1 NCHW tensor (any concat whose dims before the axis are all 1)
puts each input in one contiguous byte range of the output. Such an input's `vision.buffer`
becomes a `vision.subbuffer` of the output at that range, so its producer writes the final
place and the concat copies nothing; a concat left with no input to copy is erased. This is
the copy SqueezeNet's fire modules and DenseNet's blocks otherwise pay on every layer.

An input is placed in its slab only when that is invisible to every other op:
- it is a `vision.buffer` (not a graph input, a weight, a view, or an output argument), it is
  not written after the concat, and the concat reads it once;
- the concat's output is a `vision.buffer` that nothing touches before the concat;
- the slab's byte offset is a multiple of ``align``: kernels assume buffers start 128-byte
  aligned (vector accesses), and OpenCL sub-buffers need the device's base alignment.

Modules with placement (a mixed CPU/GPU plan) are left alone: the mixed runtime tracks which
side holds each buffer's bytes, and a slab written on one side would hide from that.
Runs on bufferized IR and plans the arena again, as the buffers' lifetimes changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, MemRefType, ModuleOp, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from visc.dialects.vision import BufferOp, ConcatOp, SubBufferOp, VisionOp, get_int, shape_of
from visc.errors import CompileError
from visc.passes.graph.helpers import byte_size
from visc.passes.graph.memory_plan import ARENA_ALIGN, assign_offsets

IN_PLACE_ATTR = "in_place"
"""On a concat some of whose inputs are already in their slab: their indices (not copied)."""

SLAB_ALIGN = 128
"""Default byte alignment of a slab: what the kernels' vector accesses assume of a buffer."""


def _is_placed(fn: func.FuncOp) -> bool:
    return any("placement" in op.attributes for op in fn.body.walk())


def _writes_after(value: SSAValue, index: int, position: dict[Operation, int]) -> bool:
    for use in value.uses:
        op = use.operation
        if isinstance(op, VisionOp) and value in op.outs and position.get(op, -1) > index:
            return True
    return False


def _touched_before(value: SSAValue, index: int, position: dict[Operation, int]) -> bool:
    return any(position.get(use.operation, index) < index for use in value.uses)


class _ConcatInPlace:
    def __init__(self, fn: func.FuncOp, align: int):
        self.fn = fn
        self.align = align
        self.placed = 0

    def run(self) -> int:
        for concat in [op for op in self.fn.body.block.ops if isinstance(op, ConcatOp)]:
            self._concat(concat)
        return self.placed

    def _concat(self, concat: ConcatOp) -> None:
        block = self.fn.body.block
        position = {op: i for i, op in enumerate(block.ops)}
        here = position[concat]
        out = concat.outs[0] if len(concat.outs) == 1 else None
        if out is None or not isinstance(out.owner, BufferOp) or not isinstance(out.type, MemRefType):
            return
        shape = shape_of(out)
        axis = get_int(concat, "axis") % len(shape) if shape else 0
        if any(d != 1 for d in shape[:axis]) or _touched_before(out, here, position):
            return
        row = byte_size(out.type) // shape[axis] if shape[axis] else 0  # bytes per index of the axis
        offset = 0
        slabs: list[tuple[int, BufferOp, int]] = []  # (input index, its buffer, byte offset)
        for q, src in enumerate(concat.ins):
            start, offset = offset, offset + shape_of(src)[axis] * row
            owner = src.owner
            if (not isinstance(owner, BufferOp) or start % self.align or list(concat.ins).count(src) != 1
                    or src.type != MemRefType(out.type.element_type, list(shape_of(src)))
                    or _writes_after(src, here, position)):
                continue
            slabs.append((q, owner, start))
        if not slabs:
            return
        parent = out.owner
        assert isinstance(parent, BufferOp)
        first = min((buf for _, buf, _ in slabs), key=lambda b: position[b])
        if position[first] < position[parent]:
            parent.detach()
            block.insert_op_before(parent, first)
        for _, buf, start in slabs:
            view = SubBufferOp(parent.result, start, buf.result.type)
            view.attributes.update(buf.attributes)
            view.result.name_hint = buf.result.name_hint
            block.insert_op_before(view, buf)
            buf.result.replace_all_uses_with(view.result)
            buf.detach()
            buf.erase()
        self.placed += len(slabs)
        if len(slabs) == len(concat.ins):
            concat.detach()
            concat.erase(safe_erase=False)
        else:
            concat.attributes[IN_PLACE_ATTR] = ArrayAttr([IntegerAttr(q, i64) for q, _, _ in slabs])


def concat_in_place(fn: func.FuncOp, align: int = SLAB_ALIGN, arena_align: int = ARENA_ALIGN) -> int:
    """Places what concat inputs it can in their slabs and plans the arena again; returns how
    many inputs it placed."""
    if _is_placed(fn) or len(fn.body.blocks) != 1:
        return 0
    placed = _ConcatInPlace(fn, align).run()
    if placed:
        assign_offsets(fn, arena_align)
    return placed


def in_place_inputs(op: VisionOp) -> frozenset[int]:
    """Indices of a concat's inputs that already sit in their slab (nothing to copy)."""
    attr = op.attributes.get(IN_PLACE_ATTR)
    if attr is None:
        return frozenset()
    if not isinstance(attr, ArrayAttr) or not all(isinstance(a, IntegerAttr) for a in attr.data):
        raise CompileError(f"{op.name}: '{IN_PLACE_ATTR}' must be an array of input indices")
    return frozenset(int(a.value.data) for a in attr.data)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ConcatInPlacePass(ModulePass):
    """Options: ``align``, the byte alignment every slab must have (the OpenCL device's base
    address alignment when it exceeds the default)."""

    name = "vision-concat-in-place"

    align: int = SLAB_ALIGN

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.align <= 0:
            raise CompileError(f"vision-concat-in-place: align must be positive, got {self.align}")
        for fn in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            if fn.body.blocks and "vision.num_inputs" in fn.attributes:
                concat_in_place(fn, self.align)


__all__ = ["ConcatInPlacePass", "concat_in_place", "in_place_inputs", "IN_PLACE_ATTR", "SLAB_ALIGN"]
