"""matmul staged through work-group memory (``stage`` 1, 2: the GEMM engine of
`visc.passes.lowering.staged_gemm`) or with the reduction split across a work-group's threads
(``stage = 3``: `visc.passes.lowering.split_reduction_gemm`), over each batch matrix, one grid dimension per output batch
dim (size-1 operand batch dims broadcast). Copies follow each operand's contiguous dim
(``transpose_a`` / ``transpose_b``); alpha, beta * c and the epilogue are matmul.py's.

Schedule keys read when ``stage >= 1`` (matmul.py's docstring lists the others):

* ``stage``    0: matmul.py's register-tiled kernel; 1: staged, accumulators in work-group
               memory (any backend); 2: staged, accumulators in registers (GPU targets; an op
               placed on the CPU backend is lowered as stage 1); 3: the reduction split
               across threads (keys below).
* ``block_m``, ``block_n``  output rows / columns per work-group.
* ``tile_k``   K step staged per barrier pair.
* ``tile_m``, ``tile_n``    rows / columns per thread (divide block_m / block_n).
* ``wg``       must equal ``(block_m / tile_m) * (block_n / tile_n)``.
* ``unroll_k`` 0: the K step is unrolled while building; else the hint on its loop.
* ``split_k``  K-slices summed by a second kernel (1: none).

``vec`` must stay 1 and ``threads_k`` 1.

Keys read when ``stage = 3`` (``block_m``, ``tile_k``, ``split_k`` keep their defaults,
``vec`` 1): ``tile_m`` rows per work-group (all of them in every thread), ``tile_n`` columns
per thread, ``block_n`` columns per work-group, ``threads_k`` threads sharing each column
group's reduction, ``wg`` = ``(block_n / tile_n) * threads_k``, ``unroll_k`` K elements per
loop step of a slice (0: the whole slice, up to 64).
"""

from __future__ import annotations

from xdsl.ir import SSAValue

from visc.dialects.vision import VisionOp, get_int, shape_of
from visc.passes.lowering.common import ColumnGroup, Problems, Schedule, elt, kernel_hint
from visc.passes.lowering.loops import FunctionLowering, Idx, KernelBuilder
from visc.passes.lowering.split_reduction_gemm import (
    SPLIT_STAGE,
    SplitReductionGemm,
    check_split,
    split_tiles,
)
from visc.passes.lowering.staged_gemm import StagedGemm, check_staged, staged_tiles
from visc.passes.lowering.workgroup import GroupBuilder, byte_size


def check_matmul_staged(op: VisionOp, sched: Schedule) -> Problems:
    stage = sched.get("stage", 0)
    if stage not in (1, 2, SPLIT_STAGE):
        return [f"schedule stage={stage} is illegal (0, 1, 2 or {SPLIT_STAGE})"]
    if "wg" not in sched.values:
        return ["schedule has no 'wg' (work-group size)"]
    problems: Problems = []
    if stage == SPLIT_STAGE:
        from visc.passes.lowering.matmul import _dims

        check_split(problems, sched, "tile_m", "tile_n", _dims(op)[2], byte_size(elt(op.dests[0])),
                    other_keys=(("vec", 1),))
        return problems
    check_staged(problems, sched, "tile_m", "tile_n", byte_size(elt(op.dests[0])),
                 a_k_fast=not get_int(op, "transpose_a", 0), b_n_fast=not get_int(op, "transpose_b", 0),
                 other_keys=(("vec", 1), ("threads_k", 1)))
    return problems


def lower_matmul_staged(op: VisionOp, sched: Schedule, fl: FunctionLowering) -> None:
    from visc.passes.lowering.matmul import _dims, _Plan

    m, n, kk = _dims(op)
    plan = _Plan(op, m, n, kk, 1, 1, 1, 1)  # its operand indexing and store (alpha, beta, c, epilogue)
    batch = list(shape_of(op.outs[0])[:-2])

    def load_a(k: GroupBuilder, bidx: list[Idx], row: Idx, kidx: Idx) -> SSAValue:
        a, _, a_at, _, _ = plan._operands(bidx)
        return k.load(a, a_at(row, kidx))

    def load_b(k: GroupBuilder, bidx: list[Idx], kidx: Idx, col: Idx) -> SSAValue:
        _, b, _, b_at, _ = plan._operands(bidx)
        return k.load(b, b_at(col, kidx))

    def store(k: KernelBuilder, bidx: list[Idx], row: Idx, col: Idx, acc: SSAValue) -> None:
        plan.store(k, bidx, [(row, True)], [ColumnGroup(col, True, 0, n - 1)], [acc])

    if sched.get("stage", 0) == SPLIT_STAGE:
        split = split_tiles(sched, "tile_m", "tile_n")
        SplitReductionGemm(m, n, kk, batch, split, elt(op.outs[0]), load_a, load_b, store).build(fl, kernel_hint(op))
        return
    tiles = staged_tiles(sched, "tile_m", "tile_n", op)
    StagedGemm(m, n, kk, batch, tiles, elt(op.outs[0]), load_a, load_b, store,
               a_k_fast=not get_int(op, "transpose_a", 0),
               b_n_fast=not get_int(op, "transpose_b", 0)).build(fl, kernel_hint(op))


__all__ = ["check_matmul_staged", "lower_matmul_staged"]
