"""`vision-default-schedule`: the untuned heuristic, and the only place one lives.

Fills `schedule = #vision.schedule<{...}>` on every kernel-producing op that has none (a tuner
record may already have put one there), on tensors or on bufferized memrefs alike. It fills
exactly the keys the op's lowering reads (see each lowering module's docstring).

The heuristic, for GPU-like targets:

* register tiles (conv2d ``tile_oc x tile_ow``, matmul ``tile_m x tile_n``) as large as the
  accumulator budget allows while the kernel keeps enough threads to fill the device, never
  wasting more than 1/8 of the columns on a ragged last tile;
* work-group size: the largest power of two <= ``max_workgroup_size`` that still gives enough
  work-groups for all compute units, at least one warp/wavefront (32), and no larger than the
  thread count needs;
* unroll hints where trip counts are small or the body is short.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from visc.dialects.vision import (
    ConcatOp,
    Conv2dOp,
    LogSoftmaxOp,
    MatmulOp,
    Pool2dOp,
    ReduceOp,
    ReshapeOp,
    ScheduleAttr,
    SoftmaxOp,
    SplitOp,
    VisionOp,
    get_int,
    get_ints,
    shape_of,
)
from visc.errors import CompileError


@dataclass(frozen=True)
class TargetTraits:
    """What the heuristic needs to know about a target family."""

    min_threads: int  # threads a kernel should have to fill the device
    min_groups: int  # work-groups it should have (compute units x a few)
    max_accumulators: int  # register-tile budget per thread


TARGETS: dict[str, TargetTraits] = {
    "opencl": TargetTraits(min_threads=8192, min_groups=64, max_accumulators=16),
    "cuda": TargetTraits(min_threads=8192, min_groups=64, max_accumulators=16),
    "cpu": TargetTraits(min_threads=64, min_groups=8, max_accumulators=16),
}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _divisors(n: int, candidates: Iterable[int]) -> list[int]:
    return [c for c in candidates if c <= n and n % c == 0]


def workgroup_size(threads: int, traits: TargetTraits, max_wg: int) -> int:
    wg = 1 << max(0, max_wg.bit_length() - 1)  # largest power of two <= max_wg
    while wg > 32 and _ceil_div(threads, wg) < traits.min_groups:
        wg //= 2
    return max(1, min(wg, 1 << max(0, (threads - 1).bit_length())))


def _pick_tile(rows: int, cols: int, row_cands: list[int], threads_at, traits: TargetTraits) -> tuple[int, int]:
    """The (row tile, column tile) with the most accumulators within budget that keeps
    `threads_at(r, c) >= min_threads` and little ragged-column waste; else the one with most
    threads among the budget-respecting ones."""
    options = []
    for r in row_cands:
        for c in (8, 4, 3, 2, 1):
            if c > cols or r * c > traits.max_accumulators:
                continue
            waste = _ceil_div(cols, c) * c - cols
            if c > 1 and waste * 8 > cols:
                continue
            options.append((r, c))
    enough = [o for o in options if threads_at(*o) >= traits.min_threads]
    if enough:
        # most accumulators; then fewer columns (column taps cost loads), then more rows
        return max(enough, key=lambda o: (o[0] * o[1], -abs(o[0] - o[1]), o[0]))
    return max(options, key=lambda o: (threads_at(*o), o[0] * o[1]))


def _conv2d(op: VisionOp, traits: TargetTraits, max_wg: int) -> dict[str, int]:
    n, o, oh, ow = shape_of(op.dests[0])
    groups = get_int(op, "groups", 1)
    cg = shape_of(op.ins[1])[1]
    kh, kw = shape_of(op.ins[1])[2:]
    og = o // groups

    def threads(toc: int, tow: int) -> int:
        return n * (o // toc) * oh * _ceil_div(ow, tow)

    toc, tow = _pick_tile(og, ow, _divisors(og, (8, 4, 2, 1)), threads, traits)
    return {
        "wg": workgroup_size(threads(toc, tow), traits, max_wg),
        "tile_oc": toc,
        "tile_ow": tow,
        "unroll_k": 4 if cg >= 4 else 0,
        "unroll_win": 0 if kh * kw <= 9 and cg < 4 else 1,
    }


def _matmul(op: VisionOp, traits: TargetTraits, max_wg: int) -> dict[str, int]:
    out = shape_of(op.dests[0])
    m, nn = out[-2], out[-1]
    batch = math.prod(out[:-2])

    def threads(tm: int, tn: int) -> int:
        return batch * _ceil_div(m, tm) * _ceil_div(nn, tn)

    row_cands = [r for r in (4, 2, 1) if r <= m and (_ceil_div(m, r) * r - m) * 8 <= m or r == 1]
    tm, tn = _pick_tile(m, nn, row_cands, threads, traits)
    return {"wg": workgroup_size(threads(tm, tn), traits, max_wg), "tile_m": tm, "tile_n": tn, "unroll_k": 4}


def _threads(op: VisionOp) -> int:
    """Thread count of the op's (largest) kernel, for ops with one thread per element/row."""
    if isinstance(op, ConcatOp):
        return max(math.prod(shape_of(v)) for v in op.ins)
    if isinstance(op, SplitOp):
        return max(math.prod(shape_of(v)) for v in op.dests)
    if isinstance(op, SoftmaxOp | LogSoftmaxOp):
        x = shape_of(op.ins[0])
        axis = get_int(op, "axis", -1) % len(x)
        return math.prod(x) // max(1, x[axis])
    return math.prod(shape_of(op.dests[0]))


def default_schedule(op: VisionOp, target: str = "opencl", max_workgroup_size: int = 256) -> dict[str, int]:
    """The heuristic schedule of one op (only the keys its lowering reads)."""
    from visc.passes.lowering.vision_to_loops import schedule_keys

    traits = TARGETS[target]
    if isinstance(op, Conv2dOp):
        sched = _conv2d(op, traits, max_workgroup_size)
    elif isinstance(op, MatmulOp):
        sched = _matmul(op, traits, max_workgroup_size)
    else:
        sched = {"wg": workgroup_size(max(1, _threads(op)), traits, max_workgroup_size)}
        if isinstance(op, Pool2dOp):
            sched["unroll_win"] = 0 if math.prod(get_ints(op, "kernel")) <= 9 else 1
        if isinstance(op, ReduceOp):
            sched["unroll_k"] = 1
    keys = schedule_keys(op)
    return {k: v for k, v in sched.items() if k in keys}


@dataclass(frozen=True)
class DefaultSchedulePass(ModulePass):
    name = "vision-default-schedule"

    target: str = "opencl"
    max_workgroup_size: int = 256

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.target not in TARGETS:
            raise CompileError(f"vision-default-schedule: unknown target '{self.target}' "
                               f"(known: {', '.join(TARGETS)})")
        if self.max_workgroup_size < 1:
            raise CompileError("vision-default-schedule: max_workgroup_size must be >= 1")
        from visc.passes.lowering.vision_to_loops import schedule_keys

        for vop in op.walk():
            if not isinstance(vop, VisionOp) or isinstance(vop, ReshapeOp) or "schedule" in vop.attributes:
                continue
            if not schedule_keys(vop):
                continue
            vop.attributes["schedule"] = ScheduleAttr(default_schedule(vop, self.target, self.max_workgroup_size))
