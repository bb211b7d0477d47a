"""Work-group kernels (docs/ir.md stage 5, block/thread form) and scratch memory for lowerings
of cooperative algorithms: sort, scan, top-k and non-maximum suppression.

`group_kernel` builds a top-level `scf.parallel` whose points are work-groups; inside it a
`GroupBuilder` adds nested thread loops (`threads`), explicit barriers, work-group local
arrays and non-memoized loads. `KernelBuilder.load` reuses identical loads in scope because
ordinary kernels never write what they read; cooperative kernels do (local arrays, scratch,
in-place passes), so they read such memory with `read`, which always loads.

`scratch` gives a lowering global memory of its own beyond the arena that bufferization
planned: a `vision.buffer` past the planned peak, with `vision.arena_size` grown to fit. Ops
run one after another, so the scratch of different ops shares the same bytes.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects import gpu, memref, scf
from xdsl.dialects.builtin import (
    AnyFloat,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    i64,
)
from xdsl.ir import Attribute, Block, Region, SSAValue

from visc.dialects.vision import BufferOp
from visc.passes.lowering.loops import INDEX, FunctionLowering, Idx, KernelBuilder

WORKGROUP_SPACE = IntegerAttr(3, i64)
# Local memory a cooperative kernel may use by default: the OpenCL 1.2 minimum, so kernels
# built for it run on every device (CUDA's static shared memory limit is 48 KiB).
LOCAL_MEMORY_BYTES = 32 * 1024
SCRATCH_ALIGN = 1024  # docs/ir.md ARENA_ALIGN


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def byte_size(elt: Attribute) -> int:
    """Bytes per element in memory (i1 is one byte, index four)."""
    if isinstance(elt, IndexType):
        return 4
    if isinstance(elt, IntegerType):
        return max(1, elt.width.data // 8)
    assert isinstance(elt, AnyFloat)
    return elt.bitwidth // 8


class GroupBuilder(KernelBuilder):
    """A KernelBuilder for the body of a work-group: uniform code plus nested thread loops."""

    def __init__(self, root: Block, workgroup_size: int):
        super().__init__(root)
        self.wg = workgroup_size

    def threads(self, count: int, body: Callable[[SSAValue], None]) -> None:
        """A nested scf.parallel over `count` <= wg threads: `body(tid)` runs once per thread."""
        assert 0 < count <= self.wg, (count, self.wg)
        block = Block(arg_types=[INDEX])
        self._open(block)
        body(block.args[0])
        block.add_op(scf.ReduceOp())
        self._close()
        self.emit(scf.ParallelOp([self.idx(0)], [self.idx(count)], [self.idx(1)], Region(block)))

    def each(self, n: Idx, body: Callable[[Idx], None], start: Idx = 0) -> None:
        """`body(i)` for every start <= i < n, spread over the work-group's threads (strided)."""
        if isinstance(n, int) and isinstance(start, int) and n - start <= self.wg:
            if n > start:
                self.threads(n - start, lambda t: body(self.add(t, start)))
            return

        def per_thread(tid: SSAValue) -> None:
            self.loop(self.add(tid, start), n, [], lambda i, _: (body(i), [])[1], step=self.wg)

        self.threads(self.wg, per_thread)

    def single(self, body: Callable[[], None]) -> None:
        """`body` in one thread of the group (for writes of uniform values)."""
        self.threads(1, lambda _: body())

    def barrier(self) -> None:
        self.emit(gpu.BarrierOp())

    def local(self, size: int, elt: Attribute) -> SSAValue:
        """A 1-D work-group local array."""
        op = memref.AllocaOp.get(elt, shape=[max(size, 1)], memory_space=WORKGROUP_SPACE)
        self.emit(op)
        return op.memref

    def read(self, ref: SSAValue, index: Sequence[Idx]) -> SSAValue:
        """A load that is never shared with another (the memory may have changed)."""
        op = memref.LoadOp.get(ref, [self.idx(i) for i in index])
        self.emit(op)
        return op.res


def group_kernel(
    fl: FunctionLowering,
    name_hint: str,
    groups: Sequence[int],
    workgroup_size: int,
    body: Callable[[GroupBuilder, list[Idx]], None],
) -> scf.ParallelOp | None:
    """A top-level loop in block/thread form: one work-group of `workgroup_size` threads per
    point of `groups` (extent-1 dims are dropped like in `FunctionLowering.kernel`)."""
    assert fl.anchor is not None
    if any(g == 0 for g in groups):
        return None
    kept = [i for i, g in enumerate(groups) if g != 1] or ([len(groups) - 1] if groups else [])
    block = Block(arg_types=[INDEX] * max(len(kept), 1))
    ivs: list[Idx] = [0] * len(groups)
    for arg, i in zip(block.args, kept, strict=False):
        ivs[i] = arg
    k = GroupBuilder(block, workgroup_size)
    body(k, ivs)
    k.finish(scf.ReduceOp())
    ubs = [fl.index_const(groups[i]) for i in kept] or [fl.index_const(1)]
    zero, one = fl.index_const(0), fl.index_const(1)
    op = scf.ParallelOp([zero] * len(ubs), ubs, [one] * len(ubs), Region(block))
    fl.place_kernel(op, name_hint, workgroup_size)
    return op


# -- scratch memory -------------------------------------------------------------------------


@dataclass
class _ScratchState:
    base: int  # the arena size bufferization planned
    anchor: object | None = None  # the op whose scratch is being handed out
    used: int = 0


_SCRATCH: weakref.WeakKeyDictionary[FunctionLowering, _ScratchState] = weakref.WeakKeyDictionary()


def _align(n: int) -> int:
    return -(-n // SCRATCH_ALIGN) * SCRATCH_ALIGN


def scratch(fl: FunctionLowering, shape: Sequence[int], elt: Attribute, node: str) -> SSAValue:
    """A global buffer for the op being lowered (`fl.anchor`), alive only during its kernels."""
    fn = fl.block.parent_op()
    assert fn is not None and fl.anchor is not None
    size_attr = fn.attributes.get("vision.arena_size")
    arena = int(size_attr.value.data) if isinstance(size_attr, IntegerAttr) else 0
    state = _SCRATCH.get(fl)
    if state is None:
        state = _SCRATCH[fl] = _ScratchState(arena)
    if state.anchor is not fl.anchor:
        state.anchor, state.used = fl.anchor, 0
    offset = _align(state.base + state.used) if state.base + state.used else 0
    nbytes = math.prod(shape) * byte_size(elt)
    state.used = offset + nbytes - state.base
    fn.attributes["vision.arena_size"] = IntegerAttr(max(arena, offset + nbytes), i64)
    op = BufferOp(offset, MemRefType(elt, list(shape)))
    op.attributes["onnx_node"] = StringAttr(node)
    op.attributes["vision.scratch"] = StringAttr("lowering")
    fl.block.insert_op_before(op, fl.anchor)
    return op.result


__all__ = ["GroupBuilder", "group_kernel", "scratch", "next_pow2", "byte_size", "LOCAL_MEMORY_BYTES"]
