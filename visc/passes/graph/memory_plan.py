"""The static memory plan: every intermediate gets a fixed byte offset in one arena.

Liveness is by program order of the entry function's top-level ops: a buffer is live from
the first op that touches it (its producer) to the last op that reads it, directly or
through a `vision.reshape` view or a `vision.subbuffer` slab. Intervals are closed, so an op's outputs never share
bytes with its inputs (fuse operands included). Offsets are assigned greedily, largest
buffer first, each at the lowest aligned offset that avoids every placed buffer whose
interval overlaps its own (the "greedy by size" scheme of TFLite's arena planner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation, SSAValue

from visc.dialects.vision import BufferOp, ReshapeOp, SubBufferOp
from visc.passes.graph.helpers import byte_size

ARENA_ALIGN = 1024
"""Bytes every buffer offset is a multiple of (safe for OpenCL sub-buffers everywhere)."""


def align_up(n: int, align: int) -> int:
    return -(-n // align) * align


@dataclass(frozen=True)
class Lifetime:
    """One buffer's request: `size` bytes, live from op index `start` to `end` inclusive."""

    size: int
    start: int
    end: int

    def overlaps(self, other: Lifetime) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class MemoryPlan:
    offsets: tuple[int, ...]
    """Byte offset of each requested buffer, in request order."""
    peak: int
    """Arena bytes needed: the highest end of any placed buffer."""
    naive: int
    """Arena bytes if no two buffers shared memory (each padded to the alignment)."""


def plan_memory(lifetimes: Sequence[Lifetime], align: int = ARENA_ALIGN) -> MemoryPlan:
    """Assigns aligned offsets so that buffers with overlapping lifetimes never overlap."""
    if align <= 0:
        raise ValueError(f"alignment must be positive, got {align}")
    order = sorted(range(len(lifetimes)), key=lambda i: (-lifetimes[i].size, lifetimes[i].start, i))
    offsets = [0] * len(lifetimes)
    placed: list[int] = []
    for i in order:
        need = lifetimes[i]
        busy = sorted((offsets[j], offsets[j] + lifetimes[j].size)
                      for j in placed if lifetimes[j].overlaps(need) and lifetimes[j].size > 0)
        offset = 0
        for lo, hi in busy:
            if offset + need.size <= lo:
                break
            offset = max(offset, align_up(hi, align))
        offsets[i] = offset
        placed.append(i)
    peak = max((o + lt.size for o, lt in zip(offsets, lifetimes, strict=True)), default=0)
    naive = sum(align_up(lt.size, align) for lt in lifetimes)
    return MemoryPlan(tuple(offsets), peak, naive)


def buffer_lifetimes(body: Sequence[Operation]) -> dict[BufferOp, Lifetime]:
    """Lifetime of every `vision.buffer` among `body` (a function's top-level ops, in order)."""
    root: dict[SSAValue, BufferOp] = {}
    span: dict[BufferOp, tuple[int, int]] = {}

    def touch(value: SSAValue, index: int) -> None:
        buf = root.get(value)
        if buf is not None:
            lo, hi = span.get(buf, (index, index))
            span[buf] = (min(lo, index), max(hi, index))

    for index, op in enumerate(body):
        if isinstance(op, BufferOp):
            root[op.result] = op
            continue
        if isinstance(op, ReshapeOp) and op.ins[0] in root:
            root[op.res[0]] = root[op.ins[0]]  # a view: its uses are its source's uses
            continue
        if isinstance(op, SubBufferOp) and op.source in root:
            root[op.result] = root[op.source]  # a slab: its uses are its source's uses
            continue
        for inner in op.walk():
            for v in inner.operands:
                touch(v, index)
    out: dict[BufferOp, Lifetime] = {}
    for index, op in enumerate(body):
        if isinstance(op, BufferOp):
            lo, hi = span.get(op, (index, index))
            out[op] = Lifetime(byte_size(op.result.type), lo, hi)
    return out


def assign_offsets(entry: func.FuncOp, align: int = ARENA_ALIGN) -> MemoryPlan:
    """Plans the arena of a bufferized function: sets every buffer's offset and the
    function's `vision.arena_size` / `vision.arena_naive_size`."""
    lifetimes = buffer_lifetimes(list(entry.body.block.ops))
    buffers = list(lifetimes)
    plan = plan_memory([lifetimes[b] for b in buffers], align)
    for buf, offset in zip(buffers, plan.offsets, strict=True):
        buf.properties["offset"] = IntegerAttr(offset, i64)
    entry.attributes["vision.arena_size"] = IntegerAttr(plan.peak, i64)
    entry.attributes["vision.arena_naive_size"] = IntegerAttr(plan.naive, i64)
    return plan


def plan_conflicts(entry: func.FuncOp) -> list[str]:
    """Pairs of buffers that are live at the same time and share bytes (empty when the plan
    is sound), plus buffers that leave the arena or break the arena alignment."""
    lifetimes = buffer_lifetimes(list(entry.body.block.ops))
    size_attr = entry.attributes.get("vision.arena_size")
    arena = int(size_attr.value.data) if isinstance(size_attr, IntegerAttr) else None
    problems: list[str] = []
    items = list(lifetimes.items())
    for n, (a, la) in enumerate(items):
        if arena is not None and a.byte_offset + la.size > arena:
            problems.append(f"buffer at {a.byte_offset} ({la.size} bytes) exceeds the arena ({arena})")
        for b, lb in items[n + 1:]:
            if la.size == 0 or lb.size == 0 or not la.overlaps(lb):
                continue
            if a.byte_offset < b.byte_offset + lb.size and b.byte_offset < a.byte_offset + la.size:
                problems.append(f"buffers at {a.byte_offset} ({la.size} B, ops {la.start}-{la.end}) and "
                                f"{b.byte_offset} ({lb.size} B, ops {lb.start}-{lb.end}) overlap")
    return problems


def _entry(module: ModuleOp) -> func.FuncOp | None:
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    for f in funcs:
        if f.sym_name.data == "main":
            return f
    return funcs[0] if funcs else None


def arena_stats(module: ModuleOp) -> tuple[int, int]:
    """(peak, naive) arena bytes of a bufferized module, for reports."""
    entry = _entry(module)
    if entry is None:
        return 0, 0
    peak, naive = entry.attributes.get("vision.arena_size"), entry.attributes.get("vision.arena_naive_size")
    if isinstance(peak, IntegerAttr) and isinstance(naive, IntegerAttr):
        return int(peak.value.data), int(naive.value.data)
    sizes = [(b.byte_offset, byte_size(b.result.type)) for b in entry.walk() if isinstance(b, BufferOp)]
    return (max((o + s for o, s in sizes), default=0),
            sum(align_up(s, ARENA_ALIGN) for _, s in sizes))


__all__ = [
    "ARENA_ALIGN",
    "Lifetime",
    "MemoryPlan",
    "align_up",
    "arena_stats",
    "assign_offsets",
    "buffer_lifetimes",
    "plan_conflicts",
    "plan_memory",
]
